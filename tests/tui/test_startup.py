"""Start-up under a slow status worker (held by a gated database or git port, not a sleep): keys
typed before the dashboard has its data act, the first frame with data has its columns at full
width, and commits the cache has not counted yet are shown as being counted, then counted."""

from __future__ import annotations

from dataclasses import replace

from textual.widgets import Input

from shipdeck.core.services.status import status
from shipdeck.tui.app import ShipdeckApp
from shipdeck.tui.screens.dashboard import DashboardScreen
from shipdeck.tui.widgets.matrix import StatusMatrix
from tests.fakes.database import GatedDatabase
from tests.fakes.git import GatedGit
from tests.support.workspace import WorkspaceFixture
from tests.tui.pilot import screen_text, settle, until
from tests.tui.scenario import actor_ctx


def gated_app(scenario: WorkspaceFixture) -> tuple[ShipdeckApp, GatedDatabase]:
    ctx = actor_ctx(scenario, "alice")
    db = GatedDatabase(ctx.db)
    return ShipdeckApp(replace(ctx, db=db)), db  # type: ignore[arg-type]


async def test_keys_typed_before_the_data_arrives_act(scenario: WorkspaceFixture) -> None:
    app, db = gated_app(scenario)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, db.waiting.is_set)  # the status worker is held: no data yet
        screen = app.screen
        assert isinstance(screen, DashboardScreen) and not screen.loaded
        await pilot.press("slash", *"chat", "enter", "l")
        db.gate.set()
        await settle(pilot)
        box = screen.query_one("#filter", Input)
        matrix = screen.query_one(StatusMatrix)
        assert box.value == "chat" and box.display
        assert matrix.row_count == 1 and matrix.current_app() == "chat-api"
        assert matrix.has_focus and matrix.current_env() == "staging"
        await pilot.press("l", "enter")  # the prod cell, typed the moment the data is there
        await settle(pilot)
        assert "App chat-api" in screen_text(app).splitlines()[0]


async def test_the_first_frame_with_data_has_full_column_widths(
    scenario: WorkspaceFixture,
) -> None:
    status(actor_ctx(scenario, "alice"))  # commit counts cached: this frame is about widths
    app, db = gated_app(scenario)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, db.waiting.is_set)
        db.gate.set()
        screen = app.screen
        assert isinstance(screen, DashboardScreen)
        await until(pilot, lambda: screen.loaded)
        await pilot.pause()  # the frame that follows the data: no refresh, no 'r'
        matrix = screen.query_one(StatusMatrix)
        apps = ("model-server", "chat-api", "web")
        for column in matrix.columns:
            cells = [matrix.get_cell(app, column).cell_len for app in apps]
            shown = matrix.column_width(column)
            assert shown >= max(cells), (column, shown, max(cells))
        text = screen_text(app)
        assert "2.0.0 blue   2d ↓5 Δ live" in text and "…" not in text, text


async def test_commits_not_counted_yet_are_shown_counting_then_counted(
    scenario: WorkspaceFixture,
) -> None:
    """The scenario's distance cache is empty: git counts after the first frame, not before."""
    ctx = actor_ctx(scenario, "alice")
    git = GatedGit(ctx.git)
    app = ShipdeckApp(replace(ctx, git=git))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        assert isinstance(screen, DashboardScreen)
        await until(pilot, lambda: screen.loaded and git.waiting.is_set())
        await pilot.pause()
        text = screen_text(app)
        assert "2.0.0 blue   2d …  Δ live" in text and "↓5" not in text, text
        assert "1.1.0 green  2d ✓    live" in text  # what needs no count is shown as it is
        git.gate.set()
        await until(pilot, lambda: "2.0.0 blue   2d ↓5 Δ live" in screen_text(app))
        assert "…" not in screen_text(app)
