"""The canary's pure parts (core.domain.canary): success conditions (parsed, never eval()ed),
measurements and their judgement against the limits, and the step machine walked to its end
for every mix of promote and abort requests."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shipdeck.core.domain.canary import (
    Action,
    Advance,
    Analyse,
    AnalysisVerdict,
    AwaitPromote,
    CanarySpec,
    ChangeWeight,
    Measurement,
    Metric,
    Pause,
    Position,
    Promote,
    Request,
    RollBack,
    SetWeight,
    Wait,
    decide,
    due_at,
    journal_weights,
    judge,
    judge_metric,
    measure,
    next_due,
    parse_condition,
)

ERRORS = Metric("error_rate", parse_condition("error_rate < 0.01"), interval=60.0, count=3)
LATENCY = Metric(
    "latency_p95_ms", parse_condition("latency_p95_ms <= 1.2 * stable"), interval=30.0, count=2
)
STEPS = (
    SetWeight(5),
    Pause(60.0),
    SetWeight(25),
    Pause(None),
    SetWeight(50),
    Pause(60.0),
    SetWeight(100),
)
PASSED = AnalysisVerdict("passed", "ok")

# --- conditions ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "canary", "stable", "holds"),
    [
        ("error_rate < 0.01", 0.009, None, True),
        ("error_rate < 0.01", 0.01, None, False),
        ("latency_p95_ms <= 1.2 * stable", 120.0, 100.0, True),
        ("latency_p95_ms <= 1.2 * stable", 120.1, 100.0, False),
        ("x >= stable - 0.5", 9.5, 10.0, True),
        ("x > stable + 1", 11.0, 10.0, False),
        ("x == 3", 3.0, None, True),
        ("x != 3", 3.0, None, False),
        ("x<=1e-3", 0.001, None, True),
    ],
)
def test_a_condition_compares_the_canary_with_a_constant_or_the_stable_value(
    text: str, canary: float, stable: float | None, holds: bool
) -> None:
    assert parse_condition(text).holds(canary, stable) is holds


def test_a_condition_over_stable_without_a_stable_value_is_undecided() -> None:
    assert parse_condition("x <= 1.2 * stable").holds(1.0, None) is None


@pytest.mark.parametrize(
    "text",
    [
        "",
        "error_rate",
        "error_rate < ",
        "__import__('os').system('id') < 1",
        "error_rate < 0.01 and latency < 2",
        "error_rate < stable * 2",
        "error_rate =< 1",
        "1 < error_rate",
        "error_rate < 1e999",
    ],
)
def test_anything_but_one_comparison_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"condition|finite"):
        parse_condition(text)


@given(
    st.sampled_from(["<", "<=", ">", ">=", "==", "!="]),
    st.floats(0.01, 100, allow_nan=False),
    st.floats(-100, 100, allow_nan=False),
)
def test_a_condition_reads_back_as_the_same_condition(op: str, factor: float, off: float) -> None:
    cond = parse_condition(f"m {op} {factor!r} * stable + {off!r}")
    assert parse_condition(cond.text()).op == op
    assert parse_condition(cond.text()).bound(10.0) == pytest.approx(cond.bound(10.0))


# --- measurements -------------------------------------------------------------------------------


def test_a_measurement_is_successful_or_failed_by_its_condition() -> None:
    assert measure(LATENCY, {"latency_p95_ms": 110}, {"latency_p95_ms": 100}).outcome == (
        "successful"
    )
    failed = measure(LATENCY, {"latency_p95_ms": 130}, {"latency_p95_ms": 100})
    assert (failed.outcome, failed.canary, failed.stable) == ("failed", 130.0, 100.0)


@pytest.mark.parametrize(
    ("canary", "stable", "note"),
    [
        ({}, {"latency_p95_ms": 100}, "no canary value"),
        (None, {"latency_p95_ms": 100}, "no canary value"),
        ({"latency_p95_ms": float("nan")}, {"latency_p95_ms": 100}, "no canary value"),
        ({"latency_p95_ms": True}, {"latency_p95_ms": 100}, "no canary value"),
        ({"latency_p95_ms": 100}, {}, "no stable value to compare with"),
    ],
)
def test_missing_data_is_inconclusive_never_a_pass_or_a_failure(
    canary: dict[str, float] | None, stable: dict[str, float], note: str
) -> None:
    m = measure(LATENCY, canary, stable)
    assert (m.outcome, m.note) == ("inconclusive", note)


def test_a_constant_condition_needs_no_stable_value() -> None:
    assert measure(ERRORS, {"error_rate": 0.0}, None).outcome == "successful"


def test_a_source_error_is_an_error_measurement() -> None:
    assert measure(ERRORS, None, None, "prometheus: timed out") == Measurement(
        "error", note="prometheus: timed out"
    )


# --- judgement ----------------------------------------------------------------------------------


def _taken(*outcomes: str) -> list[Measurement]:
    return [Measurement(o, 0.5 if o == "failed" else 0.0, None) for o in outcomes]  # type: ignore[arg-type]


def test_a_metric_passes_once_its_count_is_in_and_runs_before() -> None:
    assert judge_metric(ERRORS, _taken("successful", "successful")).status == "running"
    assert judge_metric(ERRORS, _taken("successful") * 3).status == "passed"


def test_failures_up_to_the_limit_are_tolerated_one_more_fails() -> None:
    lenient = Metric("error_rate", ERRORS.condition, 60.0, count=5, failure_limit=2)
    assert judge_metric(lenient, _taken("failed", "failed", "successful")).status == "running"
    verdict = judge_metric(lenient, _taken("failed", "failed", "failed"))
    assert verdict.status == "failed"
    assert verdict.reason == (
        "error_rate: 3 of 3 measurements failed 'error_rate < 0.01' (failure limit 2)"
    )


def test_errors_fail_only_in_a_row_beyond_their_limit() -> None:
    errors = [Measurement("error", note="down")] * 4
    assert judge_metric(ERRORS, [*errors, *_taken("successful")]).status == "running"
    assert judge_metric(ERRORS, [*errors, Measurement("error", note="down")]).status == "failed"


def test_inconclusive_beyond_its_limit_makes_the_metric_inconclusive() -> None:
    assert judge_metric(ERRORS, _taken("inconclusive")).status == "inconclusive"
    tolerant = Metric("error_rate", ERRORS.condition, 60.0, count=3, inconclusive_limit=1)
    assert judge_metric(tolerant, _taken("inconclusive", "successful", "successful")).status == (
        "passed"
    )


def test_a_failed_metric_fails_the_analysis_with_every_measured_value_as_evidence() -> None:
    taken = {
        "error_rate": [Measurement("failed", 0.05, 0.001)],
        "latency_p95_ms": [Measurement("successful", 100.0, 100.0)],
    }
    verdict = judge([ERRORS, LATENCY], taken, 25)
    assert verdict.status == "failed"
    assert verdict.reason.startswith("error_rate: 1 of 1 measurements failed")
    assert verdict.evidence == {
        "weight": 25,
        "metrics": {
            "error_rate": {
                "success": "error_rate < 0.01",
                "status": "failed",
                "measurements": [{"outcome": "failed", "canary": 0.05, "stable": 0.001}],
            },
            "latency_p95_ms": {
                "success": "latency_p95_ms <= 1.2 * stable",
                "status": "running",
                "measurements": [{"outcome": "successful", "canary": 100.0, "stable": 100.0}],
            },
        },
    }


def test_failed_wins_over_inconclusive_and_both_over_passed() -> None:
    fail = {"error_rate": _taken("failed"), "latency_p95_ms": _taken("inconclusive")}
    assert judge([ERRORS, LATENCY], fail, 5).status == "failed"
    unsure = {"error_rate": _taken("successful") * 3, "latency_p95_ms": _taken("inconclusive")}
    assert judge([ERRORS, LATENCY], unsure, 5).status == "inconclusive"
    good = {"error_rate": _taken("successful") * 3, "latency_p95_ms": _taken("successful") * 2}
    assert judge([ERRORS, LATENCY], good, 5).status == "passed"


def test_measurements_fall_due_interval_after_interval_per_metric() -> None:
    taken: dict[str, list[Measurement]] = {}
    schedule = []
    while (at := next_due([ERRORS, LATENCY], taken)) is not None:
        due = due_at([ERRORS, LATENCY], taken, at)
        schedule.append((at, [m.name for m in due]))
        for m in due:
            taken.setdefault(m.name, []).append(Measurement("successful"))
    assert schedule == [
        (30.0, ["latency_p95_ms"]),
        (60.0, ["error_rate", "latency_p95_ms"]),
        (120.0, ["error_rate"]),
        (180.0, ["error_rate"]),
    ]


# --- the step machine ---------------------------------------------------------------------------


def walk(
    spec: CanarySpec,
    verdicts: Callable[[int], AnalysisVerdict] = lambda w: PASSED,
    requests: Callable[[Action, Position], Request] = lambda a, p: None,
    limit: int = 200,
) -> tuple[list[Action], Position]:
    """Carry out the machine's actions as the engine does (on data only), until it promotes,
    rolls back, or waits for a promote nobody gives."""
    at, done, request = Position(), [], None
    for _ in range(limit):
        action = decide(spec, at, request)
        done.append(action)
        request = None
        match action:
            case ChangeWeight(percent):
                at = at.at_weight(percent)
            case Analyse(weight):
                at = Position(at.index, at.weight, at.waited, verdicts(weight))
            case Wait(seconds):
                at = Position(at.index, at.weight, at.waited + seconds, at.verdict)
            case Advance():
                at = at.advanced()
            case Promote() | RollBack():
                return done, at
        request = requests(action, at)
        if isinstance(action, AwaitPromote) and request is None:
            return done, at
    raise AssertionError(f"no end after {limit} actions: {done[-5:]}")


def _promote_when_paused(action: Action, at: Position) -> Request:
    return "promote" if isinstance(action, AwaitPromote) else None


def test_five_twenty_five_fifty_hundred_with_pauses_and_a_manual_promote() -> None:
    spec = CanarySpec(STEPS, (ERRORS,))
    done, _ = walk(spec, requests=_promote_when_paused)
    assert done == [
        ChangeWeight(5),
        Analyse(5),
        Advance(),
        Wait(60.0),
        Advance(),
        ChangeWeight(25),
        Analyse(25),
        Advance(),
        AwaitPromote("paused at 25% until promoted"),
        Advance(promoted=True),
        ChangeWeight(50),
        Analyse(50),
        Advance(),
        Wait(60.0),
        Advance(),
        Promote(),
    ]


def test_a_manual_pause_waits_for_a_promote_however_long() -> None:
    spec = CanarySpec(STEPS)
    at = Position(index=3, weight=25, waited=10**9)
    assert decide(spec, at) == AwaitPromote("paused at 25% until promoted")
    assert decide(spec, at, "promote") == Advance(promoted=True)


def test_a_promote_skips_a_timed_pause_but_not_a_weight_or_its_analysis() -> None:
    spec = CanarySpec(STEPS, (ERRORS,))
    assert decide(spec, Position(1, 5), "promote") == Advance(promoted=True)
    assert decide(spec, Position(2, 5), "promote") == ChangeWeight(25)
    assert decide(spec, Position(2, 25), "promote") == Analyse(25)


def test_without_analysis_a_weight_step_moves_straight_on() -> None:
    assert decide(CanarySpec(STEPS), Position(0, 5)) == Advance()


def test_steps_that_end_below_100_promote_after_the_last() -> None:
    done, _ = walk(CanarySpec((SetWeight(10), Pause(5.0))))
    assert done == [ChangeWeight(10), Advance(), Wait(5.0), Advance(), Promote()]


def test_a_failed_analysis_rolls_back_with_its_evidence() -> None:
    evidence = {"weight": 25, "metrics": {"error_rate": {"measurements": [{"canary": 0.05}]}}}
    bad = AnalysisVerdict("failed", "error_rate: 1 of 1 measurements failed", evidence)
    done, at = walk(CanarySpec(STEPS, (ERRORS,)), lambda w: bad if w == 25 else PASSED)
    assert done[-1] == RollBack(
        "analysis at 25% failed: error_rate: 1 of 1 measurements failed", evidence
    )
    assert at.weight == 25  # the engine then sets 0 and takes the rollback path


def test_a_running_analysis_is_analysed_again() -> None:
    running = AnalysisVerdict("running", "")
    assert decide(CanarySpec(STEPS, (ERRORS,)), Position(0, 5, 0.0, running)) == Analyse(5)


def test_an_inconclusive_analysis_waits_for_a_person_like_argo() -> None:
    unsure = AnalysisVerdict("inconclusive", "error_rate: 1 of 1 measurements inconclusive")
    at = Position(0, 5, 0.0, unsure)
    spec = CanarySpec(STEPS, (ERRORS,))
    assert decide(spec, at) == AwaitPromote(
        "analysis at 5% inconclusive: error_rate: 1 of 1 measurements inconclusive"
    )
    assert decide(spec, at, "promote") == Advance(promoted=True)
    assert decide(spec, at, "abort") == RollBack("aborted at 5%")


def _positions(spec: CanarySpec) -> Sequence[Position]:
    return [Position(i, w) for i in range(len(spec.steps) + 1) for w in (0, 5, 25, 50)]


@given(st.sampled_from(_positions(CanarySpec(STEPS, (ERRORS,)))))
def test_an_abort_at_any_step_rolls_back(at: Position) -> None:
    action = decide(CanarySpec(STEPS, (ERRORS,)), at, "abort")
    assert action == RollBack(f"aborted at {at.weight}%")


_PAUSES = st.one_of(st.none(), st.just(Pause(None)), st.floats(1, 600).map(Pause))


@given(
    st.lists(st.integers(1, 99), unique=True, max_size=5).map(sorted),
    st.lists(_PAUSES, min_size=5, max_size=5),
    st.sampled_from([PASSED, AnalysisVerdict("failed", "bad")]),
    st.booleans(),
    st.booleans(),
)
def test_every_walk_ends_in_promote_rollback_or_a_wait_for_promote(
    weights: list[int],
    pauses: list[Pause | None],
    verdict: AnalysisVerdict,
    with_analysis: bool,
    promotes: bool,
) -> None:
    steps: list[SetWeight | Pause] = []
    for w, p in zip(weights, pauses, strict=False):
        steps += [SetWeight(w), *([p] if p else [])]
    spec = CanarySpec(tuple(steps), (ERRORS,) if with_analysis else ())

    done, at = walk(spec, lambda w: verdict, _promote_when_paused if promotes else _never)

    end = done[-1]
    changed = [a.percent for a in done if isinstance(a, ChangeWeight)]
    assert changed == weights[: len(changed)]  # in order, none skipped
    if isinstance(end, Promote):
        assert at.index == len(steps) and changed == weights
        assert not (with_analysis and weights) or verdict is PASSED
    elif isinstance(end, RollBack):
        assert with_analysis and verdict is not PASSED and end.reason.endswith("failed: bad")
    else:
        assert isinstance(end, AwaitPromote) and not promotes


def _never(action: Action, at: Position) -> Request:
    return None


def test_the_journal_says_each_apps_weight_until_its_switch() -> None:
    rows = [
        ("web", "canary", "started", "weight 10%"),
        ("web", "canary", "done", "weight 10%"),
        ("api", "canary", "done", "weight 25%"),
        ("web", "canary", "done", "analysis at 10% passed: error_rate < 0.01"),
        ("web", "canary", "started", "weight 50%"),  # not set yet
        ("api", "canary", "done", "weight 0% (analysis at 25% failed: error_rate: ...)"),
    ]
    assert journal_weights(rows) == {"web": 10, "api": 0}
    promoted = [*rows, ("web", "canary", "done", "weight 50%"), ("web", "switch", "done", "green")]
    assert journal_weights(promoted) == {"api": 0}
