"""A whole release made from the TUI alone, on real local blue/green targets: alice drafts the prod
plan in the plan editor, bob and carol (two more app instances) tick and approve, alice runs it
and watches, then rolls it back from the dashboard; the plans list and dashboard then tell the
truth about it. No service is called by the test to make the release, only to read the outcome.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.widgets import Input

from shipdeck.core.services.plans import create_plan, get_plan, list_plans
from shipdeck.tui.app import ShipdeckApp
from shipdeck.tui.screens.dashboard import DashboardScreen
from shipdeck.tui.screens.plan_detail import PlanScreen
from shipdeck.tui.screens.plan_new import PlanEditScreen
from shipdeck.tui.screens.plans import PlansScreen
from shipdeck.tui.screens.run import RunScreen
from shipdeck.tui.widgets.form import FormScreen
from shipdeck.tui.widgets.vim import VimLog
from tests.integration.shipping import front_port, get_version, teardown_targets
from tests.support.workspace import WorkspaceFixture
from tests.tui.pilot import open_section, screen_text, settle, until
from tests.tui.scenario import actor_ctx
from tests.tui.shipping_scenario import build_ship_scenario, ship_scenario, targets_toml
from tests.tui.test_plans_flow import RUN_DEADLINE, live, open_plan

SIZE = (100, 30)


@pytest.fixture
def release_ws(tmp_path: Path) -> Iterator[WorkspaceFixture]:
    """The shipping scenario without prod's business-hours window: runs use the real clock, and
    whether Berlin's office is open must not decide the test."""
    ws = build_ship_scenario(tmp_path / "ws")
    ws.write_config(targets_toml().replace('windows = ["business-hours"]\n', ""))
    try:
        yield ws
    finally:
        teardown_targets(ws)
        ws.close()


