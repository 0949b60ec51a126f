"""Stopping a run from outside: an abort requested between steps rolls back; a runner that lost
its lease (another epoch took it) stops without touching a target again."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import update

from shipdeck.core.errors import ConflictError
from shipdeck.core.services.runs import Fenced, abort, reconcile, run_plan, start_run
from shipdeck.core.services.runs.engine import execute_run
from shipdeck.core.storage.tables import LEASES
from tests.engine.conftest import APPS, LEASE, Rig, journal


def test_an_abort_requested_mid_run_stops_at_the_next_step_and_rolls_back(rig: Rig) -> None:
    rig.shipped("1.0.0")
    plan = rig.plan("2.0.0")
    asked: list[str] = []

    def abort_once(app: str, call: str, args: Any) -> None:
        if (app, call) == ("chat-api", "stage") and not asked:
            asked.append(abort(rig.user("alice"), plan).state)  # between two of its steps

    for t in rig.targets.by_app.values():
        t.before_call = abort_once

    result = run_plan(rig.user(), plan)

    assert asked == ["running"]  # abort of a live run only asks the runner
    assert (result.state, result.result) == (
        "aborted",
        "aborted by alice; rolled back what this run had switched",
    )
    rows = journal(result)
    assert ("chat-api", "stage", "done") in rows  # the step under way finished...
    assert ("chat-api", "health", "started") not in rows  # ...and the next never started
    assert rig.live() == dict.fromkeys(APPS, "1.0.0")
    assert rig.calls("web") == []
    assert [c[1:] for c in rig.calls("model-server")][-2:] == [
        ("switch", ("blue", result.epoch)),
        ("stop_idle", ("green", result.epoch)),
    ]
    kinds = [k for k, _ in rig.kinds(plan)]
    assert kinds.index("run.abort_requested") < kinds.index("app.rolled_back")
    assert kinds[-1] == "run.aborted"


def test_a_plan_aborted_before_it_runs_touches_nothing(rig: Rig) -> None:
    plan = rig.plan("1.0.0")

    result = abort(rig.user(), plan)

    assert (result.state, result.result) == ("aborted", "aborted by alice before it ran")
    assert rig.calls() == [] and result.steps == ()
    assert [k for k, _ in rig.kinds(plan)] == ["plan.created", "plan.aborted"]
    with pytest.raises(ConflictError, match="nothing to abort"):
        abort(rig.user(), plan)


def test_a_runner_whose_lease_is_taken_over_stops_and_its_late_call_is_refused(
    rig: Rig,
) -> None:
    """The runner stalls inside model-server's switch past its lease; reconcile takes over (a
    new epoch) and rolls back; the stalled switch then reaches the target with the old epoch
    and is refused (StaleEpoch), and the runner stops: Fenced, nothing more from it."""
    rig.shipped("1.0.0")
    plan = rig.plan("2.0.0")
    ticket = start_run(rig.user(), plan)
    taken: list[str] = []

    def stall(app: str, call: str, args: Any) -> None:
        if (app, call) == ("model-server", "switch") and not taken:
            rig.clock.advance(LEASE + 1)
            [done] = reconcile(rig.user("alice"))
            taken.append(done.state)

    rig.targets.by_app["model-server"].before_call = stall

    with pytest.raises(Fenced, match=f"epoch {ticket.epoch} < {ticket.epoch + 1}"):
        execute_run(rig.user(), ticket)

    assert taken == ["rolled_back"]
    assert rig.state(plan)[0] == "rolled_back"  # the new holder's decision stands
    assert rig.live() == dict.fromkeys(APPS, "1.0.0")
    late = [c for c in rig.calls() if c[2][-1] == ticket.epoch]
    assert late == [("model-server", "stage", ("green", "2.0.0", ticket.epoch))]
    kinds = rig.kinds(plan)
    assert ("run.reconciling", None) in kinds
    assert ("run.switch.recovered", "model-server") in kinds  # its open intent, closed


def test_a_runner_fenced_at_its_journal_write_touches_no_target_after(rig: Rig) -> None:
    """Another epoch took the lease between two target calls: the next journal transaction
    fails its fence, so the runner stops before calling a target again."""
    rig.shipped("1.0.0")
    plan = rig.plan("2.0.0")
    ticket = start_run(rig.user(), plan)
    calls_then: list[int] = []

    def take_over(app: str, call: str, args: Any) -> None:
        if (app, call) == ("model-server", "stage") and not calls_then:
            with rig.base.db.write() as conn:  # what a takeover writes: a newer epoch
                conn.execute(update(LEASES).values(epoch=LEASES.c.epoch + 1))
            calls_then.append(len(rig.calls()))

    rig.targets.by_app["model-server"].before_call = take_over

    with pytest.raises(Fenced, match="lost the staging lease"):
        execute_run(rig.user(), ticket)

    assert len(rig.calls()) == calls_then[0] + 1  # the stage under way, nothing after it
    assert rig.state(plan)[0] == "running"  # the plan's fate is the new holder's
    kinds = rig.kinds(plan, "run.stage")
    assert kinds == [("run.stage.intent", "model-server")]  # its outcome could not be written
