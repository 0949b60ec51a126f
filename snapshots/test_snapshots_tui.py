"""What each screen looks like at 80x24 (SSH default) and 120x40, on a fixed workspace and clock.

Review changed SVGs before accepting them (`python -m pytest snapshots/ --snapshot-update`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from textual.pilot import Pilot

from shipdeck.core.errors import PermissionDenied
from shipdeck.core.services.releases import create_release
from shipdeck.tui.app import ShipdeckApp
from tests.support.workspace import WorkspaceFixture
from tests.tui.pilot import settle
from tests.tui.scenario import actor_ctx

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 40), id="120x40")]
Compare = Callable[..., bool]


def keys(*presses: str) -> Callable[[Pilot[Any]], Awaitable[None]]:
    """Wait for data, then press keys one by one, waiting for the data each one asks for."""

    async def run(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        for key in presses:
            await pilot.press(key)
            await settle(pilot)
        pilot.app.clear_notifications()  # toasts time out: not part of a stable picture
        await pilot.pause()

    return run


@pytest.mark.parametrize("size", SIZES)
def test_dashboard(
    snap_compare: Compare, scenario: WorkspaceFixture, size: tuple[int, int]
) -> None:
    app = ShipdeckApp(actor_ctx(scenario, "alice"))
    assert snap_compare(app, terminal_size=size, run_before=keys())


@pytest.mark.parametrize("size", SIZES)
def test_dashboard_read_only_auditor(
    snap_compare: Compare, scenario: WorkspaceFixture, size: tuple[int, int]
) -> None:
    app = ShipdeckApp(actor_ctx(scenario, "erin"))
    assert snap_compare(app, terminal_size=size, run_before=keys("j"))


@pytest.mark.parametrize("size", SIZES)
def test_dashboard_filtered(
    snap_compare: Compare, scenario: WorkspaceFixture, size: tuple[int, int]
) -> None:
    app = ShipdeckApp(actor_ctx(scenario, "alice"))
    assert snap_compare(app, terminal_size=size, run_before=keys("slash", "w", "e", "enter"))


@pytest.mark.parametrize("size", SIZES)
def test_app_detail(
    snap_compare: Compare, scenario: WorkspaceFixture, size: tuple[int, int]
) -> None:
    app = ShipdeckApp(actor_ctx(scenario, "alice"))
    assert snap_compare(app, terminal_size=size, run_before=keys("j", "l", "l", "enter"))


@pytest.mark.parametrize("size", SIZES)
def test_audit(snap_compare: Compare, scenario: WorkspaceFixture, size: tuple[int, int]) -> None:
    app = ShipdeckApp(actor_ctx(scenario, "alice"))
    assert snap_compare(app, terminal_size=size, run_before=keys("a", "j"))


@pytest.mark.parametrize("size", SIZES)
def test_audit_filtered_and_verified(
    snap_compare: Compare, scenario: WorkspaceFixture, size: tuple[int, int]
) -> None:
    with pytest.raises(PermissionDenied):
        create_release(actor_ctx(scenario, "bob"), "web", "9.9.9")
    app = ShipdeckApp(actor_ctx(scenario, "alice"))
    filter_keys = ("slash", *"actor:bob", "enter", "v")
    assert snap_compare(app, terminal_size=size, run_before=keys("a", *filter_keys))


@pytest.mark.parametrize("size", SIZES)
def test_help(snap_compare: Compare, scenario: WorkspaceFixture, size: tuple[int, int]) -> None:
    app = ShipdeckApp(actor_ctx(scenario, "alice"))
    assert snap_compare(app, terminal_size=size, run_before=keys("a", "question_mark"))


@pytest.mark.parametrize("size", SIZES)
def test_metrics(snap_compare: Compare, scenario: WorkspaceFixture, size: tuple[int, int]) -> None:
    app = ShipdeckApp(actor_ctx(scenario, "alice"))
    assert snap_compare(app, terminal_size=size, run_before=keys("m"))
