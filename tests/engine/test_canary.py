"""The canary on fakes: a healthy canary walks its weights and promotes with the existing switch;
errors at a weight roll back within one analysis interval with the measured values recorded; an
abort mid-canary and a target that cannot split traffic; a pause until promoted, then promoted."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from shipdeck.core.errors import ConfigError, ConflictError, PermissionDenied
from shipdeck.core.services.plans import StepView
from shipdeck.core.services.runs import abort, promote, run_plan
from tests.engine.conftest import Rig, with_targets
from tests.fakes.weights import HEALTHY, ScriptedMetrics, ScriptedQueries

CANARY = """strategy = "canary"
[environments.staging.canary]
steps = [{{ set_weight = 5 }}, {{ pause = "2m" }}, {{ set_weight = 25 }}, {pause},
         {{ set_weight = 50 }}, {{ set_weight = 100 }}]
[environments.staging.canary.analysis.error_rate]
success = "error_rate < 0.01"
interval = "1m"
count = 2
[environments.staging.canary.analysis.latency_p95_ms]
success = "latency_p95_ms <= 1.2 * stable"
interval = "1m"
"""


def _canary(rig: Rig, pause: str = '{ pause = "1m" }') -> ScriptedMetrics:
    """web 1.0.0 live on blue (blue/green, the first deployment), then canaries in staging."""
    rig.shipped("1.0.0")
    rig.configure(with_targets(staging=CANARY.format(pause=pause)))
    t = rig.targets.by_app
    metrics = ScriptedMetrics(lambda app: t[app].split.percent, lambda app: t[app].live)
    rig.base = replace(rig.base, metrics=metrics)
    return metrics


def _canary_rows(steps: tuple[StepView, ...]) -> list[tuple[str, str]]:
    return [(s.state, s.detail) for s in steps if s.step == "canary"]


def test_a_healthy_canary_walks_every_weight_then_switches(rig: Rig) -> None:
    metrics = _canary(rig)
    plan = rig.plan("2.0.0", apps=["web"])

    result = run_plan(rig.user(), plan)

    assert result.state == "succeeded", result.result
    e = result.epoch
    assert rig.calls("web") == [
        ("web", "stage", ("green", "2.0.0", e)),
        ("web", "set_weight", ("green", 5, e)),
        ("web", "set_weight", ("green", 25, e)),
        ("web", "set_weight", ("green", 50, e)),
        ("web", "switch", ("green", e)),
        ("web", "stop_idle", ("blue", e)),
    ]
    done = [d for st, d in _canary_rows(result.steps) if st == "done"]
    assert done[:2] == ["weight 5%", done[1]] and done[1].startswith("analysis at 5% passed")
    assert [d for d in done if d.startswith("weight")] == ["weight 5%", "weight 25%", "weight 50%"]
    assert "paused 120s at 5%" in done and "paused 60s at 25%" in done
    # Two error_rate measurements a minute apart per weight, both colors each time.
    assert {(c, w) for _, c, w, _ in metrics.asked} == {
        (c, w) for c in ("blue", "green") for w in (5, 25, 50)
    }
    assert rig.clock.elapsed == 3 * 120 + 120 + 60  # analyses, then the two pauses
    analyses = [
        ev for ev in rig.events(plan) if ev.kind == "run.canary" and "metrics" in ev.payload
    ]
    assert [ev.payload["weight"] for ev in analyses] == [5, 25, 50]
    assert (
        analyses[0].payload["metrics"]["error_rate"]["measurements"]
        == [{"outcome": "successful", "canary": 0.001, "stable": 0.001}] * 2
    )
    intents = [ev.payload for ev in rig.events(plan) if ev.kind == "run.canary.intent"]
    assert [i["weight"] for i in intents] == [5, 5, 25, 25, 50, 50]  # each weight, its analysis


def test_errors_at_the_second_weight_roll_back_within_one_interval(rig: Rig) -> None:
    metrics = _canary(rig)
    metrics.script[("web", 25)] = ({**HEALTHY, "error_rate": 0.05}, HEALTHY)
    plan = rig.plan("2.0.0", apps=["web"])
    at: dict[int, float] = {}

    def when(app: str, call: str, args: Any) -> None:
        if call == "set_weight":
            at[args[1]] = rig.clock.elapsed

    rig.targets.by_app["web"].before_call = when

    result = run_plan(rig.user(), plan)

    assert result.state == "rolled_back"
    assert "web failed at canary: analysis at 25% failed: error_rate: 1 of 1" in result.result
    assert at[0] - at[25] == 60.0  # one interval after the weight, not the whole count
    assert [c[1:] for c in rig.calls("web")][-3:] == [
        ("set_weight", ("green", 25, result.epoch)),
        ("set_weight", ("green", 0, result.epoch)),
        ("stop_idle", ("green", result.epoch)),
    ]
    assert rig.targets.by_app["web"].live == "blue" and rig.live()["web"] == "1.0.0"
    failed = next(ev for ev in rig.events(plan) if ev.kind == "run.canary.failed")
    assert failed.payload["weight"] == 25
    assert failed.payload["metrics"]["error_rate"]["measurements"] == [
        {"outcome": "failed", "canary": 0.05, "stable": 0.001}
    ]
    rows = _canary_rows(result.steps)
    assert ("done", "weight 0% (analysis at 25% failed: error_rate: 1 of 1 measurements failed "
            "'error_rate < 0.01' (failure limit 0))") in rows  # fmt: skip


def test_an_abort_mid_canary_sets_the_weight_to_0_and_rolls_back(rig: Rig) -> None:
    _canary(rig)
    plan = rig.plan("2.0.0", apps=["web"])

    def progress(s: StepView) -> None:
        if (s.step, s.state, s.detail) == ("canary", "started", "pause 60s at 25%"):
            abort(rig.user(), plan)

    result = run_plan(rig.user(), plan, progress)

    assert result.state == "aborted"
    assert [c[1:] for c in rig.calls("web")][-2:] == [
        ("set_weight", ("green", 0, result.epoch)),
        ("stop_idle", ("green", result.epoch)),
    ]
    assert ("done", "weight 0% (aborted by alice)") in _canary_rows(result.steps)
    assert rig.targets.by_app["web"].split.percent == 0 and rig.live()["web"] == "1.0.0"


def test_a_pause_until_promoted_waits_for_plan_promote(rig: Rig) -> None:
    _canary(rig, pause="{ pause = {} }")
    plan = rig.plan("2.0.0", apps=["web"])
    looks: list[float] = []

    def progress(s: StepView) -> None:
        if (s.step, s.state) == ("canary", "started") and "until promoted" in s.detail:
            looks.append(rig.clock.elapsed)
            promote(rig.user(), plan)

    result = run_plan(rig.user(), plan, progress)

    assert result.state == "succeeded", result.result
    rows = _canary_rows(result.steps)
    assert ("started", "paused at 25% until promoted") in rows
    assert ("done", "promoted by alice at 25%") in rows
    assert [k for k, _ in rig.kinds(plan, "run.promote")] == ["run.promote_requested"]
    assert looks and ("web", "switch", ("green", result.epoch)) in rig.calls("web")


def test_promote_needs_a_running_plan_and_the_run_permission(rig: Rig) -> None:
    _canary(rig)
    plan = rig.plan("2.0.0", apps=["web"])
    with pytest.raises(ConflictError, match="only a running canary can be promoted"):
        promote(rig.user(), plan)
    with pytest.raises(PermissionDenied, match=r"plan\.run") as refused:
        promote(rig.user("erin"), plan)
    assert refused.value.exit_code == 4


def test_a_target_that_cannot_split_traffic_is_refused_before_anything_runs(rig: Rig) -> None:
    _canary(rig)
    rig.targets.by_app["web"].weighted = False
    plan = rig.plan("2.0.0", apps=["web"])

    with pytest.raises(ConfigError) as refused:
        run_plan(rig.user(), plan)

    assert refused.value.exit_code == 4
    assert "apps.web.targets.staging: the 'local' target adapter cannot split traffic" in (
        refused.value.message
    )
    assert rig.calls("web") == [] and rig.state(plan)[0] != "running"


QUERIED = """strategy = "canary"
[environments.staging.canary]
steps = [{ set_weight = 5 }, { set_weight = 100 }]
[environments.staging.canary.analysis.error_rate]
success = "error_rate < 0.01"
interval = "1m"
consecutive_error_limit = 1
prometheus = { address = "http://127.0.0.1:9", query = 'errors{app="{app}",color="{color}"}[{window}]' }
[environments.staging.canary.analysis.latency_p95_ms]
success = "latency_p95_ms <= 1.2 * stable"
interval = "1m"
"""


def _queried(rig: Rig, queries: ScriptedQueries) -> ScriptedMetrics:
    """web 1.0.0 live on blue; its staging canary's error_rate from a query, its latency from
    the target's counters."""
    rig.shipped("1.0.0")
    rig.configure(with_targets(staging=QUERIED))
    t = rig.targets.by_app
    metrics = ScriptedMetrics(lambda app: t[app].split.percent, lambda app: t[app].live)
    rig.base = replace(rig.base, metrics=metrics, queries=queries)
    return metrics


