"""Lookups every plan service shares: the environment's config and window, a plan's row, and
the apps shipdeck.toml no longer targets.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from shipdeck.core.domain.config import Environment
from shipdeck.core.domain.windows import WindowState, window_state
from shipdeck.core.errors import NotFoundError
from shipdeck.core.services.context import Context
from shipdeck.core.storage import plans
from shipdeck.core.storage.db import Tx
from shipdeck.core.storage.plans import PlanRow

# --- shared lookups --------------------------------------------------------------------------


def env_config(ctx: Context, env: str) -> Environment:
    try:
        return ctx.config.environments[env]
    except KeyError:
        known = ", ".join(ctx.config.env_order())
        raise NotFoundError(f"unknown environment '{env}' (known: {known})") from None


def load_plan_row(conn: Tx, plan_id: str, *, for_update: bool = False) -> PlanRow:
    row = plans.read(conn, plan_id, for_update=for_update)
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
