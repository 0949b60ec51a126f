"""Crash safety: the runner is SIGKILLed before and after every step kind, then `reconcile`
must leave every run succeeded or rolled back, the live color equal to the recorded one, no
orphaned process, and an audit chain that verifies. Real CLI processes, real targets."""

from __future__ import annotations

import json

import pytest

from shipdeck.adapters.local.processes import ProcessSupervisor
from shipdeck.core.services.plans import create_plan, get_plan
from shipdeck.core.services.runs import run_plan
from shipdeck.core.services.status import status
from tests.integration.shipping import (
    front_port,
    get_version,
    live,
    release_all,
    shipping,
    untracked_app_processes,
)
from tests.support.cli import cli
from tests.support.workspace import WorkspaceFixture

APPS = ("model-server", "chat-api")  # two waves: model-server, then chat-api

# (failpoint, outcome after reconcile). The kill hits chat-api (the second wave) so the first
# wave has already switched: a rollback must switch it back.
CASES = [
    ("before:stage:chat-api", "rolled_back"),
    ("after:stage:chat-api", "rolled_back"),
    ("before:health:chat-api", "rolled_back"),
    ("after:health:chat-api", "rolled_back"),
    ("before:switch:chat-api", "rolled_back"),
    ("after:switch:chat-api", "succeeded"),
    ("before:verify:chat-api", "succeeded"),
    ("after:verify:chat-api", "succeeded"),
    ("before:warm:*", "succeeded"),
    ("after:warm:*", "succeeded"),
    ("before:finalize:chat-api", "succeeded"),
    ("after:finalize:chat-api", "succeeded"),
    # A failing release: chat-api's health check fails, the run rolls model-server back, and
    # the kill lands inside that rollback.
    ("before:rollback:model-server", "rolled_back"),
    ("after:rollback:model-server", "rolled_back"),
]


def check_world(ws: WorkspaceFixture, where: str) -> None:
    """Recorded == real for every app, and each target runs exactly proxy + live color."""
    cells = {a.app: c for a in status(ws.as_user("erin")) for c in a.cells if c.env == "staging"}
    for app in APPS:
        cell = cells[app]
        assert cell.deployed is not None, where
        assert cell.drift is False and cell.live_color == cell.deployed.color, (where, app)
        assert get_version(front_port(ws, app, "staging")) == cell.deployed.version, (where, app)
        running = ProcessSupervisor(ws.root / ".shipdeck" / "targets" / app / "staging").names()
        assert running == sorted([cell.deployed.color, "proxy"]), (where, app, running)
    assert untracked_app_processes(ws) == [], where


@pytest.mark.slow
def test_kill_before_and_after_every_step_then_reconcile(ws: WorkspaceFixture) -> None:
    with shipping(ws, warm={"staging": "1s"}):
        alice = live(ws)
        release_all(alice, "1.0.0", apps=APPS)
        assert run_plan(alice, create_plan(alice, "staging", list(APPS)).id).ok
        outcomes: dict[str, str] = {}
        for n, (point, _expected) in enumerate(CASES, start=1):
            version = f"1.{n}.0"
            failing = point.split(":")[1] == "rollback"
            release_all(alice, version, apps=["model-server"])
            release_all(
                alice, version, apps=["chat-api"], **({"demo_health": "fail"} if failing else {})
            )
            plan = create_plan(alice, "staging", [f"{a}@{version}" for a in APPS])

            killed = cli(
                ws, "plan", "run", plan.id, "--wait", "--timeout", "2m",
                extra_env={"SHIPDECK_FAILPOINT": point},
            )  # fmt: skip
            assert killed.returncode == 5, (point, killed.stderr)
            assert "exited while the plan was running" in killed.stderr, point
            assert get_plan(alice, plan.id).state == "running"

            fixed = cli(ws, "-o", "json", "reconcile")
            assert fixed.returncode == 0, (point, fixed.stderr)
            [result] = json.loads(fixed.stdout)["reconciled"]
            assert result["plan"] == plan.id
            outcomes[point] = get_plan(alice, plan.id).state
            check_world(ws, point)
        assert outcomes == dict(CASES)
        verified = cli(ws, "-o", "json", "audit", "verify")
        assert verified.returncode == 0, verified.stdout
        assert json.loads(verified.stdout)["ok"] is True
