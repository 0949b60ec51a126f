"""Recovery: a run whose runner the process table says is dead, interrupted at each point, is
reconciled as core.domain.run_end documents: not every app switched -> rolled back; every app
already on its new release -> verified and finished (or rolled back when it fails the check); an
abort asked for meanwhile -> aborted. A runner that is alive is left alone."""

from __future__ import annotations

from typing import Any

import pytest

from shipdeck.core.errors import OperationFailed
from shipdeck.core.services.plans import get_plan
from shipdeck.core.services.runs import LaunchedRun, abort, launch_run, reconcile, wait_run
from tests.engine.conftest import APPS, Rig
from tests.fakes.launcher import Killed

ROLLED_BACK = "reconciled: the run was interrupted before every app switched; rolled back"
FINISHED = "reconciled: every app already served its new release; finished"


def launched_upgrade(rig: Rig) -> LaunchedRun:
    """1.0.0 live (blue), then a 2.0.0 plan started by `plan run`'s way: a launched runner."""
    rig.shipped("1.0.0")
    launched = launch_run(rig.user(), rig.plan("2.0.0"))
    assert rig.launcher.launched[-1].pid == launched.pid
    return launched


def kill_at(rig: Rig, app: str, call: str, *, after: bool = False) -> None:
    """Run the launched runner in-process until `app`'s `call`, and kill it there: before the
    call reaches the target, or (`after`) once a switch has happened but nothing recorded it."""

    def hook(a: str, c: str, args: Any) -> None:
        if (a, c) == (app, call):
            if after:
                rig.targets.by_app[a].live = args[0]
            raise Killed

    for t in rig.targets.by_app.values():
        t.before_call = hook
    assert rig.launcher.run(rig.user()) is None  # it never got to say how the run ended
    for t in rig.targets.by_app.values():
        t.before_call = None
    assert rig.state(rig.launcher.launched[-1].request.plan_id)[0] == "running"


def test_a_runner_that_died_before_running_is_rolled_back_without_a_target_call(
    rig: Rig,
) -> None:
    launched = launched_upgrade(rig)
    plan = launched.plan_id
    rig.launcher.die()
    with pytest.raises(OperationFailed, match="run 'shipdeck reconcile'"):
        wait_run(rig.user(), plan, launched=launched)

    [done] = reconcile(rig.user())

    assert (done.plan_id, done.decision, done.state, done.result) == (
        plan,
        "rolled_back",
        "rolled_back",
        ROLLED_BACK,
    )
    assert rig.calls() == []
    assert rig.live() == dict.fromkeys(APPS, "1.0.0")
    kinds = [k for k, _ in rig.kinds(plan, "run.")]
    assert kinds.index("run.reconciling") < kinds.index("run.rolled_back") == len(kinds) - 1


@pytest.mark.parametrize(
    "app, call, undone",
    [
        # killed before its first target call: nothing to undo, the open intent is closed
        ("model-server", "stage", {}),
        # staged on green, not switched: green is stopped
        ("model-server", "switch", {"model-server": [("stop_idle", "green")]}),
        # model-server switched and verified, chat-api not started: model-server goes back
        (
            "chat-api",
            "stage",
            {"model-server": [("switch", "blue"), ("stop_idle", "green")]},
        ),
    ],
)
def test_a_runner_killed_before_every_app_switched_is_rolled_back(
    rig: Rig, app: str, call: str, undone: dict[str, list[tuple[str, str]]]
) -> None:
    plan = launched_upgrade(rig).plan_id
    kill_at(rig, app, call)
    killer_epoch = rig.launcher.launched[-1].request.epoch
    before = len(rig.calls())

    [done] = reconcile(rig.user())

    assert (done.decision, done.state, done.result) == ("rolled_back", "rolled_back", ROLLED_BACK)
    assert rig.live() == dict.fromkeys(APPS, "1.0.0")
    by_reconcile = rig.calls()[before:]
    assert {a: [(c, args[0]) for a2, c, args in by_reconcile if a2 == a] for a in undone} == undone
    assert all(args[-1] == killer_epoch + 1 for _, _, args in by_reconcile)  # the new epoch
    assert {a for a, _, _ in by_reconcile} <= set(undone)
    [recovered] = [e for e in rig.events(plan) if e.kind.endswith(".recovered")]
    assert (recovered.kind, recovered.app) == (f"run.{call}.recovered", app)
    assert recovered.payload["found"].startswith("blue live")


