"""The run view of a canary: each step of the canary shown as it happens (its weight, analysis
and pause), the weight it has reached, and promote from the keyboard to move it past a pause,
offered only to those who may run the plan."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from shipdeck.core.services import audit_log
from shipdeck.core.services.audit_log import AuditFilter
from shipdeck.core.services.context import SystemClock
from shipdeck.core.services.plans import create_plan
from shipdeck.core.services.releases import create_release
from shipdeck.core.services.runs import run_plan
from shipdeck.tui.app import ShipdeckApp
from shipdeck.tui.screens.run import RunScreen, fold
from shipdeck.tui.widgets.form import FormScreen
from tests.integration.shipping import front_port, get_version
from tests.support.cli import cli
from tests.support.workspace import WorkspaceFixture
from tests.tui.pilot import screen_text, settle, until
from tests.tui.scenario import actor_ctx
from tests.tui.shipping_scenario import ship_scenario, targets_toml

RUN_DEADLINE = 90.0  # keeps a broken run from hanging the suite; nothing is timed
CANARY = (
    "[apps.web.targets.staging]\n"
    'strategy = "canary"\n'
    "canary = { steps = [{ set_weight = 10 }, { pause = {} }, { set_weight = 100 }] }\n"
)


@pytest.fixture
def canary_ws(tmp_path: Path) -> Iterator[WorkspaceFixture]:
    with ship_scenario(tmp_path / "ws") as ws:
        ws.write_config(targets_toml().replace("[apps.web.targets.staging]\n", CANARY))
        alice = replace(actor_ctx(ws, "alice"), clock=SystemClock())
        create_release(alice, "web", "1.0.0")
        create_release(alice, "web", "1.1.0")
        # The first deployment to the target switches at once: nothing is live to compare with.
        assert run_plan(alice, create_plan(alice, "staging", ["web@1.0.0"]).id).ok
        yield ws


def bindings(screen: Any) -> set[str]:
    return {b.binding.action for b in screen.active_bindings.values()}


async def watch(app: ShipdeckApp, pilot: Any, plan_id: str, until_text: str) -> RunScreen:
    app.push_screen(RunScreen(plan_id))
    await until(
        pilot,
        lambda: isinstance(app.screen, RunScreen) and until_text in screen_text(app),
        RUN_DEADLINE,
    )
    assert isinstance(app.screen, RunScreen)
    return app.screen


async def test_a_paused_canary_shows_its_weight_and_is_promoted_from_the_run_view(
    canary_ws: WorkspaceFixture,
) -> None:
    alice = replace(actor_ctx(canary_ws, "alice"), clock=SystemClock())
    plan = create_plan(alice, "staging", ["web@1.1.0"])
    assert cli(canary_ws, "plan", "run", plan.id).returncode == 0  # a detached runner

    app = ShipdeckApp(alice)
    async with app.run_test(size=(80, 24)) as pilot:
        run = await watch(app, pilot, plan.id, "paused at 10%")
        assert "canary: paused at 10% until promoted…" in screen_text(app)
        assert run.view is not None and fold(run.view, run.steps)["web"].weight == 10
        await until(pilot, lambda: "promote" in bindings(run))
        assert "1 web 1.1.0" in screen_text(app) and "1 app in 1 wave" in screen_text(app)

        await pilot.press("P")
        assert isinstance(app.screen, FormScreen)
        assert "Now web at 10%" in screen_text(app)
        await pilot.press("y")
        await until(pilot, lambda: run.state == "succeeded", RUN_DEADLINE)
        await settle(pilot)
        progress = fold(run.view, run.steps)["web"]
        assert progress.weight is None and "canary" in progress.forward
        assert "✓ live" in screen_text(app)
        assert "promote" not in bindings(run)  # nothing left to promote
    assert get_version(front_port(canary_ws, "web", "staging")) == "1.1.0"
    promoted = audit_log.list_events(alice, AuditFilter(plan=plan.id, kind="run.promote_requested"))
    assert [e.actor for e in promoted] == ["alice"]


async def test_an_auditor_watching_a_canary_is_not_offered_promote(
    canary_ws: WorkspaceFixture,
) -> None:
    alice = replace(actor_ctx(canary_ws, "alice"), clock=SystemClock())
    plan = create_plan(alice, "staging", ["web@1.1.0"])
    assert cli(canary_ws, "plan", "run", plan.id).returncode == 0

    app = ShipdeckApp(replace(actor_ctx(canary_ws, "erin"), clock=SystemClock()))
    async with app.run_test(size=(80, 24)) as pilot:
        run = await watch(app, pilot, plan.id, "paused at 10%")
        await until(pilot, lambda: run.actions.get("promote", "") is not None)  # core said no
        assert "promote" not in bindings(run) and "abort" not in bindings(run)
        await pilot.press("P")
        await pilot.pause()
        assert isinstance(app.screen, RunScreen)  # no question asked, nothing requested
    assert cli(canary_ws, "plan", "abort", plan.id).returncode == 0
