"""Failures: at each step of the way, in the first wave and in a later one, under both failure
policies (rollback: everything this run switched goes back; halt: stop, leave what succeeded),
and a release that goes bad while the old colors are kept warm."""

from __future__ import annotations

from typing import Any

import pytest

from shipdeck.core.domain.plan import FailurePolicy
from shipdeck.core.errors import AdapterError
from shipdeck.core.services.plans import StepView
from shipdeck.core.services.runs import HEALTH_ATTEMPTS, HEALTH_PAUSE, run_plan
from tests.engine.conftest import APPS, Rig, journal, with_targets


def failing_plan(rig: Rig, app: str, policy: FailurePolicy) -> str:
    """1.0.0 live everywhere (blue), then a 2.0.0 plan under `policy` whose `app` is unhealthy."""
    rig.shipped("1.0.0")
    rig.targets.unhealthy = frozenset({app})  # from the next run's targets on
    return rig.plan("2.0.0", failure_policy=policy)


UNHEALTHY = "is unhealthy: fake target: unhealthy"


@pytest.mark.parametrize("bad", ["model-server", "chat-api"])
def test_rollback_policy_switches_back_everything_the_run_switched(rig: Rig, bad: str) -> None:
    plan = failing_plan(rig, bad, "rollback")

    result = run_plan(rig.user(), plan)

    assert result.state == "rolled_back" and result.exit_code == 5
    assert result.result == (
        f"{bad} failed at health: {bad} 2.0.0 on green {UNHEALTHY}; "
        "rolled back every app this run had switched"
    )
    assert rig.live() == dict.fromkeys(APPS, "1.0.0")
    assert rig.clock.sleeps == [HEALTH_PAUSE] * (HEALTH_ATTEMPTS - 1)
    rows = journal(result)
    assert (bad, "switch", "started") not in rows  # a failed health check never switches
    assert ("web", "stage", "started") not in rows  # nothing after the failing wave starts
    # every app is rolled back, last wave first; only what changed is undone
    assert [a for a, s, st in rows if (s, st) == ("rollback", "done")] == list(reversed(APPS))
    epoch = result.epoch
    if bad == "chat-api":  # model-server had switched in wave 1: back to blue
        assert rig.calls("model-server") == [
            ("model-server", "stage", ("green", "2.0.0", epoch)),
            ("model-server", "switch", ("green", epoch)),
            ("model-server", "switch", ("blue", epoch)),
            ("model-server", "stop_idle", ("green", epoch)),
        ]
        assert rig.kinds(plan, "app.rolled_back") == [("app.rolled_back", "model-server")]
    assert rig.calls(bad) == [
        (bad, "stage", ("green", "2.0.0", epoch)),
        (bad, "stop_idle", ("green", epoch)),  # what this run staged is stopped
    ]
    assert rig.calls("web") == []
    assert rig.kinds(plan, "app.failed") == [("app.failed", bad)]
    assert rig.kinds(plan, "run.rolled_back") == [("run.rolled_back", None)]


@pytest.mark.parametrize("bad", ["model-server", "chat-api"])
def test_halt_policy_stops_and_leaves_what_succeeded(rig: Rig, bad: str) -> None:
    plan = failing_plan(rig, bad, "halt")

    result = run_plan(rig.user(), plan)

    assert result.state == "failed" and result.exit_code == 5
    assert result.result == (
        f"{bad} failed at health: {bad} 2.0.0 on green {UNHEALTHY}; "
        "halted (failure policy halt), the rest is left as it is"
    )
    rows = journal(result)
    assert not any(s == "rollback" for _, s, _ in rows)
    assert ("web", "stage", "started") not in rows
    first_wave_shipped = bad == "chat-api"
    assert rig.live() == {
        "model-server": "2.0.0" if first_wave_shipped else "1.0.0",
        "chat-api": "1.0.0",
        "web": "1.0.0",
    }
    assert {c[1] for c in rig.calls(bad)} == {"stage"}  # staged, never switched, left there
    assert rig.kinds(plan, "app.switched") == (
        [("app.switched", "model-server")] if first_wave_shipped else []
    )
    assert rig.kinds(plan, "run.failed") == [("run.failed", None)]


def refuse(rig: Rig, app: str, call: str) -> None:
    """`app`'s target answers `call` with an adapter error (the call does not happen)."""

    def hook(a: str, c: str, args: Any) -> None:
        if (a, c) == (app, call):
            raise AdapterError(f"{app}: the target refused {call}")

    rig.targets.by_app[app].before_call = hook


@pytest.mark.parametrize("call", ["stage", "switch"])
def test_a_target_call_that_fails_is_recorded_and_rolled_back(rig: Rig, call: str) -> None:
    rig.shipped("1.0.0")
    plan = rig.plan("2.0.0")
    refuse(rig, "chat-api", call)

    result = run_plan(rig.user(), plan)

    assert result.state == "rolled_back"
    assert result.result.startswith(f"chat-api failed at {call}: chat-api: the target refused")
    assert ("chat-api", call, "failed") in journal(result)
    kinds = [k for k, a in rig.kinds(plan, f"run.{call}") if a == "chat-api"]
    assert kinds == [f"run.{call}.intent", f"run.{call}.failed"]
    assert rig.live() == dict.fromkeys(APPS, "1.0.0")


def test_a_release_that_fails_verify_after_its_switch_is_switched_back(rig: Rig) -> None:
    rig.shipped("1.0.0")
    plan = rig.plan("2.0.0")
    web = rig.targets.by_app["web"]

    def sicken(app: str, call: str, args: Any) -> None:
        if call == "switch":
            web.healthy = False  # healthy before the switch, not after

    web.before_call = sicken

    result = run_plan(rig.user(), plan)

    assert result.state == "rolled_back"
    assert result.result.startswith("web failed at verify: web 2.0.0 on green is unhealthy")
    rows = journal(result)
    assert rows.index(("web", "switch", "done")) < rows.index(("web", "verify", "failed"))
    assert rig.live() == dict.fromkeys(APPS, "1.0.0")
    assert [a for k, a in rig.kinds(plan, "app.rolled_back")] == list(reversed(APPS))


def test_a_release_that_goes_unhealthy_while_warm_is_rolled_back(rig: Rig) -> None:
    rig.configure(with_targets(staging='warm = "30s"'))
    rig.shipped("1.0.0")
    plan = rig.plan("2.0.0")

    def progress(s: StepView) -> None:
        if (s.step, s.state) == ("warm", "started"):
            rig.targets.by_app["chat-api"].healthy = False

    result = run_plan(rig.user(), plan, progress)

    assert result.state == "rolled_back"
    assert result.result == (
        "chat-api failed at warm: chat-api 2.0.0 went unhealthy while warm: fake target: "
        "unhealthy; rolled back every app this run had switched"
    )
    rows = journal(result)
    assert ("chat-api", "warm", "failed") in rows
    assert not any(s == "finalize" for _, s, _ in rows)  # the old colors were never stopped
    assert rig.clock.elapsed == 1.0  # the first check after a second of warmth caught it
    assert rig.live() == dict.fromkeys(APPS, "1.0.0")
    for app in APPS:  # straight back to the warm old color: nothing to redeploy
        assert [c[1:] for c in rig.calls(app)][-2:] == [
            ("switch", ("blue", result.epoch)),
            ("stop_idle", ("green", result.epoch)),
        ]
