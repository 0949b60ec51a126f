"""The canary strategy, pure: its steps, the success conditions of its analysis, the judgement of
measurements, and the step machine that says what the engine does next.

After Argo Rollouts' canary steps (setWeight, pause with a duration or none = until promoted)
and AnalysisTemplate metrics (interval, count, failureLimit, inconclusiveLimit,
consecutiveErrorLimit, successCondition), kept small: a success condition is one comparison in a
language of our own (`error_rate < 0.01`, `latency_p95_ms <= 1.2 * stable`), parsed here and
never evaluated by Python. docs/canary.md says what was taken from Argo and what was changed.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from shipdeck.core.domain.promql import PrometheusQuery

# --- success conditions ----------------------------------------------------------------------

_OPS: Mapping[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    ">": operator.gt,
}
_NUMBER = r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"
# NAME OP TERM, where TERM is a number, or `[N *] stable [+|- N]`.
_CONDITION = re.compile(
    rf"\s*(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*(?P<op><=|>=|==|!=|<|>)\s*"
    rf"(?:(?P<const>{_NUMBER})|(?:(?P<factor>{_NUMBER})\s*\*\s*)?stable"
    rf"(?:\s*(?P<sign>[-+])\s*(?P<offset>{_NUMBER}))?)\s*"
)


@dataclass(frozen=True)
class Condition:
    """`metric OP bound`, the bound a constant or `factor * stable + offset` (stable: the same
    metric measured on the stable color over the same window)."""

    metric: str
    op: str
    constant: float | None = None
    factor: float = 1.0
    offset: float = 0.0

    @property
    def uses_stable(self) -> bool:
        return self.constant is None

    def bound(self, stable: float | None) -> float | None:
        """The right-hand side; None when it needs a stable value that is missing."""
        if self.constant is not None:
            return self.constant
        if stable is None:
            return None
        return self.factor * stable + self.offset

    def holds(self, canary: float, stable: float | None) -> bool | None:
        """Whether the condition holds; None when the stable value it needs is missing."""
        bound = self.bound(stable)
        return None if bound is None else _OPS[self.op](canary, bound)

    def text(self) -> str:
        """The condition written back (what the digest and the evidence show)."""
        if self.constant is not None:
            return f"{self.metric} {self.op} {_num(self.constant)}"
        lhs = "stable" if self.factor == 1.0 else f"{_num(self.factor)} * stable"
        sign = "-" if self.offset < 0 else "+"
        tail = "" if self.offset == 0 else f" {sign} {_num(abs(self.offset))}"
        return f"{self.metric} {self.op} {lhs}{tail}"


def _num(x: float) -> str:
    """The shortest text that reads back as the same float (0.01, 1.2, 3)."""
    return repr(x).removesuffix(".0")


def parse_condition(text: str) -> Condition:
    """The condition, or ValueError saying what is wrong (config check quotes it)."""
    m = _CONDITION.fullmatch(text)
    if m is None:
        raise ValueError(
            f"'{text}' is not a condition like 'error_rate < 0.01' or "
            "'latency_p95_ms <= 1.2 * stable'"
        )
    numbers = [m.group(g) for g in ("const", "factor", "offset") if m.group(g) is not None]
    if not all(math.isfinite(float(n)) for n in numbers):
        raise ValueError(f"'{text}': numbers must be finite")
    if m.group("const") is not None:
        return Condition(m.group("name"), m.group("op"), constant=float(m.group("const")))
    offset = float(m.group("offset") or 0.0) * (-1 if m.group("sign") == "-" else 1)
    return Condition(m.group("name"), m.group("op"), None, float(m.group("factor") or 1.0), offset)


# --- the spec (what shipdeck.toml says) --------------------------------------------------------

CONSECUTIVE_ERROR_LIMIT = 4  # Argo's default: a metrics source may fail this often in a row


@dataclass(frozen=True)
class Metric:
    """One analysis metric: measured every `interval` seconds, `count` times per weight step,
    from the target's own counters, or from `prometheus` where the metric names a query."""

    name: str
    condition: Condition
    interval: float
    count: int = 1
    failure_limit: int = 0  # failed measurements allowed; one more fails the analysis
    inconclusive_limit: int = 0
    consecutive_error_limit: int = CONSECUTIVE_ERROR_LIMIT
    prometheus: PrometheusQuery | None = None

    def as_dict(self) -> dict[str, Any]:
        """What the digest covers; the query only where there is one (older digests hold)."""
        out: dict[str, Any] = {
            "success": self.condition.text(),
            "interval": self.interval,
            "count": self.count,
            "failure_limit": self.failure_limit,
            "inconclusive_limit": self.inconclusive_limit,
            "consecutive_error_limit": self.consecutive_error_limit,
        }
        return {**out, **({"prometheus": self.prometheus.as_dict()} if self.prometheus else {})}