@pytest.mark.parametrize("after", [False, True], ids=["journaled", "switch-not-journaled"])
def test_a_runner_killed_once_every_app_switched_is_verified_and_finished(
    rig: Rig, after: bool
) -> None:
    """Killed at the first finalize, or inside web's switch after it happened (the journal never
    heard of it): every app serves its new release, so reconcile checks and finishes the run."""
    plan = launched_upgrade(rig).plan_id
    if after:
        kill_at(rig, "web", "switch", after=True)
    else:
        kill_at(rig, "model-server", "stop_idle")

    [done] = reconcile(rig.user())

    assert (done.decision, done.state, done.result) == ("finished", "succeeded", FINISHED)
    assert rig.live() == dict.fromkeys(APPS, "2.0.0")
    stopped = {a for a, c, args in rig.calls() if c == "stop_idle" and args[0] == "blue"}
    assert stopped == set(APPS)  # finalize, done by the reconciler
    switched = [a for k, a in rig.kinds(plan, "app.switched")]
    assert switched == list(APPS)  # web's too: recorded as found live
    epoch = rig.launcher.launched[-1].request.epoch + 1  # the reconciler's
    steps = get_plan(rig.user(), plan).steps
    checked = [s.app for s in steps if (s.step, s.state, s.epoch) == ("verify", "done", epoch)]
    assert checked == list(APPS)  # health asked again now, not taken from the dead runner
    if after:
        found = [
            e.payload.get("found") for e in rig.events(plan) if e.kind == "run.switch.recovered"
        ]
        assert found == ["green live, green holds 2.0.0"]


def test_a_switched_run_that_fails_its_check_at_reconcile_is_rolled_back(rig: Rig) -> None:
    plan = launched_upgrade(rig).plan_id
    kill_at(rig, "model-server", "stop_idle")
    rig.targets.unhealthy = frozenset({"web"})  # went bad while nobody watched

    [done] = reconcile(rig.user())

    assert (done.decision, done.state) == ("rolled_back", "rolled_back")
    assert done.result.startswith("web failed at verify: web 2.0.0 on green is unhealthy")
    assert rig.live() == dict.fromkeys(APPS, "1.0.0")
    assert [a for k, a in rig.kinds(plan, "app.rolled_back")] == list(reversed(APPS))


def test_an_abort_of_a_run_whose_runner_died_rolls_it_back_at_once(rig: Rig) -> None:
    plan = launched_upgrade(rig).plan_id
    kill_at(rig, "chat-api", "switch")

    result = abort(rig.user(), plan)

    assert (result.state, result.result) == (
        "aborted",
        "aborted by alice; reconcile rolled back the interrupted run",
    )
    assert rig.live() == dict.fromkeys(APPS, "1.0.0")
    kinds = [k for k, _ in rig.kinds(plan, "run.")]
    assert kinds.index("run.abort_requested") < kinds.index("run.reconciling")
    assert kinds[-1] == "run.aborted"


def test_reconcile_leaves_a_live_runner_alone(rig: Rig) -> None:
    plan = launched_upgrade(rig).plan_id  # launched, alive, its lease unexpired

    assert reconcile(rig.user()) == []
    assert rig.state(plan)[0] == "running"

    result = rig.launcher.run(rig.user())  # the runner goes on, undisturbed

    assert result is not None and result.state == "succeeded"
    assert [k for k, _ in rig.kinds(plan, "run.runner_")] == [
        "run.runner_armed",
        "run.runner_admitted",
    ]
