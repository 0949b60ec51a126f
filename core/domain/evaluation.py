"""The evaluation gate's judgement, pure: an evaluator's JSON metrics against thresholds and
against the values the live release measured when it passed its own gate.

A metric with `min` is higher-is-better, one with `max` lower-is-better; `max_regression` bounds
how much worse than the live release's recorded value it may be, in percent of that value. No
baseline (nothing live, or the live release never passed a gate here) leaves the thresholds alone
to decide, and says so in the evidence.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Placeholders an eval command template may use.
EVAL_PLACEHOLDERS = frozenset({"url", "app", "env", "version", "commit", "digest", "color"})
EVAL_TIMEOUT = 300.0  # seconds an eval command may run when the gate sets no `timeout`
# Two floats that differ only by rounding are the same value: 0.855 against 0.9 is exactly 5%
# worse, though the float arithmetic says 5.000000000000004%.
_TOLERANCE = 1e-9


@dataclass(frozen=True)
class MetricRule:
    name: str
    min: float | None = None
    max: float | None = None
    max_regression: float | None = None  # percent of the live release's value

    @property
    def higher_is_better(self) -> bool:
        return self.max is None

    def as_dict(self) -> dict[str, Any]:
        rule: dict[str, Any] = {"min": self.min, "max": self.max}
        if self.max_regression is not None:
            rule["max_regression"] = f"{self.max_regression:g}%"
        return {k: v for k, v in rule.items() if v is not None}


@dataclass(frozen=True)
class EvalGate:
    """`[apps.A.targets.E.eval]`: what to run against the staged color, and what must hold."""

    command: tuple[str, ...]
    metrics: tuple[MetricRule, ...]
    timeout: float = EVAL_TIMEOUT

    def thresholds(self) -> dict[str, dict[str, Any]]:
        return {m.name: m.as_dict() for m in self.metrics}

    def as_dict(self) -> dict[str, Any]:
        """What an approver signs off on (core.domain.plan.plan_digest covers it)."""
        return {
            "command": list(self.command),
            "timeout": self.timeout,
            "metrics": self.thresholds(),
        }


@dataclass(frozen=True)
class MetricCheck:
    """One metric's outcome; `sentence` says why, in words a release manager can act on."""

    name: str
    value: float | None
    baseline: float | None
    worse_pct: float | None  # how much worse than the baseline (negative: better)
    ok: bool
    sentence: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "metric": self.name,
            "value": self.value,
            "baseline": self.baseline,
            "worse_pct": None if self.worse_pct is None else round(self.worse_pct, 6),
            "ok": self.ok,
            "sentence": self.sentence,
        }


@dataclass(frozen=True)
class EvalVerdict:
    checks: tuple[MetricCheck, ...]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def failures(self) -> list[str]:
        return [c.sentence for c in self.checks if not c.ok]

    def measured(self) -> dict[str, float]:
        return {c.name: c.value for c in self.checks if c.value is not None}

    def summary(self) -> str:
        if self.ok:
            return "eval passed: " + "; ".join(c.sentence for c in self.checks)
        return "eval failed: " + "; ".join(self.failures)


class EvalOutputError(ValueError):
    """The evaluator's stdout is not a JSON object of metrics."""


def _refuse_constant(name: str) -> float:
    raise EvalOutputError(f"the evaluator printed {name}, which is not a finite number")


def read_metrics(stdout: str) -> dict[str, Any]:
    """The JSON object the evaluator printed on stdout (its values are checked per metric by
    `judge`); EvalOutputError with a sentence when it is not one."""
    try:
        doc = json.loads(stdout, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        snippet = stdout.strip()[:80] or "nothing"
        raise EvalOutputError(
            f"the evaluator's output is not JSON ({exc.msg} at line {exc.lineno}): {snippet!r}"
        ) from None
    if not isinstance(doc, dict):
        raise EvalOutputError(
            f"the evaluator printed a JSON {type(doc).__name__}, not an object of metrics"
        )
    return doc


def finite(value: Any) -> float | None:
    """`value` as a float if it is a finite JSON number (not a boolean), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def worse_pct(rule: MetricRule, value: float, baseline: float) -> float:
    """How much worse `value` is than `baseline`, in percent of the baseline (negative: better).
    From a baseline of 0 any change is infinitely large: +inf when worse, 0 otherwise."""
    worse_by = baseline - value if rule.higher_is_better else value - baseline
    if baseline == 0:
        return math.inf if worse_by > 0 else 0.0
    return worse_by / abs(baseline) * 100


def _exceeds(amount: float, limit: float) -> bool:
    return amount > limit and not math.isclose(amount, limit, rel_tol=_TOLERANCE)


def _check(
    rule: MetricRule, raw: Any, present: bool, baseline: float | None, live: str
) -> MetricCheck:
    name = rule.name
    if not present:
        return MetricCheck(name, None, baseline, None, False, f"{name} is missing from the output")
    value = finite(raw)
    if value is None:
        shown = json.dumps(raw)[:40]
        return MetricCheck(name, None, baseline, None, False, f"{name} = {shown} is not a number")
    problems: list[str] = []
    if rule.min is not None and value < rule.min and not math.isclose(value, rule.min):
        problems.append(f"{name} {value:g} is below the minimum {rule.min:g}")
    if rule.max is not None and value > rule.max and not math.isclose(value, rule.max):
        problems.append(f"{name} {value:g} is above the maximum {rule.max:g}")
    worse = None if baseline is None else worse_pct(rule, value, baseline)
    if (
        worse is not None
        and rule.max_regression is not None
        and _exceeds(worse, rule.max_regression)
    ):
        amount = "infinitely" if math.isinf(worse) else f"{worse:.1f}%"
        problems.append(
            f"{name} {value:g} is {amount} worse than {baseline:g} measured for the live "
            f"release {live} (at most {rule.max_regression:g}% allowed)"
        )
    kept = worse if worse is not None and math.isfinite(worse) else None
    if problems:
        return MetricCheck(name, value, baseline, kept, False, "; ".join(problems))
    if worse is None:
        against = "no baseline" if rule.max_regression is not None else "no regression limit"
        return MetricCheck(name, value, baseline, None, True, f"{name} {value:g} ({against})")
    if math.isinf(worse):
        change = "worse"
    else:
        change = f"{abs(worse):.1f}% {'worse' if worse > 0 else 'better'}" if worse else "unchanged"
    sentence = f"{name} {value:g} ({change} than {baseline:g} for {live})"
    return MetricCheck(name, value, baseline, kept, True, sentence)


def judge(
    gate: EvalGate,
    measured: Mapping[str, Any],
    baseline: Mapping[str, float] | None,
    live: str = "live",
) -> EvalVerdict:
    """Every configured metric of `measured` against its rule and the live release's
    `baseline` values (None: no baseline). `live` names that release in the sentences."""
    base = baseline or {}
    return EvalVerdict(
        tuple(
            _check(rule, measured.get(rule.name), rule.name in measured, base.get(rule.name), live)
            for rule in gate.metrics
        )
    )