@dataclass(frozen=True)
class SetWeight:
    percent: int


@dataclass(frozen=True)
class Pause:
    seconds: float | None = None  # None: until promoted


Step = SetWeight | Pause


@dataclass(frozen=True)
class CanarySpec:
    """`[environments.E.canary]` (or an app target's): the steps, and the analysis that runs
    after every weight change below 100%."""

    steps: tuple[Step, ...]
    metrics: tuple[Metric, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """What an approver signs off on (core.domain.plan.plan_digest covers it)."""
        return {
            "steps": [
                {"set_weight": s.percent} if isinstance(s, SetWeight) else {"pause": s.seconds}
                for s in self.steps
            ],
            "analysis": {m.name: m.as_dict() for m in self.metrics},
        }


# --- measurements and their judgement ---------------------------------------------------------

Outcome = Literal["successful", "failed", "inconclusive", "error"]
Status = Literal["running", "passed", "failed", "inconclusive"]


@dataclass(frozen=True)
class Measurement:
    """One measurement of one metric: both colors' values and what they mean."""

    outcome: Outcome
    canary: float | None = None
    stable: float | None = None
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "outcome": self.outcome,
            "canary": self.canary,
            "stable": self.stable,
        }
        return {**out, **({"note": self.note} if self.note else {})}


def _value(sample: Mapping[str, float] | None, name: str) -> float | None:
    value = None if sample is None else sample.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def measure(
    metric: Metric,
    canary: Mapping[str, float] | None,
    stable: Mapping[str, float] | None,
    error: str | None = None,
) -> Measurement:
    """Judge one sample of both colors. A source error is an `error`; a value that is missing
    (or not a finite number) on the canary, or on the stable color when the condition compares
    with it, is `inconclusive`: no data is never taken for a pass, nor for a failure."""
    if error is not None:
        return Measurement("error", note=error)
    c, s = _value(canary, metric.name), _value(stable, metric.name)
    if c is None:
        return Measurement("inconclusive", None, s, "no canary value")
    held = metric.condition.holds(c, s)
    if held is None:
        return Measurement("inconclusive", c, None, "no stable value to compare with")
    return Measurement("successful" if held else "failed", c, s)


@dataclass(frozen=True)
class MetricVerdict:
    status: Status
    reason: str = ""


def judge_metric(metric: Metric, taken: Sequence[Measurement]) -> MetricVerdict:
    """Argo's assessment of one metric: failed once failures exceed the failure limit (or errors
    in a row exceed theirs), inconclusive once inconclusive ones exceed theirs, passed once all
    `count` measurements are in without either, running before. A source error measured
    nothing: it does not count towards `count` (the measurement is taken again)."""
    failed = sum(m.outcome == "failed" for m in taken)
    measured = len(taken) - sum(m.outcome == "error" for m in taken)
    inconclusive = sum(m.outcome == "inconclusive" for m in taken)
    in_a_row = 0
    for m in reversed(taken):
        if m.outcome != "error":
            break
        in_a_row += 1
    if failed > metric.failure_limit:
        return MetricVerdict(
            "failed",
            f"{metric.name}: {failed} of {len(taken)} measurements failed "
            f"'{metric.condition.text()}' (failure limit {metric.failure_limit})",
        )
    if in_a_row > metric.consecutive_error_limit:
        return MetricVerdict(
            "failed",
            f"{metric.name}: the metrics source failed {in_a_row} times in a row "
            f"(limit {metric.consecutive_error_limit}): {taken[-1].note}",
        )
    if inconclusive > metric.inconclusive_limit:
        return MetricVerdict(
            "inconclusive",
            f"{metric.name}: {inconclusive} of {len(taken)} measurements inconclusive "
            f"(limit {metric.inconclusive_limit}): {taken[-1].note or 'no data'}",
        )
    if measured >= metric.count:
        return MetricVerdict("passed")
    return MetricVerdict("running")


@dataclass(frozen=True)
class AnalysisVerdict:
    """The analysis of one weight step: failed if any metric failed, else inconclusive if any
    was, else passed once every metric passed (running before); `evidence` holds every measured
    value, per metric, for the plan's record."""

    status: Status
    reason: str
    evidence: Mapping[str, Any] = field(default_factory=dict)


def judge(
    metrics: Sequence[Metric], taken: Mapping[str, Sequence[Measurement]], weight: int
) -> AnalysisVerdict:
    verdicts = {m.name: judge_metric(m, taken.get(m.name, ())) for m in metrics}
    evidence = {
        "weight": weight,
        "metrics": {
            m.name: {
                "success": m.condition.text(),
                "status": verdicts[m.name].status,
                "measurements": [x.as_dict() for x in taken.get(m.name, ())],
            }
            for m in metrics
        },
    }
    for status in ("failed", "inconclusive"):
        reasons = [v.reason for v in verdicts.values() if v.status == status]
        if reasons:
            return AnalysisVerdict(status, "; ".join(reasons), evidence)
    if all(v.status == "passed" for v in verdicts.values()):
        passed = ", ".join(m.condition.text() for m in metrics)
        return AnalysisVerdict("passed", f"analysis at {weight}% passed: {passed}", evidence)
    return AnalysisVerdict("running", f"analysis at {weight}% running", evidence)


