"""Fault injection for runs: the blue/green engine's effects (stage, switch, stop) are preceded by
their committed `run.STEP.intent`, so a database that stops taking writes stops the run before
its next effect, and `reconcile` (once the database is healthy again) closes what it left.

At start: `plan run` and `deploy` against a broken database (read-only PostgreSQL, a killed
connection, a full disk) exit with the documented code and one line, touch no target and record
no run. Mid-run: a real runner stopped (SIGSTOP failpoint) between staging and switching finds
the database broken when it wakes: it must not switch, and must exit non-zero without a
traceback; after healing, reconcile rolls the run back and everything recorded before the fault
is still there. Real CLI processes, real local targets, real SQLite (a full tmpfs) and
PostgreSQL (a trigger that ends the session as it appends an audit event).
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from shipdeck.core.services import audit_log
from shipdeck.core.services.audit_log import AuditFilter, Event
from shipdeck.core.services.plans import create_plan, get_plan, list_plans
from shipdeck.core.services.runs import run_plan
from tests.integration.shipping import (
    front_port,
    get_version,
    live,
    local_toml,
    release_all,
    teardown_targets,
)
from tests.reliability.test_audit_faults import (
    FAULTS,
    KILLED_CAUSE,
    AuditKiller,
    Fault,
    FullDisk,
    assert_one_line,
    faulty_workspace,
    postgres_base,
)
from tests.reliability.test_stalled_runner import proc_state, wait_for
from tests.support.cli import cli, shipdeck
from tests.support.workspace import (
    BASIC_TOML,
    FixedClock,
    WorkspaceFixture,
    postgres_schema,
    three_apps,
)

APPS = ("model-server", "chat-api")  # two waves: model-server, then chat-api
DISK = "64m"  # room for two real runs' worth of state before it is filled


def events(ws: WorkspaceFixture) -> list[Event]:
    return audit_log.list_events(ws.base, limit=100_000, ascending=True)


def run_events(ws: WorkspaceFixture, plan_id: str) -> list[Event]:
    return audit_log.list_events(
        ws.base, AuditFilter(plan=plan_id, kind="run."), limit=10_000, ascending=True
    )


def served(ws: WorkspaceFixture) -> dict[str, str]:
    return {app: get_version(front_port(ws, app, "staging")) for app in APPS}


# --- at start ----------------------------------------------------------------------------------


@dataclass
class Started:
    fault: Fault
    plan_id: str  # a plan to 2.0.0 for both apps, ready to run; 1.0.0 is live


@pytest.fixture(params=FAULTS)
def at_start(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Started]:
    made: list[str] = []

    def prepare(ws: WorkspaceFixture) -> None:
        alice = live(ws)
        release_all(alice, "1.0.0", apps=APPS)
        assert run_plan(alice, create_plan(alice, "staging", list(APPS)).id).ok
        release_all(alice, "2.0.0", apps=APPS)
        made.append(create_plan(alice, "staging", [f"{a}@2.0.0" for a in APPS]).id)

    with faulty_workspace(request.param, tmp_path, local_toml(), prepare, DISK) as fault:
        try:
            yield Started(fault, made[0])
        finally:
            teardown_targets(fault.healthy)


def assert_nothing_happened(s: Started, before: list[Event]) -> None:
    assert served(s.fault.healthy) == dict.fromkeys(APPS, "1.0.0")
    assert events(s.fault.healthy) == before  # no run.* (or any) event, none lost
    assert get_plan(s.fault.healthy.as_user("erin"), s.plan_id).state == "approved"


def test_plan_run_on_a_broken_database_touches_no_target(at_start: Started) -> None:
    s = at_start
    before = events(s.fault.healthy)
    assert get_plan(s.fault.healthy.as_user("erin"), s.plan_id).state == "approved"
    r = shipdeck("--yes", "plan", "run", s.plan_id, env=s.fault.broken.env("alice"))
    assert r.code == s.fault.code, r.err
    assert_one_line(r.err, s.fault)
    assert_nothing_happened(s, before)
    assert run_events(s.fault.healthy, s.plan_id) == []


def test_deploy_on_a_broken_database_touches_no_target_and_keeps_no_plan(
    at_start: Started,
) -> None:
    s = at_start
    before = events(s.fault.healthy)
    plans = [p.id for p in list_plans(s.fault.healthy.as_user("erin"))]
    r = shipdeck(
        "--yes", "deploy", "model-server", "2.0.0", "--env", "staging",
        env=s.fault.broken.env("alice"),
    )  # fmt: skip
    assert r.code == s.fault.code, r.err
    assert_one_line(r.err, s.fault)
    assert_nothing_happened(s, before)
    assert [p.id for p in list_plans(s.fault.healthy.as_user("erin"))] == plans


# --- mid-run -----------------------------------------------------------------------------------


@dataclass
class Breakable:
    ws: WorkspaceFixture
    cause: str  # what the runner must say it met
    break_: Callable[[], None]  # every session's writes fail from now on ...
    heal: Callable[[], None]  # ... until this


@pytest.fixture(params=["sqlite_disk_full", "postgres_killed_connection"])
def breakable(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Breakable]:
    """A healthy workspace with real local targets whose database the test breaks later."""
    root = tmp_path / "ws"
    root.mkdir()
    if request.param == "sqlite_disk_full":
        full = FullDisk(tmp_path / "disk", DISK)
        try:
            ws = three_apps(root, full.url, FixedClock(), BASIC_TOML)
            ws.write_config(local_toml())
            try:
                yield Breakable(ws, "disk full", full.fill, full.free)
            finally:
                full.free()
                teardown_targets(ws)
                ws.close()
        finally:
            full.close()
        return
    with postgres_schema(postgres_base()) as url:
        ws = three_apps(root, url, FixedClock(), BASIC_TOML)
        ws.write_config(local_toml())
        killer = AuditKiller(url)
        try:
            yield Breakable(ws, KILLED_CAUSE, killer.on, killer.off)
        finally:
            killer.off()
            teardown_targets(ws)
            ws.close()
            killer.close()


_PR_SET_CHILD_SUBREAPER = 36


@contextmanager
def adopting_orphans() -> Iterator[None]:
    """While inside, processes orphaned below this one become its children (Linux subreaper):
    the detached runner `plan run` starts is then ours to wait for, exit status and all."""
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0, os.strerror(ctypes.get_errno())
    try:
        yield
    finally:
        libc.prctl(_PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)


@pytest.mark.slow
def test_a_fault_between_stage_and_switch_stops_the_run_before_the_switch(
    breakable: Breakable,
) -> None:
    b, ws = breakable, breakable.ws
    alice = live(ws)
    release_all(alice, "1.0.0", apps=APPS)
    assert run_plan(alice, create_plan(alice, "staging", list(APPS)).id).ok
    release_all(alice, "2.0.0", apps=APPS)
    plan = create_plan(alice, "staging", [f"{a}@2.0.0" for a in APPS])

    with adopting_orphans():
        started = cli(
            ws, "-o", "json", "plan", "run", plan.id,
            extra_env={"SHIPDECK_FAILPOINT": "after:stage:model-server:stop"},
        )  # fmt: skip
    assert started.returncode == 0, started.stderr
    pid = json.loads(started.stdout)["run"]["pid"]
    log = ws.root / ".shipdeck" / "runs" / f"{plan.id}.log"
    try:
        wait_for(lambda: proc_state(pid) == "T", "the runner to stop after staging", 120)
        recorded = events(ws)  # everything up to the fault
        kinds = [(e.kind, e.app) for e in recorded if e.plan == plan.id]
        assert ("run.stage.intent", "model-server") in kinds  # it staged under its intent
        assert served(ws) == dict.fromkeys(APPS, "1.0.0")
        b.break_()
    finally:
        os.kill(pid, signal.SIGCONT)
    _, status = os.waitpid(pid, 0)
    text = log.read_text()
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 5, (status, text)
    assert "Traceback" not in text, text
    last = text.strip().splitlines()[-1]
    assert last.startswith("runner: storage_failed: database ") and b.cause in last, text
    assert last.endswith("run 'shipdeck reconcile' once the database takes writes)"), last

    assert served(ws) == dict.fromkeys(APPS, "1.0.0")  # the switch was not done
    assert [e for e in run_events(ws, plan.id) if e.kind == "run.switch.intent"] == []
    assert events(ws) == recorded  # the broken database took nothing

    b.heal()
    fixed = cli(ws, "-o", "json", "reconcile")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    report = json.loads(fixed.stdout)
    closed = [(r["plan"], r["state"]) for r in report["reconciled"]]
    assert closed == [(plan.id, "rolled_back")], report  # not every app switched: rolled back
    assert report["open_intents"] == []
    assert get_plan(alice, plan.id).state == "rolled_back"
    verified = cli(ws, "-o", "json", "audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert json.loads(verified.stdout)["open_intents"] == []

    after = events(ws)
    assert after[: len(recorded)] == recorded  # nothing recorded before the fault is missing
    [intent] = [e for e in recorded if (e.kind, e.plan) == ("run.stage.intent", plan.id)]
    [found] = [e for e in after if e.kind == "run.stage.recovered"]
    assert found.payload["intent_seq"] == intent.seq
    assert found.payload["staged_version"] == "2.0.0"
    assert [e for e in run_events(ws, plan.id) if e.kind == "run.switch.intent"] == []
    assert served(ws) == dict.fromkeys(APPS, "1.0.0")


def test_queueing_on_a_broken_database_starts_no_waiter(at_start: Started) -> None:
    """`plan run --when-open` records its queue entry before the waiter exists: when the record
    cannot be written, no waiter is started (it would act on a queue nobody can see)."""
    s = at_start
    before = events(s.fault.healthy)
    r = shipdeck("plan", "run", s.plan_id, "--when-open", env=s.fault.broken.env("alice"))
    assert r.code == s.fault.code, r.err
    assert_one_line(r.err, s.fault)
    assert_nothing_happened(s, before)
    waiters = [
        p for p in Path("/proc").glob("[0-9]*/cmdline")
        if b"shipdeck.core.waiter" in _read(p) and s.plan_id.encode() in _read(p)
    ]  # fmt: skip
    assert waiters == []


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""
