"""Plans, plan detail and the run view driven by Pilot on a real database, real services and, for
runs, real local blue/green targets on loopback (a detached runner process, as `plan run` starts).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Input

from shipdeck.core.errors import PermissionDenied
from shipdeck.core.services import audit_log
from shipdeck.core.services.context import Context, SystemClock
from shipdeck.core.services.plans import approve, create_plan, get_plan
from shipdeck.core.services.releases import create_release
from shipdeck.core.services.runs import run_plan
from shipdeck.tui.app import ActionsProvider, ShipdeckApp
from shipdeck.tui.screens.plan_detail import PlanScreen
from shipdeck.tui.screens.plans import PlansScreen
from shipdeck.tui.screens.run import RunScreen, fold
from shipdeck.tui.widgets.form import FormScreen
from tests.integration.shipping import front_port, get_version
from tests.support.cli import cli
from tests.support.workspace import WorkspaceFixture
from tests.tui.pilot import open_section, screen_text, settle, until
from tests.tui.scenario import actor_ctx
from tests.tui.shipping_scenario import build_ship_scenario, ship_scenario

MUTATING = {"approve", "reject", "run", "promote", "abort", "override", "ack", "tick"}
RUN_DEADLINE = 60.0  # keeps a broken run from hanging the suite; nothing is timed


@pytest.fixture
def shipping_ws(tmp_path: Path) -> Iterator[WorkspaceFixture]:
    with ship_scenario(tmp_path / "ws") as ws:
        yield ws


def live(ws: WorkspaceFixture, name: str) -> Context:
    """Runs lease the environment in real time: their contexts use the real clock."""
    return replace(actor_ctx(ws, name), clock=SystemClock())


async def open_plan(pilot: Any, plan_id: str) -> PlanScreen:
    """From anywhere: the plans section, then the plan (keys only, as a person would)."""
    plans = await open_section(pilot, "p", PlansScreen)
    ids = [r.summary.id for r in plans.shown]
    for _ in range(ids.index(plan_id)):
        await pilot.press("j")
    await pilot.press("enter")
    await settle(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, PlanScreen) and screen.plan_id == plan_id
    return screen


def bindings(screen: Any) -> set[str]:
    return {b.binding.action for b in screen.active_bindings.values()}


async def test_two_approvers_approve_a_prod_plan_and_each_sees_the_other(
    tmp_path: Path, db_url: str
) -> None:
    ws = build_ship_scenario(tmp_path / "ws", db_url=db_url)
    try:
        plan = create_plan(actor_ctx(ws, "alice"), "prod", ["chat-api@2.2.0"])
        assert plan.state == "awaiting_approval"
        bob = ShipdeckApp(actor_ctx(ws, "bob"), poll_seconds=0.2)
        carol = ShipdeckApp(actor_ctx(ws, "carol"), poll_seconds=0.2)
        async with bob.run_test(size=(100, 30)) as b, carol.run_test(size=(100, 30)) as c:
            bob_screen = await open_plan(b, plan.id)
            carol_screen = await open_plan(c, plan.id)
            shown = screen_text(bob)
            assert "✗ needs 2 more approvals from approvers (has 0 of 2)" in shown
            assert "✗ 1 of 1 checklist item open: 'Release notes reviewed'" in shown
            assert "[ ] Release notes reviewed" in shown
            assert {"approve", "reject"} <= bindings(bob_screen)
            assert "run" not in bindings(bob_screen) and "override" not in bindings(bob_screen)

            await b.press("space")  # tick the checklist item
            await until(b, lambda: "[x] Release notes reviewed" in screen_text(bob))
            await b.press("y")
            assert isinstance(bob.screen, FormScreen)
            await b.press(*"notes read")
            await b.press("enter")
            await until(b, lambda: "✓ bob" in screen_text(bob))
            assert "“notes read”" in screen_text(bob)

            # carol's console learns of bob's approval by itself (live refresh)
            await until(c, lambda: "has 1 of 2: bob" in screen_text(carol))
            assert "[x] Release notes reviewed  ticked by bob" in screen_text(carol)
            await c.press("y", "enter")
            await until(c, lambda: "✓ nothing blocks it: it may run now" in screen_text(carol))
            assert carol_screen.view is not None and carol_screen.view.state == "approved"
            await until(b, lambda: "✓ carol" in screen_text(bob))
            assert bob_screen.view is not None and bob_screen.view.state == "approved"
        kinds = [
            e.kind for e in audit_log.list_events(ws.base, audit_log.AuditFilter(plan=plan.id))
        ]
        assert kinds.count("plan.approved") == 2 and "plan.checked" in kinds
        view = get_plan(ws.base, plan.id)
        assert [a.by for a in view.approvals] == ["bob", "carol"] and not view.blockers
    finally:
        ws.close()


async def test_running_a_blocked_plan_explains_why_and_starts_nothing(
    shipping_ws: WorkspaceFixture,
) -> None:
    plan = create_plan(actor_ctx(shipping_ws, "alice"), "prod", ["chat-api@2.2.0"])
    app = ShipdeckApp(actor_ctx(shipping_ws, "alice"))
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        screen = await open_plan(pilot, plan.id)
        # refused: out of the footer, its reason said by the key (and in help and the palette)
        assert "run" not in bindings(screen) and "may not run yet" in screen.denials()["run"]
        await pilot.press("r")
        await pilot.pause()
        assert app.screen is screen  # no confirmation for a run that may not start
        notes = [n.message for n in app._notifications]
        assert any(f"plan {plan.id} may not run yet: needs 2 more approvals" in n for n in notes), (
            notes
        )
    assert get_plan(shipping_ws.base, plan.id).state == "awaiting_approval"


async def test_a_run_started_here_is_followed_to_success(shipping_ws: WorkspaceFixture) -> None:
    alice = live(shipping_ws, "alice")
    plan = create_plan(alice, "staging", ["model-server@1.1.0", "chat-api@2.2.0"])
    app = ShipdeckApp(alice)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_plan(pilot, plan.id)
        await pilot.press("r")
        assert isinstance(app.screen, FormScreen)
        assert "Run plan" in screen_text(app) and "1 model-server 1.1.0" in screen_text(app)
        await pilot.press("y")
        await until(pilot, lambda: isinstance(app.screen, RunScreen))
        run = app.screen
        assert isinstance(run, RunScreen)
        await until(pilot, lambda: run.state == "succeeded", RUN_DEADLINE)
        await settle(pilot)
        assert run.view is not None
        progress = fold(run.view, run.steps)
        assert all(len(a.done) == 5 for a in progress.values()), progress
        shown = screen_text(app)
        assert (
            "✓ succeeded" in shown and "model-server 1.1.0, chat-api 2.2.0 live in staging" in shown
        )
        assert shown.count("✓ live") == 2
        assert "abort" not in bindings(run)
    assert get_version(front_port(shipping_ws, "chat-api", "staging")) == "2.2.0"
    assert get_version(front_port(shipping_ws, "model-server", "staging")) == "1.1.0"


async def test_a_failing_run_started_from_the_cli_is_watched_rolling_back(
    shipping_ws: WorkspaceFixture,
) -> None:
    alice = live(shipping_ws, "alice")
    first = create_plan(alice, "staging", ["model-server@1.0.0", "chat-api@2.0.0"])
    assert run_plan(alice, first.id).ok
    create_release(alice, "chat-api", "2.3.0", config={"demo_health": "fail"})
    plan = create_plan(alice, "staging", ["model-server@1.1.0", "chat-api@2.3.0"])

    app = ShipdeckApp(live(shipping_ws, "erin"))  # an auditor watching
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_plan(pilot, plan.id)
        assert "watch" not in bindings(screen)  # nothing ran yet
        app.push_screen(RunScreen(plan.id))
        await until(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen.loaded)
        run = app.screen
        assert isinstance(run, RunScreen)
        assert "not started yet" in screen_text(app)

        started = cli(shipping_ws, "-o", "json", "plan", "run", plan.id)
        assert started.returncode == 0, started.stderr
        assert json.loads(started.stdout)["plan"]["state"] == "running"

        await until(pilot, lambda: run.state == "rolled_back", RUN_DEADLINE)
        await settle(pilot)
        shown = screen_text(app)
        assert "↺ rolled back" in shown
        assert "✗ failed at health" in shown
        assert "chat-api failed at health" in shown
        rollbacks = [
            s.detail
            for s in run.steps
            if (s.app, s.step, s.state) == ("model-server", "rollback", "done")
        ]
        assert rollbacks and "switched back to" in rollbacks[0], rollbacks
        assert run.view is not None
        progress = fold(run.view, run.steps)
        assert progress["model-server"].rollback == "done"
        assert progress["chat-api"].failed_at == "health"
    assert get_version(front_port(shipping_ws, "model-server", "staging")) == "1.0.0"
    assert get_version(front_port(shipping_ws, "chat-api", "staging")) == "2.0.0"


@pytest.mark.parametrize("who,read_only", [("erin", False), ("alice", True)])
async def test_auditors_and_read_only_sessions_cannot_act_on_plans(
    shipping_ws: WorkspaceFixture, who: str, read_only: bool
) -> None:
    plan = create_plan(actor_ctx(shipping_ws, "alice"), "prod", ["chat-api@2.2.0"])
    viewer = actor_ctx(shipping_ws, who, read_only=read_only)
    app = ShipdeckApp(viewer)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_plan(pilot, plan.id)
        assert not bindings(screen) & MUTATING
        names = [name for name, _, _ in ActionsProvider(screen)._commands()]
        assert not {"Approve", "Reject", "Run", "Abort", "Override", "Tick item"} & set(names)
        for key in ("y", "n", "r", "x", "b", "space"):
            await pilot.press(key)
            await pilot.pause()
            assert app.screen is screen, key
        shown = screen_text(app)
        assert "space ticks" not in shown and "needs 2 more approvals" in shown
    with pytest.raises(PermissionDenied):
        approve(viewer, plan.id)
    assert get_plan(shipping_ws.base, plan.id).approvals == ()


async def test_reject_needs_a_reason_and_stops_the_plan(shipping_ws: WorkspaceFixture) -> None:
    plan = create_plan(actor_ctx(shipping_ws, "alice"), "prod", ["chat-api@2.2.0"])
    app = ShipdeckApp(actor_ctx(shipping_ws, "bob"))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_plan(pilot, plan.id)
        await pilot.press("n")
        form = app.screen
        assert isinstance(form, FormScreen)
        await pilot.press("enter")
        assert app.screen is form and "Reason: required" in screen_text(app)
        form.query_one(Input).value = "[red]wrong[/red] model pinned"
        await pilot.press("enter")
        await until(pilot, lambda: screen.view is not None and screen.view.state == "aborted")
        await settle(pilot)
        shown = screen_text(app)
        assert "✗ bob rejected" in shown and "[red]wrong[/red] model pinned" in shown
        assert not bindings(screen) & {"approve", "reject", "run", "tick"}
