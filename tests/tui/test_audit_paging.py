"""The virtual audit view reads only what it shows, by keyset, and still lands on the right rows.

Thousands of events in one transaction; rows are checked against sequence numbers that can be
computed: unfiltered row r is event top - r; filtered to even kinds, row r is event top_even - 2r.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from shipdeck.core.services.audit_log import AuditFilter
from shipdeck.tui.app import ShipdeckApp
from shipdeck.tui.screens.audit import AuditScreen
from shipdeck.tui.widgets.audit_view import ANCHOR_REACH, AuditSource, AuditView
from tests.support.workspace import WorkspaceFixture
from tests.tui.pilot import open_section, settle
from tests.tui.scenario import actor_ctx, build_scenario

EXTRA = 6_000


@pytest.fixture
def big(tmp_path: Path) -> Iterator[WorkspaceFixture]:
    ws = build_scenario(tmp_path / "ws")
    ctx = actor_ctx(ws, "frank")
    with ctx.db.write() as conn:
        for i in range(EXTRA):
            ctx.audit(conn, "test.even" if i % 2 == 0 else "test.odd", {"i": i}, app="web")
    yield ws
    ws.close()


def test_source_pages_unfiltered_and_filtered_by_keyset(big: WorkspaceFixture) -> None:
    ctx = actor_ctx(big, "alice")
    plain = AuditSource(ctx, AuditFilter())
    shape = plain.measure()
    assert (shape.total, shape.filtered) == (14 + EXTRA, False)
    rows = plain.window(shape, 100, 50)
    assert sorted(rows) == list(range(100, 150))
    assert all(e.seq == shape.top_seq - r for r, e in rows.items())

    even = AuditSource(ctx, AuditFilter(kind="test.even"))
    eshape = even.measure()
    assert eshape.total == EXTRA // 2 and eshape.filtered
    top_even = max(e.seq for e in even.window(eshape, 0, 1).values())
    # a far jump (no anchor within reach), a keyset walk from that anchor, and the oldest end
    for first in (ANCHOR_REACH + 500, ANCHOR_REACH + 560, eshape.total - 20):
        got = even.window(eshape, first, 20)
        assert set(range(first, first + 20)) <= set(got)
        assert all(e.seq == top_even - 2 * r and e.kind == "test.even" for r, e in got.items())


async def test_end_and_pages_show_the_right_events(big: WorkspaceFixture) -> None:
    app = ShipdeckApp(actor_ctx(big, "alice"))
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_section(pilot, "a", AuditScreen)
        view = screen.query_one(AuditView)
        await pilot.press("G")
        await settle(pilot)
        assert view.current is not None and view.current.seq == 1
        assert len(view.rows) < 500  # only the visible part and a margin were read
        await pilot.press("slash", *"kind:test.even", "enter")
        await settle(pilot)
        await pilot.press("G")
        await settle(pilot)
        assert view.current is not None and view.current.seq == 15  # the oldest even event
        await pilot.press("pageup", "pageup", "k")
        await settle(pilot)
        top = view.shape.top_seq if (view.shape.top_seq - 15) % 2 == 0 else view.shape.top_seq - 1
        assert view.current is not None and view.current.seq == top - 2 * view.cursor
        shown = [view.render_line(y).text.split()[0] for y in range(1, view.size.height)]
        assert shown == [str(top - 2 * (int(view.scroll_y) + i)) for i in range(len(shown))]
