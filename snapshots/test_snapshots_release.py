"""The release screens at 80x24 (SSH default) and 120x40, on the fixed scenario with targets: the
plan editor, release detail, a diff of two releases (a downgrade), the rollback question, and
help listing refused actions with their reasons.

Review changed SVGs before accepting them (`python -m pytest snapshots/ --snapshot-update`).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from shipdeck.core.services.plans import create_plan
from shipdeck.tui.app import ShipdeckApp
from tests.support.workspace import WorkspaceFixture
from tests.tui.scenario import actor_ctx
from tests.tui.shipping_scenario import keys, ship_workspace

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 40), id="120x40")]
Compare = Callable[..., bool]
ship = pytest.fixture(ship_workspace, name="ship")


@pytest.mark.parametrize("size", SIZES)
def test_new_plan_for_prod(
    snap_compare: Compare, ship: WorkspaceFixture, size: tuple[int, int]
) -> None:
    app = ShipdeckApp(actor_ctx(ship, "alice"))
    assert snap_compare(app, terminal_size=size, run_before=keys("p", "n", "E", "space"))


@pytest.mark.parametrize("size", SIZES)
def test_release_detail(
    snap_compare: Compare, ship: WorkspaceFixture, size: tuple[int, int]
) -> None:
    app = ShipdeckApp(actor_ctx(ship, "alice"))
    assert snap_compare(app, terminal_size=size, run_before=keys("j", "enter", "enter"))


@pytest.mark.parametrize("size", SIZES)
def test_release_diff_downgrade(
    snap_compare: Compare, ship: WorkspaceFixture, size: tuple[int, int]
) -> None:
    """chat-api 2.2.0 marked, then 2.0.0 compared with it: going back to 2.0.0 removes commits."""
    app = ShipdeckApp(actor_ctx(ship, "alice"))
    assert snap_compare(app, terminal_size=size, run_before=keys("j", "enter", "x", "j", "j", "c"))


@pytest.mark.parametrize("size", SIZES)
def test_rollback_question(
    snap_compare: Compare, ship: WorkspaceFixture, size: tuple[int, int]
) -> None:
    app = ShipdeckApp(actor_ctx(ship, "alice"))
    assert snap_compare(app, terminal_size=size, run_before=keys("j", "l", "R"))


@pytest.mark.parametrize("size", SIZES)
def test_plan_help_lists_refused_actions(
    snap_compare: Compare, ship: WorkspaceFixture, size: tuple[int, int]
) -> None:
    create_plan(actor_ctx(ship, "alice"), "prod", ["chat-api@2.2.0"])
    app = ShipdeckApp(actor_ctx(ship, "erin"))
    assert snap_compare(app, terminal_size=size, run_before=keys("p", "enter", "question_mark"))
