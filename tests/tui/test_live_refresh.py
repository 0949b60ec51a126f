"""Two TUI instances on one database (SQLite and PostgreSQL): a change made in one shows in the other.

The second instance notices by polling the audit head (every 2 s, the production setting); the test
waits for the change to appear, without a time bound that a loaded machine would break.
"""

from __future__ import annotations

import asyncio

from shipdeck.core.services.releases import create_release
from shipdeck.tui.app import ShipdeckApp
from shipdeck.tui.messages import HeadChanged
from shipdeck.tui.screens.audit import AuditScreen
from shipdeck.tui.widgets.audit_view import AuditView
from shipdeck.tui.widgets.matrix import StatusMatrix
from tests.support.workspace import WorkspaceFixture
from tests.tui.pilot import settle, until
from tests.tui.scenario import actor_ctx


def cell(app: ShipdeckApp, name: str, env: str) -> str:
    return str(app.screen.query_one(StatusMatrix).get_cell(name, env).plain)


async def test_a_change_made_in_one_instance_appears_in_the_other(ws: WorkspaceFixture) -> None:
    watcher = ShipdeckApp(actor_ctx(ws, "erin"))
    actor = ShipdeckApp(actor_ctx(ws, "alice"))
    async with watcher.run_test(size=(100, 30)) as watch, actor.run_test(size=(100, 30)) as act:
        await settle(watch)
        await settle(act)
        assert cell(watcher, "web", "staging") == "—"

        # A release made through the services with the other instance's context.
        await asyncio.to_thread(create_release, actor.ctx, "web", "1.0.0")
        await until(watch, lambda: "latest 1.0.0" in cell(watcher, "web", "staging"))

        # A checkpoint written from the other instance's audit screen shows in this one's log.
        await watch.press("a")
        await settle(watch)
        await act.press("a")
        await settle(act)
        await act.press("c")
        await act.pause()
        await act.press("enter")  # the default location under .shipdeck/
        view = watcher.screen.query_one(AuditView)
        assert isinstance(watcher.screen, AuditScreen)
        await until(
            watch, lambda: view.current is not None and view.current.kind == "audit.checkpoint"
        )
        assert view.current is not None and view.current.actor == "alice"


def test_a_head_change_with_no_screen_yet_is_kept_for_the_first_one(ws: WorkspaceFixture) -> None:
    """The poll can report before the first screen is pushed (or after the last is gone)."""
    app = ShipdeckApp(actor_ctx(ws, "erin"))
    app._head_changed(HeadChanged(7, "d"))
    assert app.head_seq == 7