def test_a_metric_with_a_query_asks_it_for_both_colors_and_the_rest_the_target(rig: Rig) -> None:
    queries = ScriptedQueries({"green": 0.002, "blue": 0.0})
    metrics = _queried(rig, queries)
    plan = rig.plan("2.0.0", apps=["web"])

    result = run_plan(rig.user(), plan)

    assert result.state == "succeeded", result.result
    assert queries.asked == [
        ("http://127.0.0.1:9", 'errors{app="web",color="green"}[60s]'),
        ("http://127.0.0.1:9", 'errors{app="web",color="blue"}[60s]'),
    ]
    assert {(c, w) for _, c, w, _ in metrics.asked} == {("green", 5), ("blue", 5)}
    analysis = next(
        e for e in rig.events(plan) if e.kind == "run.canary" and "metrics" in e.payload
    )
    assert analysis.payload["metrics"]["error_rate"]["measurements"] == [
        {"outcome": "successful", "canary": 0.002, "stable": 0.0}
    ]


def test_a_query_with_no_value_is_inconclusive_and_waits_for_a_person(rig: Rig) -> None:
    queries = ScriptedQueries({"blue": 0.0})  # nothing for the canary: an empty vector
    _queried(rig, queries)
    plan = rig.plan("2.0.0", apps=["web"])
    waited: list[str] = []

    def progress(s: StepView) -> None:
        if (s.step, s.state) == ("canary", "started") and "inconclusive" in s.detail:
            waited.append(s.detail)
            promote(rig.user(), plan)

    result = run_plan(rig.user(), plan, progress)

    assert result.state == "succeeded", result.result  # promoted past the inconclusive one
    assert waited and waited[0].startswith("analysis at 5% inconclusive: error_rate: 1 of 1")
    first = next(e for e in rig.events(plan) if e.kind == "run.canary" and "metrics" in e.payload)
    assert first.payload["metrics"]["error_rate"]["measurements"] == [
        {"outcome": "inconclusive", "canary": None, "stable": 0.0, "note": "no canary value"}
    ]


def test_a_query_that_cannot_be_asked_is_an_error_and_errors_in_a_row_fail(rig: Rig) -> None:
    _queried(rig, ScriptedQueries(failing=True))
    plan = rig.plan("2.0.0", apps=["web"])

    result = run_plan(rig.user(), plan)

    assert result.state == "rolled_back"
    assert "error_rate: the metrics source failed 2 times in a row (limit 1): prometheus" in (
        result.result
    )
    failed = next(ev for ev in rig.events(plan) if ev.kind == "run.canary.failed")
    note = "prometheus 127.0.0.1:9: cannot reach: connection refused"
    assert (
        failed.payload["metrics"]["error_rate"]["measurements"]
        == [{"outcome": "error", "canary": None, "stable": None, "note": note}] * 2
    )
    assert rig.targets.by_app["web"].split.percent == 0 and rig.live()["web"] == "1.0.0"
