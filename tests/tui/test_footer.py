"""The key bar (widgets/footer.py) is rebuilt when the keys it shows change, and only then."""

from __future__ import annotations

from textual.widgets._footer import FooterKey  # not exported by textual.widgets

from shipdeck.tui.app import ShipdeckApp
from tests.support.workspace import WorkspaceFixture
from tests.tui.pilot import settle
from tests.tui.scenario import actor_ctx


def footer_keys(app: ShipdeckApp) -> list[FooterKey]:
    return list(app.screen.query(FooterKey))


def described(app: ShipdeckApp) -> list[str]:
    return [k.description for k in footer_keys(app)]


async def test_the_footer_follows_the_keys_of_what_has_focus(scenario: WorkspaceFixture) -> None:
    app = ShipdeckApp(actor_ctx(scenario, "alice"))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert {"Filter", "Open app", "New plan"} <= set(described(app))
        await pilot.press("slash")  # typing a filter: '/' and Enter are the box's now
        await settle(pilot)
        assert "Filter" not in described(app) and "Open app" not in described(app)
        await pilot.press("escape")
        await settle(pilot)
        assert {"Filter", "Open app", "New plan"} <= set(described(app))


async def test_the_same_keys_are_not_rebuilt(scenario: WorkspaceFixture) -> None:
    app = ShipdeckApp(actor_ctx(scenario, "alice"))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        before = footer_keys(app)
        app.screen.refresh_bindings()  # what focus and screen changes signal
        await settle(pilot)
        after = footer_keys(app)
        assert before and len(after) == len(before)
        assert all(a is b for a, b in zip(after, before, strict=True))
