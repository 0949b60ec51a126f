"""Plans and plan detail at 80x24 (SSH default) and 120x40, on the fixed scenario with targets.

Review changed SVGs before accepting them (`python -m pytest snapshots/ --snapshot-update`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from shipdeck.core.services.plans import approve, create_plan, override, reject
from shipdeck.tui.app import ShipdeckApp
from tests.support.workspace import WorkspaceFixture
from tests.tui.scenario import actor_ctx
from tests.tui.shipping_scenario import keys, ship_workspace

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 40), id="120x40")]
Compare = Callable[..., bool]
ship = pytest.fixture(ship_workspace, name="ship")


def plans(ws: WorkspaceFixture) -> None:
    """A prod plan waiting for people (one approval, an override under review), an approved
    staging plan in three waves, and a rejected one."""
    alice = actor_ctx(ws, "alice")
    prod = create_plan(alice, "prod", ["chat-api@2.2.0"])
    approve(actor_ctx(ws, "bob"), prod.id, "notes read, [b]fine[/b]")
    override(alice, prod.id, "hotfix for INC-42", timedelta(hours=2))
    create_plan(alice, "staging", ["model-server@1.1.0", "chat-api@2.2.0", "web@0.9.0"])
    rejected = create_plan(alice, "staging", ["web@0.9.0"])
    reject(actor_ctx(ws, "bob"), rejected.id, "web waits for the new chat-api")


@pytest.mark.parametrize("size", SIZES)
def test_plans(snap_compare: Compare, ship: WorkspaceFixture, size: tuple[int, int]) -> None:
    plans(ship)
    app = ShipdeckApp(actor_ctx(ship, "alice"))
    assert snap_compare(app, terminal_size=size, run_before=keys("p"))


@pytest.mark.parametrize("size", SIZES)
def test_plan_detail_approver(
    snap_compare: Compare, ship: WorkspaceFixture, size: tuple[int, int]
) -> None:
    plans(ship)
    app = ShipdeckApp(actor_ctx(ship, "carol"))
    assert snap_compare(app, terminal_size=size, run_before=keys("p", "enter"))


@pytest.mark.parametrize("size", SIZES)
def test_plan_detail_auditor(
    snap_compare: Compare, ship: WorkspaceFixture, size: tuple[int, int]
) -> None:
    plans(ship)
    app = ShipdeckApp(actor_ctx(ship, "erin"))
    assert snap_compare(app, terminal_size=size, run_before=keys("p", "enter"))