def _open(m: Metric, taken: Sequence[Measurement]) -> bool:
    """Whether `m` still needs a measurement (a source error is taken again)."""
    return sum(x.outcome != "error" for x in taken) < m.count


def next_due(metrics: Sequence[Metric], taken: Mapping[str, Sequence[Measurement]]) -> float | None:
    """Seconds after the analysis began when the next measurement is due (a metric's k-th
    measurement comes k intervals in, so each covers a full window of traffic at the weight);
    None once every metric has had its count."""
    due = [
        (len(taken.get(m.name, ())) + 1) * m.interval
        for m in metrics
        if _open(m, taken.get(m.name, ()))
    ]
    return min(due) if due else None


def due_at(
    metrics: Sequence[Metric], taken: Mapping[str, Sequence[Measurement]], at: float
) -> list[Metric]:
    """The metrics whose next measurement is due `at` seconds into the analysis."""
    return [
        m
        for m in metrics
        if _open(m, taken.get(m.name, ())) and (len(taken.get(m.name, ())) + 1) * m.interval <= at
    ]


# --- the step machine -----------------------------------------------------------------------

Request = Literal["promote", "abort"] | None


@dataclass(frozen=True)
class Position:
    """Where a canary is: the step being carried out, the weight the canary has, how long the
    current pause has been waited, and the verdict of the current weight's analysis."""

    index: int = 0
    weight: int = 0
    waited: float = 0.0
    verdict: AnalysisVerdict | None = None

    def advanced(self) -> Position:
        return Position(self.index + 1, self.weight)

    def at_weight(self, percent: int) -> Position:
        return replace(self, weight=percent, verdict=None)


@dataclass(frozen=True)
class ChangeWeight:
    percent: int


@dataclass(frozen=True)
class Analyse:
    weight: int


@dataclass(frozen=True)
class Wait:
    seconds: float


@dataclass(frozen=True)
class AwaitPromote:
    reason: str


@dataclass(frozen=True)
class Advance:
    promoted: bool = False  # a promote request was used up to move on


@dataclass(frozen=True)
class Promote:
    """All steps done (or a weight of 100%): the switch sends all traffic to the canary."""


@dataclass(frozen=True)
class RollBack:
    reason: str
    evidence: Mapping[str, Any] = field(default_factory=dict)


Action = ChangeWeight | Analyse | Wait | AwaitPromote | Advance | Promote | RollBack


def decide(spec: CanarySpec, at: Position, request: Request = None) -> Action:
    """The next thing to do. An abort wins everywhere; a promote request moves past the pause
    (timed or not) or the inconclusive analysis the canary waits at, and nothing else."""
    if request == "abort":
        return RollBack(f"aborted at {at.weight}%")
    if at.index >= len(spec.steps):
        return Promote()
    step = spec.steps[at.index]
    if isinstance(step, Pause):
        if request == "promote":
            return Advance(promoted=True)
        if step.seconds is None:
            return AwaitPromote(f"paused at {at.weight}% until promoted")
        left = step.seconds - at.waited
        return Wait(left) if left > 0 else Advance()
    if step.percent >= 100:
        return Promote()
    if at.weight != step.percent:
        return ChangeWeight(step.percent)
    if not spec.metrics:
        return Advance()
    verdict = at.verdict
    if verdict is None or verdict.status == "running":
        return Analyse(step.percent)
    if verdict.status == "failed":
        return RollBack(f"analysis at {at.weight}% failed: {verdict.reason}", verdict.evidence)
    if verdict.status == "inconclusive":
        if request == "promote":
            return Advance(promoted=True)
        return AwaitPromote(f"analysis at {at.weight}% inconclusive: {verdict.reason}")
    return Advance()


# --- the weight a journal shows ---------------------------------------------------------------

_WEIGHT_ROW = re.compile(r"weight (\d+)%")


def journal_weights(rows: Iterable[tuple[str, str, str, str]]) -> dict[str, int]:
    """App -> the canary weight its run's journal shows now, from (app, step, state, detail)
    rows in order: the last `weight N%` canary step done, until a switch (the promote) is done,
    which ends the split. What `status` and `plan show` say while a canary runs, without asking
    the target."""
    weights: dict[str, int] = {}
    for app, step, state, detail in rows:
        if state != "done":
            continue
        if step == "switch":
            weights.pop(app, None)
        elif step == "canary" and (m := _WEIGHT_ROW.match(detail)):
            weights[app] = int(m.group(1))
    return weights
