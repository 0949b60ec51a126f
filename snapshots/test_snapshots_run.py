"""The run view after a run that failed and rolled back, shipped for real to local targets with
the scenario's fixed clock (every step at the same instant, so the picture never changes).

Review changed SVGs before accepting them (`python -m pytest snapshots/ --snapshot-update`).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from shipdeck.core.services.plans import create_plan
from shipdeck.core.services.releases import create_release
from shipdeck.core.services.runs import run_plan
from shipdeck.tui.app import ShipdeckApp
from tests.support.workspace import WorkspaceFixture
from tests.tui.scenario import actor_ctx
from tests.tui.shipping_scenario import keys, ship_workspace

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 40), id="120x40")]
Compare = Callable[..., bool]
ship = pytest.fixture(ship_workspace, name="ship")


@pytest.mark.parametrize("size", SIZES)
def test_run_rolled_back(
    snap_compare: Compare, ship: WorkspaceFixture, size: tuple[int, int]
) -> None:
    alice = actor_ctx(ship, "alice")
    assert run_plan(
        alice, create_plan(alice, "staging", ["model-server@1.0.0", "chat-api@2.0.0"]).id
    ).ok
    create_release(alice, "chat-api", "2.3.0", config={"demo_health": "fail"})
    failed = run_plan(
        alice, create_plan(alice, "staging", ["model-server@1.1.0", "chat-api@2.3.0"]).id
    )
    assert failed.state == "rolled_back"
    app = ShipdeckApp(alice)
    assert snap_compare(app, terminal_size=size, run_before=keys("p", "j", "w"))
