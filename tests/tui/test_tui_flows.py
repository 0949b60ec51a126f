"""The TUI driven by Pilot on a real workspace: real git, a real SQLite database, real services."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from rich.text import Text
from sqlalchemy import text
from textual import events
from textual.widgets import Input, Static

from shipdeck.core.errors import PermissionDenied
from shipdeck.core.services.releases import create_release
from shipdeck.tui.app import ActionsProvider, ShipdeckApp
from shipdeck.tui.screens.app_detail import AppScreen
from shipdeck.tui.screens.audit import AuditScreen
from shipdeck.tui.screens.help import HelpScreen
from shipdeck.tui.widgets.audit_view import AuditView
from shipdeck.tui.widgets.header import HeaderBar
from shipdeck.tui.widgets.matrix import StatusMatrix
from tests.support.deployments import record_deployment
from tests.support.workspace import WorkspaceFixture
from tests.tui.pilot import open_section, screen_text, settle, until
from tests.tui.scenario import actor_ctx


def plain(widget: Static) -> str:
    content: Any = widget.content
    return content.plain if isinstance(content, Text) else str(content)


def cell(app: ShipdeckApp, name: str, env: str) -> str:
    return app.screen.query_one(StatusMatrix).get_cell(name, env).plain


def audit_lines(view: AuditView) -> list[str]:
    return [view.render_line(y).text for y in range(1, view.size.height)]


async def test_dashboard_shows_a_deployment_once_it_is_recorded(scenario: WorkspaceFixture) -> None:
    app = ShipdeckApp(actor_ctx(scenario, "alice"))
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert cell(app, "web", "prod").startswith("— latest 0.9.0 failed")
        assert cell(app, "chat-api", "prod").split()[:2] == ["2.0.0", "blue"]
        record_deployment(actor_ctx(scenario, "bob"), "web", "prod", "0.9.0", "blue")
        await pilot.press("r")
        await settle(pilot)
        shown = cell(app, "web", "prod")
        assert shown.split()[:2] == ["0.9.0", "blue"], shown
        assert "live" in shown


async def test_dashboard_filter_and_enter_opens_the_app_with_its_diff(
    scenario: WorkspaceFixture,
) -> None:
    app = ShipdeckApp(actor_ctx(scenario, "alice"))
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("slash", *"chat", "enter")
        matrix = app.screen.query_one(StatusMatrix)
        assert matrix.row_count == 1
        await pilot.press("l", "l", "enter")  # the prod cell of chat-api
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, AppScreen)
        diff = plain(screen.query_one("#diff-text", Static))
        assert diff.startswith("prod  2.0.0  blue")
        assert "→ latest 2.2.0: 5 commits behind" in diff
        assert "chat-api change 7" in diff and "chat-api change 2" not in diff
        assert "config max_tokens: 4096 → 8192" in diff
        assert "staging  2.2.0  green" in diff and "= latest release" in diff
        await pilot.press("q")
        await settle(pilot)
        assert app.screen.query_one(StatusMatrix)


async def test_audit_filter_by_actor_shows_only_their_rows(scenario: WorkspaceFixture) -> None:
    with pytest.raises(PermissionDenied):
        create_release(actor_ctx(scenario, "bob"), "web", "1.0.0")
    app = ShipdeckApp(actor_ctx(scenario, "alice"))
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_section(pilot, "a", AuditScreen)
        view = screen.query_one(AuditView)
        assert view.shape.total == 15
        await pilot.press("slash", *"actor:bob", "enter")
        await settle(pilot)
        assert view.shape.total == 1
        rows = [line for line in audit_lines(view) if line.strip()]
        assert len(rows) == 1 and " bob " in rows[0] and "access.denied" in rows[0]
        assert "1 events  filter actor=bob" in plain(screen.query_one("#audit-status", Static))
        payload = screen.query_one("#audit-payload", Static)
        await until(pilot, lambda: "lacks permission 'release.create'" in plain(payload))
        await pilot.press("escape")
        await settle(pilot)
        assert view.shape.total == 15


async def test_the_payload_pane_follows_a_held_key_to_where_it_stops(
    scenario: WorkspaceFixture,
) -> None:
    """Keys faster than the pane's quiet time move the list at once; the pane shows the event
    the cursor stopped on, never one it ran past."""
    app = ShipdeckApp(actor_ctx(scenario, "alice"))
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_section(pilot, "a", AuditScreen)
        view = screen.query_one(AuditView)
        payload = screen.query_one("#audit-payload", Static)
        await until(pilot, lambda: plain(payload).startswith(f"event {view.shape.top_seq} "))
        assert app._driver is not None
        for _ in range(6):  # one burst, straight into the driver, as a held key arrives
            app._driver.send_message(events.Key("j", "j"))
        await until(pilot, lambda: view.cursor == 6)
        stopped = view.shape.top_seq - 6
        await until(pilot, lambda: plain(payload).startswith(f"event {stopped} "))
        assert view.current is not None and view.current.seq == stopped


async def test_audit_filter_errors_are_shown_not_raised(scenario: WorkspaceFixture) -> None:
    app = ShipdeckApp(actor_ctx(scenario, "alice"))
    async with app.run_test(size=(100, 30), notifications=True) as pilot:
        screen = await open_section(pilot, "a", AuditScreen)
        await pilot.press("slash", *"who:bob", "enter")
        await pilot.pause()
        assert any("filter 'who:bob'" in n.message for n in app._notifications)
        assert screen.query_one(AuditView).shape.total == 14


async def test_verify_ok_then_names_the_first_tampered_event(scenario: WorkspaceFixture) -> None:
    app = ShipdeckApp(actor_ctx(scenario, "alice"))
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_section(pilot, "a", AuditScreen)
        status = screen.query_one("#audit-status", Static)
        await pilot.press("v")
        await until(pilot, lambda: "chain" in plain(status))
        assert "✓ chain verified: 14 events" in plain(status)
        with scenario.base.db.write() as conn:
            conn.execute(text("UPDATE audit_event SET actor = 'mallory' WHERE seq = 5"))
        await pilot.press("v")
        await until(pilot, lambda: "broken" in plain(status))
        assert "✗ chain broken at event 5:" in plain(status)
        view = screen.query_one(AuditView)
        await settle(pilot)
        assert view.current is not None and view.current.seq == 5


@pytest.mark.parametrize("who,read_only", [("erin", False), ("alice", True)])
async def test_auditors_and_read_only_sessions_see_no_mutating_action(
    scenario: WorkspaceFixture, who: str, read_only: bool
) -> None:
    app = ShipdeckApp(actor_ctx(scenario, who, read_only=read_only))
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_section(pilot, "a", AuditScreen)
        assert "READ-ONLY" in app.screen.query_one(HeaderBar).render().plain
        actions = {b.binding.action for b in screen.active_bindings.values()}
        assert "verify" in actions and "checkpoint" not in actions
        names = [name for name, _, _ in ActionsProvider(screen)._commands()]
        assert "Verify" in names and "Checkpoint" not in names
        await pilot.press("c")
        await pilot.pause()
        assert app.screen is screen  # no checkpoint prompt opened
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        help_text = screen_text(app)
        assert "Verify" in help_text and "Checkpoint" not in help_text


async def test_release_manager_can_checkpoint_and_export(
    scenario: WorkspaceFixture, tmp_path: Path
) -> None:
    app = ShipdeckApp(actor_ctx(scenario, "alice"))
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_section(pilot, "a", AuditScreen)
        assert "checkpoint" in {b.binding.action for b in screen.active_bindings.values()}
        target = tmp_path / "cp.jsonl"
        await pilot.press("c")
        await pilot.pause()
        app.screen.query_one(Input).value = str(target)
        await pilot.press("enter")
        await until(pilot, target.exists)
        assert json.loads(target.read_text().splitlines()[0])["seq"] == 15
        await settle(pilot)
        out = tmp_path / "audit.csv"
        await pilot.press("x")
        await pilot.pause()
        app.screen.query_one(Input).value = str(out)
        await pilot.press("enter")
        await until(pilot, lambda: out.exists() and out.stat().st_size > 0)
        await settle(pilot)
        assert out.read_text().splitlines()[0].startswith("seq,at,actor")
        # 14 events, then the checkpoint's intent (15, the head it wrote) and its outcome (16)
        assert len(out.read_text().splitlines()) == 1 + 16


async def test_help_lists_the_keys_of_the_screen_below(scenario: WorkspaceFixture) -> None:
    app = ShipdeckApp(actor_ctx(scenario, "alice"))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        help_text = screen_text(app)
        for phrase in ("Filter", "Open app", "↓ / j"):
            assert phrase in help_text
        await pilot.press(*"j" * 30)  # the app-wide keys are further down at 80x24
        help_text = screen_text(app)
        for phrase in ("Everywhere", "Audit log", "Back/Quit", "Metrics"):
            assert phrase in help_text
        await pilot.press("q")
        assert not isinstance(app.screen, HelpScreen)
        assert app.is_running


async def test_metrics_per_environment(scenario: WorkspaceFixture) -> None:
    app = ShipdeckApp(actor_ctx(scenario, "alice"))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("m")
        await settle(pilot)
        shown = screen_text(app)
        assert "prod  last 30 days" in shown
        # prod: two deployments took traffic; the third attempt failed before its switch, so it
        # is a failed attempt, not a change failure (docs/metrics.md)
        assert "change failures  0%  (0 of 2)" in shown
        assert "deploys          5  (0.17/day)" in shown
        await pilot.press("w")
        await settle(pilot)
        assert "prod  last 90 days" in screen_text(app)


async def test_keys_typed_ahead_after_slash_land_in_the_filter(scenario: WorkspaceFixture) -> None:
    """A burst (SSH lag, paste) must not fire the bindings of the letters: 'c' is checkpoint."""
    app = ShipdeckApp(actor_ctx(scenario, "alice"))
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_section(pilot, "a", AuditScreen)
        assert app._driver is not None
        for key in ["slash", *"actor:bob", "enter"]:
            app._driver.send_message(events.Key(key, key if len(key) == 1 else None))
        await settle(pilot)
        assert app.screen is screen
        assert screen.flt.actor == "bob"
        assert screen.query_one(AuditView).shape.total == 0
