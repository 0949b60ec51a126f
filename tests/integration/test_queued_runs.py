"""`plan run --when-open`: a plan queued for its window starts at the opening through the same
policy check as any run, survives the session that queued it, can be cancelled, and gives up
(recording why) when what it was approved under no longer stands. SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select

from shipdeck.core.errors import BlockedError, PermissionDenied
from shipdeck.core.services import audit_log
from shipdeck.core.services.actions import plan_actions
from shipdeck.core.services.audit_log import AuditFilter
from shipdeck.core.services.context import Context
from shipdeck.core.services.plans import approve, create_plan, get_plan
from shipdeck.core.services.runs import queue_run, wait_for_window
from shipdeck.core.services.status import status
from shipdeck.core.storage.tables import QUEUED_RUNS
from shipdeck.core.system.processes import ProcProcesses
from tests.fakes.clock import FakeClock
from tests.fakes.launcher import FakeLauncher
from tests.fakes.processes import FakeProcesses
from tests.integration.shipping import front_port, get_version, live, release_all, shipping
from tests.support.cli import cli
from tests.support.workspace import WorkspaceFixture

NOW = datetime.now(UTC).replace(microsecond=0)  # the CLI and the waiters run on the real clock
FREEZE_END = NOW + timedelta(hours=1)


def freeze(end: datetime = FREEZE_END) -> str:
    return (
        "[freezes.now]\n"
        f'start = "{(NOW - timedelta(hours=1)).isoformat()}"\n'
        f'end = "{end.isoformat()}"\n'
        'reason = "launch week"\n'
    )


STAGING = 'freezes = ["now"]\napprovals = { required = 1, roles = ["approvers"] }'


def waiting_here(ws: WorkspaceFixture, user: str = "alice") -> Context:
    """A person whose waiter is launched as a fake process: the test is the waiter itself."""
    processes = FakeProcesses()
    return replace(live(ws, user), launcher=FakeLauncher(processes), processes=processes)


def kinds(ws: WorkspaceFixture, plan_id: str) -> list[str]:
    events = audit_log.list_events(ws.base, AuditFilter(plan=plan_id), limit=1000, ascending=True)
    return [e.kind for e in events]


def approved_plan(ws: WorkspaceFixture) -> str:
    alice = live(ws)
    release_all(alice, "1.0.0", apps=["web"])
    plan = create_plan(alice, "staging", ["web"])
    approve(live(ws, "bob"), plan.id)
    assert [b.kind for b in get_plan(alice, plan.id).blockers] == ["frozen"]
    return plan.id


def test_a_queued_run_starts_when_its_freeze_ends(ws: WorkspaceFixture) -> None:
    with shipping(ws, top=freeze(), env_extra={"staging": STAGING}):
        plan_id = approved_plan(ws)
        alice = waiting_here(ws)
        before = plan_actions(alice, get_plan(alice, plan_id))
        assert before["queue"].allowed and not before["run"].allowed  # frozen: wait it out
        queued = queue_run(alice, plan_id)
        after = plan_actions(alice, get_plan(alice, plan_id))
        assert not after["queue"].applies and after["unqueue"].allowed
        erin = plan_actions(ws.as_user("erin"), get_plan(alice, plan_id))
        assert erin["unqueue"].reasons[0].kind == "not_permitted"
        assert [w.request.plan_id for w in alice.launcher.waiters] == [plan_id]  # type: ignore[attr-defined]
        assert queued.waiter_gone is False
        assert (queued.state, queued.by, queued.starts_at) == ("waiting", "alice", FREEZE_END)
        cell = next(c for a in status(alice, env="staging") for c in a.cells if c.app == "web")
        assert cell.queued is not None and cell.queued.plan_id == plan_id
        assert get_plan(alice, plan_id).queued == queued

        # The waiter's loop on a clock a minute before the freeze ends: it waits it out.
        clock = FakeClock(FREEZE_END - timedelta(minutes=1))
        result = wait_for_window(replace(alice, clock=clock), plan_id)
        assert result is not None and result.state == "succeeded", result
        assert 60 <= clock.elapsed < 66 and max(clock.sleeps) <= 5.0
        assert get_version(front_port(ws, "web", "staging")) == "1.0.0"
        assert get_plan(alice, plan_id).queued.state == "started"  # type: ignore[union-attr]
        seen = kinds(ws, plan_id)
        assert seen.index("run.queued") < seen.index("run.started") < seen.index("run.succeeded")
        started = audit_log.list_events(ws.base, AuditFilter(plan=plan_id, kind="run.started"))
        assert started[0].payload["queued"] is True
        assert audit_log.verify(ws.base).ok


def test_a_queued_run_refuses_to_start_once_its_approval_is_void(ws: WorkspaceFixture) -> None:
    with shipping(ws, top=freeze(), env_extra={"staging": STAGING}):
        plan_id = approved_plan(ws)
        queue_run(waiting_here(ws), plan_id)
        targets = ws.base.config.apps["web"].targets["staging"].settings
        # The freeze is extended by an hour: approvals given under the old one no longer stand.
        ws.write_config(ws.root.joinpath("shipdeck.toml").read_text().replace(
            FREEZE_END.isoformat(), (FREEZE_END + timedelta(hours=1)).isoformat()))  # fmt: skip
        assert ws.base.config.apps["web"].targets["staging"].settings == targets
        alice = live(ws)
        with pytest.raises(BlockedError, match="was not started from the queue") as raised:
            wait_for_window(replace(alice, clock=FakeClock(FREEZE_END)), plan_id)
        assert "stale_approval" in [b.kind for b in raised.value.blockers]
        view = get_plan(alice, plan_id)
        assert view.queued is not None and view.queued.state == "refused"
        assert "not started" in view.queued.note and view.state != "running"
        seen = kinds(ws, plan_id)
        assert "run.queue_refused" in seen and "run.started" not in seen
        refused = audit_log.list_events(
            ws.base, AuditFilter(plan=plan_id, kind="run.queue_refused")
        )
        assert "stale_approval" in [b["kind"] for b in refused[0].payload["blockers"]]
        assert not (ws.root / ".shipdeck" / "targets" / "web" / "staging").exists()  # never staged


def test_only_the_person_who_queued_may_be_its_waiter(ws: WorkspaceFixture) -> None:
    with shipping(ws, top=freeze(), env_extra={"staging": STAGING}):
        plan_id = approved_plan(ws)
        alice = waiting_here(ws)
        queue_run(alice, plan_id)
        with pytest.raises(PermissionDenied, match="queued by alice"):
            wait_for_window(replace(live(ws, "bob"), clock=FakeClock(FREEZE_END)), plan_id)
        assert get_plan(alice, plan_id).queued.state == "waiting"  # type: ignore[union-attr]
        alice.launcher.waiters[0].processes.kill(alice.launcher.waiters[0].pid)  # type: ignore[attr-defined]
        assert get_plan(alice, plan_id).queued.waiter_gone  # type: ignore[union-attr]
        assert queue_run(alice, plan_id).state == "waiting"  # a gone waiter's plan is queued again


def waiter_of(ws: WorkspaceFixture, plan_id: str) -> str:
    with ws.base.db.read() as conn:
        found = conn.execute(select(QUEUED_RUNS.c.waiter).where(QUEUED_RUNS.c.plan_id == plan_id))
        return str(found.scalar_one())


def until_gone(waiter: str, timeout: float = 90) -> bool:
    """A condition: the waiter's process is gone (it looks again every 5 s)."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ProcProcesses().runner_dead(waiter):
            return True
        time.sleep(0.1)
    return False


