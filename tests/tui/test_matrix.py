"""The dashboard matrix (a Line-API view) moves as a table does: its cursor's cell stays in view
beside the fixed app column and under the header, and the mouse moves and opens like Enter."""

from __future__ import annotations

from shipdeck.tui.app import ShipdeckApp
from shipdeck.tui.screens.app_detail import AppScreen
from shipdeck.tui.widgets.matrix import StatusMatrix
from tests.support.workspace import WorkspaceFixture
from tests.tui.pilot import screen_text, settle, until
from tests.tui.scenario import actor_ctx


async def test_the_cursor_cell_stays_in_view_beside_the_app_column(
    scenario: WorkspaceFixture,
) -> None:
    app = ShipdeckApp(actor_ctx(scenario, "alice"))
    async with app.run_test(size=(48, 14)) as pilot:  # room for two rows and one environment
        await settle(pilot)
        matrix = app.screen.query_one(StatusMatrix)
        assert matrix.scroll_offset == (0, 0)
        await pilot.press("G", "l", "l")
        await settle(pilot)
        assert (matrix.current_app(), matrix.current_env()) == ("web", "prod")
        assert matrix.scroll_offset.x > 0 and matrix.scroll_offset.y > 0
        lines = screen_text(app).splitlines()
        header = next(i for i, line in enumerate(lines) if line.startswith(" app "))
        assert "prod" in lines[header] and "staging" not in lines[header]
        web = next(line for line in lines[header:] if line.startswith(" web "))
        assert "— latest 0.9.0 failed" in web  # the prod cell, beside the fixed name
        await pilot.press("g", "h", "h")
        await settle(pilot)
        assert (matrix.current_app(), matrix.current_env()) == ("model-server", None)
        assert matrix.scroll_offset == (0, 0)


async def test_a_click_moves_the_cursor_and_a_click_on_it_opens_the_app(
    scenario: WorkspaceFixture,
) -> None:
    app = ShipdeckApp(actor_ctx(scenario, "alice"))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        matrix = app.screen.query_one(StatusMatrix)
        prod = sum(matrix.column_width(c) + 2 for c in ("app", "staging")) + 3  # inside prod
        await pilot.click(StatusMatrix, offset=(prod, 2))  # header, model-server, chat-api
        assert (matrix.current_app(), matrix.current_env()) == ("chat-api", "prod")
        assert not isinstance(app.screen, AppScreen)  # the first click only moves
        await pilot.click(StatusMatrix, offset=(prod, 2))
        await until(pilot, lambda: isinstance(app.screen, AppScreen))
        assert "App chat-api" in screen_text(app).splitlines()[0]
