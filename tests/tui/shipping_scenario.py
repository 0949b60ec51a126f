"""The TUI scenario with targets, for the plans, run and ops screens (Pilot tests and snapshots).

The scenario workspace (fixed clock, releases and deployments a few days old) plus a `local`
blue/green target for every app in every environment on free loopback ports, and for chat-api a
file log source and a LiteLLM config file holding its token limits. Targets start only when a run
ships to them; `teardown_targets` stops whatever did start.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from tests.integration.shipping import teardown_targets
from tests.support.moto_server import free_port
from tests.support.workspace import FixedClock, WorkspaceFixture
from tests.tui.pilot import settle
from tests.tui.scenario import SCENARIO_TOML, build_scenario

ENVS = ("staging", "prod")
LITELLM = """\
# LiteLLM proxy config (the platform team keeps it)
model_list:
  - model_name: chat
    litellm_params:
      model: azure/gpt-4o-eu
      tpm: 100000   # tokens per minute
      rpm: 600
"""
LOG_LINES = (
    "2026-11-24T11:58:01Z chat-api green GET /health 200",
    "2026-11-24T11:58:02Z chat-api green [bold]not bold[/bold] said a tenant",
    "2026-11-24T11:58:03Z chat-api green \x1b[31mERROR\x1b[0m upstream timeout tenant=acme",
    "2026-11-24T11:58:04Z chat-api green GET /v1/chat 200 tokens=812",
    "2026-11-24T11:58:05Z chat-api green error retrying model-server call",
)


def targets_toml(port: Callable[[], int] = free_port) -> str:
    """Prod is also protected: day-2 changes there need release-managers and a reason."""
    base = SCENARIO_TOML.replace(
        "[environments.prod]\n",
        '[environments.prod]\nprotected = true\ntask_roles = ["release-managers"]\n',
    )
    parts = [base]
    for app in ("model-server", "chat-api", "web"):
        for env in ENVS:
            parts.append(
                f'[apps.{app}.targets.{env}]\nadapter = "local"\nport = {port()}\n'
                f"blue_port = {port()}\ngreen_port = {port()}\n"
            )
            if app == "chat-api":
                parts.append(
                    f'logs = {{ adapter = "file", path = "logs/chat-api-{env}.log" }}\n'
                    f'token_limits = {{ adapter = "litellm-file", path = "litellm-{env}.yaml", '
                    'model = "chat" }\n'
                )
    return "\n".join(parts)


def build_ship_scenario(
    root: Path, clock: FixedClock | None = None, db_url: str | None = None
) -> WorkspaceFixture:
    ws = build_scenario(root, clock, db_url)
    ws.write_config(targets_toml())
    (root / "logs").mkdir()
    for env in ENVS:
        (root / f"litellm-{env}.yaml").write_text(LITELLM, encoding="utf-8")
        (root / "logs" / f"chat-api-{env}.log").write_text(
            "".join(f"{line}\n" for line in LOG_LINES), encoding="utf-8"
        )
    return ws


@contextmanager
def ship_scenario(root: Path) -> Iterator[WorkspaceFixture]:
    ws = build_ship_scenario(root)
    try:
        yield ws
    finally:
        teardown_targets(ws)
        ws.close()


def fixed_plan_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    """Plan ids are random; snapshots need the same ids every time."""
    ids = (f"p-{n:08x}" for n in itertools.count(0x5EED0001))
    monkeypatch.setattr("shipdeck.core.services.plans.drafting.new_plan_id", lambda: next(ids))


def ship_workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[WorkspaceFixture]:
    """The scenario with targets and fixed plan ids; snapshot modules make it their fixture:
    `ship = pytest.fixture(ship_workspace, name="ship")`."""
    fixed_plan_ids(monkeypatch)
    with ship_scenario(tmp_path / "ws") as ws:
        yield ws


def keys(*presses: str) -> Callable[[Pilot[Any]], Awaitable[None]]:
    """Wait for data, press keys one by one waiting for what each asks for, then make the picture
    still: no toasts (they time out) and no blinking cursor in any input."""

    async def run(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        for key in presses:
            await pilot.press(key)
            await settle(pilot)
        pilot.app.clear_notifications()
        for screen in pilot.app.screen_stack:
            for box in screen.query(Input):
                box.cursor_blink = False
        await pilot.pause()

    return run