def test_the_waiter_outlives_its_session_and_is_cancelled_through_the_cli(
    ws: WorkspaceFixture,
) -> None:
    with shipping(ws, top=freeze(), env_extra={"staging": STAGING}):
        plan_id = approved_plan(ws)
        ran = cli(ws, "-o", "json", "plan", "run", plan_id, "--when-open")
        assert ran.returncode == 0, ran.stderr
        queued = json.loads(ran.stdout)["queued"]
        assert (queued["state"], queued["starts_at"]) == ("waiting", FREEZE_END.isoformat())
        waiter = waiter_of(ws, plan_id)
        pid = int(waiter.split("|")[2])
        assert (
            not ProcProcesses().runner_dead(waiter) and os.getsid(pid) == pid
        )  # its own session: no SIGHUP

        shown = cli(ws, "plan", "show", plan_id)
        assert (
            f"queue    queued by alice: starts when its window opens, at {FREEZE_END:%Y-%m-%d %H:%M} UTC"
            in shown.stdout
        )
        cells = json.loads(cli(ws, "-o", "json", "status", "--env", "staging").stdout)["apps"]
        web = next(c for a in cells if a["app"] == "web" for c in a["environments"])
        assert web["queued"]["plan"] == plan_id and web["queued"]["waiter_gone"] is False

        again = cli(ws, "plan", "run", plan_id, "--when-open")
        assert again.returncode == 4 and "already queued by alice" in again.stderr
        gone = cli(ws, "plan", "unqueue", plan_id, "--reason", "launch moved")
        assert gone.returncode == 0, gone.stderr
        assert "queue cancelled" in gone.stdout and "launch moved" in gone.stdout
        assert until_gone(waiter), "the waiter did not exit after the queue was cancelled"
        log = (ws.root / ".shipdeck" / "runs" / f"{plan_id}.queue.log").read_text()
        assert "no longer queued; nothing started" in log
        assert cli(ws, "plan", "unqueue", plan_id).returncode == 4
        seen = kinds(ws, plan_id)
        assert seen.count("run.queued") == 1 and seen.count("run.unqueued") == 1
        assert "run.started" not in seen