async def test_a_whole_release_from_the_tui_then_history_tells_the_truth(
    release_ws: WorkspaceFixture,
) -> None:
    ws = release_ws
    alice = ShipdeckApp(live(ws, "alice"), poll_seconds=0.2)
    bob = ShipdeckApp(live(ws, "bob"), poll_seconds=0.2)
    carol = ShipdeckApp(live(ws, "carol"), poll_seconds=0.2)
    async with (
        alice.run_test(size=SIZE, notifications=True) as a,
        bob.run_test(size=SIZE) as b,
        carol.run_test(size=SIZE) as c,
    ):
        # alice: a new prod plan, chat-api only, seen with its diff and waves before it exists
        await open_section(a, "p", PlansScreen)
        await a.press("n")
        await settle(a)
        editor = alice.screen
        assert isinstance(editor, PlanEditScreen) and editor.env == "staging"
        await a.press("E")
        await until(a, lambda: editor.env == "prod" and editor.preview is not None)
        assert set(editor.chosen) == {"model-server", "chat-api", "web"}  # not live: latest
        await a.press("space", "j", "j", "space")  # model-server and web out
        await until(a, lambda: editor.preview is not None and len(editor.preview.items) == 1)
        shown = screen_text(alice)
        assert "chat-api  2.0.0 → 2.2.0" in shown and "waves  1 chat-api 2.2.0" in shown
        assert "config max_tokens: 4096 → 8192" in shown
        assert "2 needed from approvers" in shown
        await a.press("c")
        assert isinstance(alice.screen, FormScreen)
        await a.press(*"tokens up", "enter")
        await until(a, lambda: isinstance(alice.screen, PlanScreen) and alice.screen.loaded)
        plan_screen = alice.screen
        assert isinstance(plan_screen, PlanScreen) and plan_screen.view is not None
        plan_id = plan_screen.view.id
        assert plan_screen.view.state == "awaiting_approval"
        assert [(i.app, i.version) for i in plan_screen.view.items] == [("chat-api", "2.2.0")]
        # alice may not approve (her own plan, and she is no approver): the key says why
        await a.press("y")
        said = [n.message for n in alice._notifications]
        assert "Approve: alice is not in approvers" in said, said
        assert alice.screen is plan_screen

        # bob ticks the checklist and approves; carol approves: two consoles, two people
        await open_plan(b, plan_id)
        await b.press("space")
        await until(b, lambda: "[x] Release notes reviewed" in screen_text(bob))
        await b.press("y", "enter")
        await until(b, lambda: "✓ bob" in screen_text(bob))
        await open_plan(c, plan_id)
        await until(c, lambda: "has 1 of 2: bob" in screen_text(carol))
        await c.press("y", "enter")
        await until(c, lambda: "✓ nothing blocks it: it may run now" in screen_text(carol))

        # alice's console sees it by itself, runs it and watches it to the end
        await until(a, lambda: "✓ nothing blocks it: it may run now" in screen_text(alice))
        await a.press("r", "y")
        await until(a, lambda: isinstance(alice.screen, RunScreen))
        run = alice.screen
        assert isinstance(run, RunScreen)
        await until(a, lambda: run.state == "succeeded", RUN_DEADLINE)
        assert get_version(front_port(ws, "chat-api", "prod")) == "2.2.0"
        log = run.query_one(VimLog)
        widest = max(line.cell_length for line in log.lines)
        await a.resize_terminal(widest - 10, SIZE[1])  # narrower than its widest line
        await until(a, lambda: log.scrollable_content_region.width < widest)
        await settle(a)
        assert max(line.cell_length for line in log.lines) <= log.scrollable_content_region.width
        await a.resize_terminal(*SIZE)

        # back on the dashboard: chat-api in prod, rolled back with a reason (prod is protected)
        while not isinstance(alice.screen, DashboardScreen):
            await a.press("q")
        await settle(a)
        await a.press("j", "l", "l", "R")  # chat-api, prod
        await until(a, lambda: isinstance(alice.screen, FormScreen))
        assert "chat-api in prod: 2.2.0 → 2.0.0" in screen_text(alice)
        await a.press("enter")
        assert "Reason: required" in screen_text(alice)
        alice.screen.query_one(Input).value = "latency regression"
        await a.press("enter")
        await until(a, lambda: isinstance(alice.screen, RunScreen))
        rollback_run = alice.screen
        assert isinstance(rollback_run, RunScreen) and rollback_run.plan_id != plan_id
        await until(a, lambda: rollback_run.state == "succeeded", RUN_DEADLINE)
        assert get_version(front_port(ws, "chat-api", "prod")) == "2.0.0"

        # the dashboard says what is live: 2.0.0, healthy, nothing running
        while not isinstance(alice.screen, DashboardScreen):
            await a.press("q")
        await settle(a)
        alice.clear_notifications()  # toasts lie over the matrix until they time out
        await a.pause()
        dashboard = screen_text(alice)
        chat_row = next(line for line in dashboard.splitlines() if "chat-api" in line)
        assert "2.0.0" in chat_row and "running" not in chat_row
        assert chat_row.rstrip().endswith("live")  # prod: healthy, and the last run succeeded

        # the plans list: the rollback labelled with versions, who and why; the plan it undid
        # says so and links to it
        plans = await open_section(a, "p", PlansScreen)
        rows = {r.summary.id: r for r in plans.shown}
        assert rows[rollback_run.plan_id].items == ("rollback chat-api 2.2.0 → 2.0.0",)
        listing = screen_text(alice)
        assert "rollback chat-api 2.2.0 → 2.0.0" in listing and "↺ rolled back" in listing
        await open_plan(a, plan_id)
        shown = screen_text(alice)
        assert f"chat-api: rolled back by {rollback_run.plan_id} (2.0.0 live since" in shown
        await a.press("o")
        await until(a, lambda: isinstance(alice.screen, PlanScreen) and alice.screen.loaded)
        assert alice.screen.plan_id == rollback_run.plan_id
        shown = screen_text(alice)
        assert "↺ rollback chat-api 2.2.0 → 2.0.0 by alice: latency regression" in shown
        assert "no approvals needed: in prod a rollback needs only the 'rollback'" in shown

    plans = {p.id: p for p in list_plans(ws.base)}
    assert plans[plan_id].state == "succeeded"
    rollback = get_plan(ws.base, rollback_run.plan_id)
    assert rollback.kind == "rollback" and [(i.app, i.version) for i in rollback.items] == [
        ("chat-api", "2.0.0")
    ]


async def test_a_freeze_added_to_shipdeck_toml_is_seen_by_an_open_console(
    tmp_path: Path,
) -> None:
    """The scenario's fixed clock (Tuesday 12:00 UTC) sits inside the freeze written here."""
    with ship_scenario(tmp_path / "ws") as scenario:
        await _freeze_seen(scenario)


