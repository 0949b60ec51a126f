"""A deterministic workspace for TUI tests and snapshots: fixed clock, fixed names, real git and a
real SQLite database inside the workspace (so the header shows the same path everywhere).

Deployments are recorded by tests/support/deployments.py; everything else goes through services.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from shipdeck.core.services.context import Context
from shipdeck.core.services.releases import create_release
from tests.support.deployments import record_deployment
from tests.support.workspace import (
    BASIC_TOML,
    FixedClock,
    WorkspaceFixture,
    actor_as,
    three_apps,
)

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)

SCENARIO_TOML = BASIC_TOML.replace(
    "[environments.staging]",
    """[windows.business-hours]
cron = "0 9 * * 1-5"
duration = "9h"
timezone = "Europe/Berlin"

[environments.staging]""",
).replace(
    'checklist = ["Release notes reviewed"]',
    'checklist = ["Release notes reviewed"]\nwindows = ["business-hours"]',
)


def actor_ctx(ws: WorkspaceFixture, name: str, read_only: bool = False) -> Context:
    """A context for `name` whose recorded facts do not depend on the machine (no SSH_CLIENT)."""
    return replace(ws.base, actor=actor_as(ws.base.config, name), read_only=read_only)


def build_scenario(
    root: Path, clock: FixedClock | None = None, db_url: str | None = None
) -> WorkspaceFixture:
    """Three apps with history: releases, deployments a few days old, one failed attempt."""
    root.mkdir(parents=True, exist_ok=True)
    clock = clock or FixedClock(NOW)
    url = db_url or f"sqlite:///{root / '.shipdeck' / 'state.db'}"
    ws = three_apps(root, url, clock, SCENARIO_TOML)
    end = clock.at
    clock.at = datetime(2026, 11, 19, 9, 0, tzinfo=UTC)
    alice = actor_ctx(ws, "alice")
    sha = ws.shas
    for app, version, idx, config in (
        ("model-server", "1.0.0", 1, None),
        ("chat-api", "2.0.0", 2, None),
        ("web", "0.9.0", 2, None),
        ("model-server", "1.1.0", 4, None),
        ("chat-api", "2.1.0", 5, {"max_tokens": 8192}),
        ("chat-api", "2.2.0", 7, {"max_tokens": 8192}),
    ):
        create_release(
            alice, app, version, commit=sha[app][idx], config=config, notes=f"{app} {version}"
        )
        clock.advance(hours=5)
    for app, env, version, color, outcome in (
        ("model-server", "staging", "1.0.0", "blue", "succeeded"),
        ("model-server", "prod", "1.0.0", "green", "succeeded"),
        ("chat-api", "staging", "2.0.0", "blue", "succeeded"),
        ("chat-api", "prod", "2.0.0", "blue", "succeeded"),
        ("web", "staging", "0.9.0", "blue", "succeeded"),
        ("model-server", "staging", "1.1.0", "green", "succeeded"),
        ("chat-api", "staging", "2.2.0", "green", "succeeded"),
        ("web", "prod", "0.9.0", "green", "failed"),
    ):
        record_deployment(alice, app, env, version, color, outcome)
        clock.advance(hours=9)
    clock.at = end
    return ws
