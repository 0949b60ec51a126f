"""The day-2 screen: searched log lines (remote text shown verbatim) and the token limit form.

Review changed SVGs before accepting them (`python -m pytest snapshots/ --snapshot-update`).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from shipdeck.tui.app import ShipdeckApp
from tests.support.workspace import WorkspaceFixture
from tests.tui.scenario import actor_ctx
from tests.tui.shipping_scenario import keys, ship_workspace

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 40), id="120x40")]
Compare = Callable[..., bool]
ship = pytest.fixture(ship_workspace, name="ship")
PICK_CHAT_API = ("shift+tab", "shift+tab", "enter", *"chat", "enter")


@pytest.mark.parametrize("size", SIZES)
def test_ops_logs_searched(
    snap_compare: Compare, ship: WorkspaceFixture, size: tuple[int, int]
) -> None:
    app = ShipdeckApp(actor_ctx(ship, "alice"))
    presses = ("o", *PICK_CHAT_API, "l", "slash", *"tenant", "enter")
    assert snap_compare(app, terminal_size=size, run_before=keys(*presses))


@pytest.mark.parametrize("size", SIZES)
def test_ops_token_limits_form(
    snap_compare: Compare, ship: WorkspaceFixture, size: tuple[int, int]
) -> None:
    app = ShipdeckApp(actor_ctx(ship, "alice"))
    presses = ("o", *PICK_CHAT_API, "t", *"150000", "enter")
    assert snap_compare(app, terminal_size=size, run_before=keys(*presses))