async def _freeze_seen(scenario: WorkspaceFixture) -> None:
    config = scenario.root / "shipdeck.toml"
    toml = config.read_text(encoding="utf-8")
    plan = create_plan(actor_ctx(scenario, "alice"), "staging", ["chat-api@2.1.0"])
    app = ShipdeckApp(actor_ctx(scenario, "alice"), poll_seconds=0.2)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        screen = await open_plan(pilot, plan.id)
        assert "✓ nothing blocks it: it may run now" in screen_text(app)
        assert "run" in {b.binding.action for b in screen.active_bindings.values()}

        frozen = toml.replace(
            "[environments.staging]\n", '[environments.staging]\nfreezes = ["audit"]\n'
        )
        config.write_text(
            frozen + '\n[freezes.audit]\nstart = "2026-11-24T11:00:00+00:00"\n'
            'end = "2026-11-24T15:00:00+00:00"\nreason = "quarter close"\n',
            encoding="utf-8",
        )
        await until(pilot, lambda: "frozen by 'audit' (quarter close)" in screen_text(app))
        said = [n.message for n in app._notifications]
        assert "shipdeck.toml changed: re-evaluated" in said, said
        assert "run" not in {b.binding.action for b in screen.active_bindings.values()}

        config.write_text("[workspace\n", encoding="utf-8")
        await until(pilot, lambda: any("cannot be used" in n.message for n in app._notifications))
        assert "frozen by 'audit'" in screen_text(app)  # the last good policy still shown


async def test_drafts_are_saved_edited_and_submitted_and_one_app_deploys(tmp_path: Path) -> None:
    with ship_scenario(tmp_path / "ws") as ws:
        app = ShipdeckApp(actor_ctx(ws, "alice"), poll_seconds=0.2)
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await open_section(pilot, "p", PlansScreen)
            await pilot.press("n")
            await settle(pilot)
            editor = app.screen
            assert isinstance(editor, PlanEditScreen)
            assert editor.preview is None and "nothing chosen" in screen_text(app)  # all live
            await pilot.press("E")
            await until(pilot, lambda: editor.preview is not None)
            await pilot.press("d")
            assert isinstance(app.screen, FormScreen) and "Save a draft for prod?" in screen_text(
                app
            )
            await pilot.press("enter")
            await until(pilot, lambda: isinstance(app.screen, PlanScreen) and app.screen.loaded)
            plan = app.screen
            assert isinstance(plan, PlanScreen) and plan.view is not None
            assert plan.view.state == "draft" and len(plan.view.items) == 3
            assert "draft: submit it (S) to ask for approvals, or edit it (e)" in screen_text(app)

            # edit: model-server out, chat-api one release older
            await pilot.press("e")
            await settle(pilot)
            edit = app.screen
            assert isinstance(edit, PlanEditScreen) and edit.plan is not None
            await pilot.press("space", "j", "left")
            await until(pilot, lambda: edit.preview is not None and len(edit.preview.items) == 2)
            # The preview is drawn on the next refresh, not when it is computed (seen under load).
            await until(pilot, lambda: "chat-api  2.0.0 → 2.1.0" in screen_text(app))
            await pilot.press("c")
            assert "approvals given so far stop counting" in screen_text(app)
            await pilot.press("y")
            await until(pilot, lambda: app.screen is plan)
            await until(
                pilot,
                lambda: (
                    plan.view is not None
                    and [(i.app, i.version) for i in plan.view.items]
                    == [("chat-api", "2.1.0"), ("web", "0.9.0")]
                ),
            )
            await pilot.press("S")
            assert isinstance(app.screen, FormScreen) and "needs 2 approval(s)" in screen_text(app)
            await pilot.press("y")
            await until(
                pilot, lambda: plan.view is not None and plan.view.state == "awaiting_approval"
            )

            # deploy one app from its view: model-server 1.0.0 to staging, a named downgrade
            while not isinstance(app.screen, DashboardScreen):
                await pilot.press("q")
            await settle(pilot)
            await pilot.press("enter")  # model-server
            await settle(pilot)
            await pilot.press("j", "D")  # its older release
            await settle(pilot)
            deploy = app.screen
            assert isinstance(deploy, PlanEditScreen) and deploy.deploy
            await until(pilot, lambda: deploy.preview is not None)
            assert "model-server  1.1.0 → 1.0.0  downgrade: removes 3 commits" in screen_text(app)
            await pilot.press("c", "enter")
            await until(pilot, lambda: isinstance(app.screen, PlanScreen) and app.screen.loaded)
            deployed = app.screen
            assert isinstance(deployed, PlanScreen) and deployed.view is not None
            assert deployed.view.kind == "deploy" and deployed.view.env == "staging"
            assert [(i.app, i.version) for i in deployed.view.items] == [("model-server", "1.0.0")]