def test_what_cannot_be_queued_is_refused_with_its_reason(ws: WorkspaceFixture) -> None:
    with shipping(ws, top=freeze(), env_extra={"staging": STAGING}):
        alice = live(ws)
        release_all(alice, "1.0.0", apps=["web"])
        plan = create_plan(alice, "staging", ["web"])  # not approved yet
        usage = cli(ws, "plan", "run", plan.id, "--when-open", "--wait")
        assert usage.returncode == 2 and "--when-open" in usage.stderr
        blocked = cli(ws, "-o", "json", "plan", "run", plan.id, "--when-open")
        assert blocked.returncode == 3
        error = json.loads(blocked.stdout)["error"]
        assert "cannot be queued" in error["message"]
        assert [b["kind"] for b in error["blockers"]] == ["approvals_missing"]
        assert "run.queued" not in kinds(ws, plan.id)
        erin = cli(ws, "plan", "run", plan.id, "--when-open", actor="erin")
        assert erin.returncode == 4 and "erin" in erin.stderr


def test_a_queue_row_written_behind_shipdecks_back_is_caught(ws: WorkspaceFixture) -> None:
    with shipping(ws, top=freeze(), env_extra={"staging": STAGING}):
        plan_id = approved_plan(ws)
        with ws.base.db.write() as conn:
            conn.execute(insert(QUEUED_RUNS).values(
                plan_id=plan_id, env="staging", by="mallory", at=NOW, state="waiting", note=""))  # fmt: skip
        verify = cli(ws, "audit", "verify")
        assert verify.returncode == 7 and "queued_run" in verify.stdout + verify.stderr


def test_the_plans_screen_marks_a_queued_plan_and_says_when_it_starts(
    ws: WorkspaceFixture,
) -> None:
    from shipdeck.tui.screens.plans import explain, items_cell, load_rows

    with shipping(ws, top=freeze(), env_extra={"staging": STAGING}):
        plan_id = approved_plan(ws)
        alice = waiting_here(ws)
        row = next(r for r in load_rows(alice) if r.summary.id == plan_id)
        assert row.queued is None and "queued" not in items_cell(row, 40).plain
        queue_run(alice, plan_id)
        row = next(r for r in load_rows(alice) if r.summary.id == plan_id)
        assert items_cell(row, 40).plain == "web 1.0.0 ⏲ queued"
        assert (
            f"⏲ queued by alice: starts when its window opens, at {FREEZE_END:%Y-%m-%d %H:%M} UTC"
            in (explain(row).plain)
        )
