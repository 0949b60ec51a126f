"""The day-2 screen driven by Pilot: real log files, a real LiteLLM config, a real local target,
a real database; every task goes through core.services.tasks and lands in the audit log."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from textual.widgets import Input, Select

from shipdeck.core.services import audit_log
from shipdeck.core.services.context import SystemClock
from shipdeck.core.services.plans import create_plan
from shipdeck.core.services.runs import run_plan
from shipdeck.tui.app import ShipdeckApp
from shipdeck.tui.screens.dashboard import DashboardScreen
from shipdeck.tui.screens.ops import OpsScreen
from shipdeck.tui.screens.prompt import PromptScreen
from shipdeck.tui.widgets.form import FormScreen
from tests.integration.shipping import front_port, get_version
from tests.support.workspace import WorkspaceFixture
from tests.tui.pilot import open_section, screen_text, settle, until
from tests.tui.scenario import actor_ctx
from tests.tui.shipping_scenario import LOG_LINES, ship_scenario

TASKS = {"logs", "follow", "restart", "limits"}


@pytest.fixture
def shipping_ws(tmp_path: Path) -> Iterator[WorkspaceFixture]:
    with ship_scenario(tmp_path / "ws") as ws:
        yield ws


async def pick(pilot: Any, which: str, value: str) -> None:
    """Choose in a Select with the keyboard: Enter opens it, typing finds, Enter takes."""
    select = pilot.app.screen.query_one(f"#ops-{which}", Select)
    select.focus()
    await pilot.press("enter", *value, "enter")
    await settle(pilot)
    assert select.value == value


def events(ws: WorkspaceFixture, kind: str) -> list[audit_log.Event]:
    return audit_log.list_events(ws.base, audit_log.AuditFilter(kind=kind))


async def test_logs_show_remote_text_verbatim_and_can_be_searched_and_saved(
    shipping_ws: WorkspaceFixture, tmp_path: Path
) -> None:
    app = ShipdeckApp(actor_ctx(shipping_ws, "alice"))
    async with app.run_test(size=(100, 30), notifications=True) as pilot:
        screen = await open_section(pilot, "o", OpsScreen)
        await pilot.press("shift+tab", "shift+tab")  # from the log to the app picker
        assert app.focused is screen.query_one("#ops-app", Select)
        await pilot.press("enter", *"chat", "enter")
        await settle(pilot)
        assert screen.app_name == "chat-api" and screen.env == "staging"
        assert "tpm 100,000  rpm 600" in screen_text(app)
        await pilot.press("l")
        await settle(pilot)
        shown = screen_text(app)
        assert "5 lines from chat-api/staging" in shown
        assert "chat-api green [bold]not bold[/bold] said a tenant" in shown
        assert "chat-api green ERROR upstream timeout tenant=acme" in shown
        assert "[31m" not in shown and "\x1b" not in shown

        await pilot.press("slash", *"error", "enter")
        await settle(pilot)
        shown = screen_text(app)
        assert "2 match 'error'" in shown
        assert "GET /health" not in shown and "retrying model-server call" in shown

        out = tmp_path / "saved" / "errors.log"
        await pilot.press("s")
        assert isinstance(app.screen, PromptScreen)
        assert ".shipdeck/logs/chat-api-staging-20261124-120000.log" in screen_text(app)
        app.screen.query_one(Input).value = str(out)
        await pilot.press("enter")
        await until(pilot, out.exists)
        await settle(pilot)
        assert out.read_text().splitlines() == [
            "2026-11-24T11:58:03Z chat-api green ERROR upstream timeout tenant=acme",
            LOG_LINES[4],
        ]
        await pilot.press("s")
        app.screen.query_one(Input).value = str(out)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, OpsScreen))
        await settle(pilot)  # the second save refuses to overwrite, shown, nothing raised
        assert len(out.read_text().splitlines()) == 2
        said = [n.message for n in app._notifications]
        assert any(m.startswith("saved 2 lines to") for m in said)
        assert any(m == f"{out} exists: choose another name" for m in said)
    pulled = events(shipping_ws, "task.logs")
    assert [(e.actor, e.app, e.env) for e in pulled] == [("alice", "chat-api", "staging")]


async def test_follow_streams_new_lines_until_stopped(shipping_ws: WorkspaceFixture) -> None:
    log_file = shipping_ws.root / "logs" / "chat-api-staging.log"
    app = ShipdeckApp(actor_ctx(shipping_ws, "alice"))
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_section(pilot, "o", OpsScreen)
        await pick(pilot, "app", "chat-api")
        await pilot.press("f")
        await until(pilot, lambda: "● following" in screen_text(app))
        await until(pilot, lambda: "5 lines from chat-api/staging" in screen_text(app))
        n = 0

        def appended() -> bool:  # following starts at the file's end: write until one is seen
            nonlocal n
            n += 1
            with log_file.open("a", encoding="utf-8") as f:
                f.write(f"new line {n} [i]x[/i] \x1b]0;title\x07\n")
            return "new line" in screen_text(app)

        await until(pilot, appended)
        assert "new line 1 [i]x[/i]" in screen_text(app) and "title" not in screen_text(app)
        await pilot.press("f")
        await until(pilot, lambda: "● following" not in screen_text(app))
        await until(
            pilot, lambda: not [w for w in app.workers if w.group == "ops-follow" and w.is_running]
        )
        assert not screen.log_panel.following


async def test_leaving_the_screen_stops_following_and_a_dialog_does_not(
    shipping_ws: WorkspaceFixture,
) -> None:
    app = ShipdeckApp(actor_ctx(shipping_ws, "alice"))
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_section(pilot, "o", OpsScreen)
        await pick(pilot, "app", "chat-api")
        await pilot.press("f")
        await until(pilot, lambda: "● following" in screen_text(app))
        await pilot.press("s")  # save: a modal prompt over the log
        await until(pilot, lambda: isinstance(app.screen, PromptScreen))
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is screen)
        assert screen.log_panel.following
        await pilot.press("d")  # while following: a worker runs, so no settling first
        await until(pilot, lambda: isinstance(app.screen, DashboardScreen))
        await until(
            pilot, lambda: not [w for w in app.workers if w.group == "ops-follow" and w.is_running]
        )
        assert not screen.log_panel.following
        await open_section(pilot, "o", OpsScreen)
        assert "● following" not in screen_text(app)


async def test_token_limits_change_in_a_protected_env_needs_a_reason_and_confirmation(
    shipping_ws: WorkspaceFixture,
) -> None:
    config = shipping_ws.root / "litellm-prod.yaml"
    app = ShipdeckApp(actor_ctx(shipping_ws, "alice"))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_section(pilot, "o", OpsScreen)
        await pick(pilot, "app", "chat-api")
        await pick(pilot, "env", "prod")
        assert "local target, protected: release-managers" in screen_text(app)
        await pilot.press("t")
        form = app.screen
        assert isinstance(form, FormScreen)
        form.query_one("#field-tpm", Input).value = "150000"
        await pilot.pause()
        assert "100,000  →  150,000" in screen_text(app)
        await pilot.press("enter", "enter", "enter")  # tpm, rpm, then an empty reason
        assert app.screen is form and "Reason: required" in screen_text(app)
        await pilot.press(*"incident 42")
        await pilot.press("enter")
        confirm = app.screen
        assert isinstance(confirm, FormScreen) and confirm is not form
        shown = screen_text(app)
        assert "Change token limits of chat-api in prod?" in shown
        assert "tpm  100,000  →  150,000" in shown and "rpm  600  (unchanged)" in shown
        assert (
            yaml.safe_load(config.read_text())["model_list"][0]["litellm_params"]["tpm"] == 100000
        )
        await pilot.press("y")
        await until(pilot, lambda: "tpm 150,000  rpm 600" in screen_text(app))
        await settle(pilot)
        limits = screen.token_limits.limits
        assert limits is not None and limits.tpm == 150000
    text = config.read_text()
    assert "tpm: 150000   # tokens per minute" in text and "rpm: 600" in text
    (change,) = events(shipping_ws, "task.token-limit")
    assert change.actor == "alice" and change.env == "prod"
    assert change.payload["reason"] == "incident 42"
    assert change.payload["old"] == {"tpm": 100000, "rpm": 600}
    assert change.payload["new"] == {"tpm": 150000, "rpm": 600}


async def test_restart_asks_first_then_restarts_the_live_color(
    shipping_ws: WorkspaceFixture,
) -> None:
    alice = replace(actor_ctx(shipping_ws, "alice"), clock=SystemClock())
    assert run_plan(alice, create_plan(alice, "staging", ["model-server@1.1.0"]).id).ok
    app = ShipdeckApp(actor_ctx(shipping_ws, "alice"))
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        screen = await open_section(pilot, "o", OpsScreen)
        assert (screen.app_name, screen.env) == ("model-server", "staging")
        await pilot.press("R")
        assert isinstance(app.screen, FormScreen)
        assert "Restart model-server in staging?" in screen_text(app)
        await pilot.press("n")
        await pilot.pause()
        assert app.screen is screen and events(shipping_ws, "task.restart") == []
        await pilot.press("R", "y")
        await until(pilot, lambda: bool(events(shipping_ws, "task.restart")))
        await settle(pilot)
        assert any("model-server/staging restarted" in n.message for n in app._notifications)
    (restart,) = events(shipping_ws, "task.restart")
    assert restart.payload["healthy"] is True
    assert get_version(front_port(shipping_ws, "model-server", "staging")) == "1.1.0"


@pytest.mark.parametrize(
    "who,read_only,why",
    [
        ("erin", False, "erin (auditors) lacks permission 'task.logs'"),
        ("bob", False, "bob (approvers) lacks permission 'task.logs'"),
        ("alice", True, "this session is read-only"),
    ],
)
async def test_people_without_task_rights_see_no_day2_actions(
    shipping_ws: WorkspaceFixture, who: str, read_only: bool, why: str
) -> None:
    """The screen says why in the core's words (core.services.actions), as the CLI would."""
    app = ShipdeckApp(actor_ctx(shipping_ws, who, read_only=read_only))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_section(pilot, "o", OpsScreen)
        await pick(pilot, "app", "chat-api")
        actions = {b.binding.action for b in screen.active_bindings.values()}
        assert not actions & TASKS
        assert why in screen_text(app)
        for key in ("l", "f", "R", "t"):
            await pilot.press(key)
            await pilot.pause()
            assert app.screen is screen, key
        assert "lines from" not in screen_text(app)
    kinds = {
        e.kind for e in audit_log.list_events(shipping_ws.base, audit_log.AuditFilter(actor=who))
    }
    assert not {k for k in kinds if k.startswith("task.") or k == "access.denied"}
