"""A runner that stalls past its lease (SIGSTOP) and then wakes up (SIGCONT) cannot switch
anything: reconcile took the lease with a higher epoch and the targets refuse the stale one."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from shipdeck.core.services import audit_log
from shipdeck.core.services.plans import create_plan, get_plan
from shipdeck.core.services.runs import run_plan
from tests.integration.shipping import front_port, get_version, live, release_all, shipping
from tests.support.cli import cli
from tests.support.workspace import WorkspaceFixture

LEASE = 1.0


def proc_state(pid: int) -> str | None:
    try:
        data = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    return data[data.rindex(b")") + 2 :].split()[0].decode()


def wait_for(predicate: object, what: str, limit: float = 60.0) -> None:
    deadline = time.monotonic() + limit
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)


@pytest.mark.slow
def test_a_stalled_runner_is_fenced_off(ws: WorkspaceFixture) -> None:
    # it finds out through a target refusing its epoch
    stall_and_reconcile(
        ws, "before:switch:chat-api:stop", switched="model-server", woke_to=("runner: fenced:",)
    )


@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_a_runner_stopped_inside_a_transaction_does_not_hold_off_reconcile(
    ws: WorkspaceFixture,
) -> None:
    """Its row locks (the lease, the audit head) would keep reconcile waiting forever; the
    server ends the stalled session instead. (A stopped SQLite writer holds the file lock:
    others get "database busy", exit 5, after the busy timeout.)"""
    stall_and_reconcile(
        ws, "in:switch:model-server:stop", switched=None,
        # its session was ended (storage_failed), or it got a new one and a target refused its
        # epoch (fenced): either way it stopped without acting
        woke_to=("runner: storage_failed: database ", "runner: fenced:"),
    )  # fmt: skip


def stall_and_reconcile(
    ws: WorkspaceFixture, failpoint: str, *, switched: str | None, woke_to: tuple[str, ...]
) -> None:
    with shipping(ws):
        alice = live(ws)
        apps = ["model-server", "chat-api"]
        release_all(alice, "1.0.0", apps=apps)
        assert run_plan(alice, create_plan(alice, "staging", apps).id).ok
        release_all(alice, "2.0.0", apps=apps)
        plan = create_plan(alice, "staging", [f"{a}@2.0.0" for a in apps])

        started = cli(
            ws, "-o", "json", "plan", "run", plan.id,
            extra_env={"SHIPDECK_FAILPOINT": failpoint,
                       "SHIPDECK_LEASE_SECONDS": str(LEASE)},
        )  # fmt: skip
        assert started.returncode == 0, started.stderr
        pid = json.loads(started.stdout)["run"]["pid"]
        stale_epoch = json.loads(started.stdout)["run"]["epoch"]
        try:
            wait_for(lambda: proc_state(pid) == "T", "the runner to stop itself")
            if switched:
                assert get_version(front_port(ws, switched, "staging")) == "2.0.0"
            time.sleep(LEASE * 2)  # its lease runs out while it is stopped

            fixed = cli(ws, "-o", "json", "reconcile")
            assert fixed.returncode == 0, fixed.stderr
            [result] = json.loads(fixed.stdout)["reconciled"]
            assert result["state"] == "rolled_back"
        finally:
            os.kill(pid, signal.SIGCONT)
        wait_for(lambda: proc_state(pid) in (None, "Z"), "the woken runner to exit")

        view = get_plan(alice, plan.id)
        assert view.state == "rolled_back"
        assert view.run_epoch is not None and view.run_epoch > stale_epoch
        last_stale = max(s.id for s in view.steps if s.epoch == stale_epoch)
        first_new = min(s.id for s in view.steps if s.epoch == view.run_epoch)
        assert last_stale < first_new  # the woken runner wrote nothing after the takeover
        log = (ws.root / ".shipdeck" / "runs" / f"{plan.id}.log").read_text()
        assert any(w in log for w in woke_to), log
        assert "Traceback" not in log
        for app in apps:
            assert get_version(front_port(ws, app, "staging")) == "1.0.0"
        assert audit_log.verify(alice).ok
