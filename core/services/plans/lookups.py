"""Lookups every plan service shares: the environment's config and window, a plan's row, new
row ids, and the apps shipdeck.toml no longer targets.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.engine import CursorResult, Row

from shipdeck.core.domain.config import Environment
from shipdeck.core.domain.windows import WindowState, window_state
from shipdeck.core.errors import NotFoundError
from shipdeck.core.services.context import Context
from shipdeck.core.storage.tables import PLANS

# --- shared lookups --------------------------------------------------------------------------


def new_row_id(result: CursorResult[Any]) -> int:
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def env_config(ctx: Context, env: str) -> Environment:
    try:
        return ctx.config.environments[env]
    except KeyError:
        known = ", ".join(ctx.config.env_order())
        raise NotFoundError(f"unknown environment '{env}' (known: {known})") from None


def load_plan_row(conn: Connection, plan_id: str, *, for_update: bool = False) -> Row[Any]:
    query = select(PLANS).where(PLANS.c.id == plan_id)
    if for_update:
        query = query.with_for_update()
    row = conn.execute(query).first()
    if row is None:
        raise NotFoundError(f"no plan '{plan_id}' (see 'shipdeck plan list')")
    return row


def untargeted(ctx: Context, env: str, apps: Sequence[str]) -> list[str]:
    """The apps shipdeck.toml no longer deploys to `env` (removed, or their target removed):
    configuration drift after a plan was drafted, which policy and the runner both refuse."""
    return [a for a in apps if a not in ctx.config.apps or env not in ctx.config.apps[a].targets]


def window_tz(ctx: Context, env: str) -> str:
    specs, _ = ctx.config.window_specs(env)
    return specs[0].timezone if specs else "UTC"


def env_window(ctx: Context, env: str, now: datetime) -> WindowState:
    return window_state(*ctx.config.window_specs(env), now)
