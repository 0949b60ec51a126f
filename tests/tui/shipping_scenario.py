"""The TUI scenario with targets, for the plans, run and ops screens (Pilot tests and snapshots).

The scenario workspace (fixed clock, releases and deployments a few days old) plus a `local`
blue/green target for every app in every environment on free loopback ports, and for chat-api a
file log source and a LiteLLM config file holding its token limits. Targets start only when a run
ships to them; `teardown_targets` stops whatever did start.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.integration.shipping import teardown_targets
from tests.support.moto_server import free_port
from tests.support.workspace import FixedClock, WorkspaceFixture
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
    parts = [SCENARIO_TOML]
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
