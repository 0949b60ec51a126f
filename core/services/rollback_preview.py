"""What a rollback would do, asked before it runs: which release goes and which comes back.

`rollback_pair` picks the pair the way `runs.rollback` does (the TUI confirms what will run). A
protected environment wants a reason for it: the TUI asks for one there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.engine import Row

from shipdeck.core.errors import NotFoundError, UsageError
from shipdeck.core.services.context import Context
from shipdeck.core.services.plans import env_config
from shipdeck.core.storage.tables import DEPLOYMENTS


@dataclass(frozen=True)
class RollbackPreview:
    app: str
    env: str
    from_version: str
    to_version: str
    reason_required: bool


def rollback_pair(conn: Connection, app: str, env: str) -> tuple[Row[Any], Row[Any]]:
    """The live deployment and the newest earlier succeeded one of a different release."""
    rows = conn.execute(
        select(DEPLOYMENTS)
        .where(
            DEPLOYMENTS.c.app == app,
            DEPLOYMENTS.c.env == env,
            DEPLOYMENTS.c.outcome == "succeeded",
        )
        .order_by(DEPLOYMENTS.c.id.desc())
    ).all()
    if not rows:
        raise UsageError(f"nothing of {app} is deployed in {env}: nothing to roll back")
    current = rows[0]
    previous = next((r for r in rows[1:] if r.release_id != current.release_id), None)
    if previous is None:
        raise UsageError(
            f"{app} {current.version} is the only release {env} has run: nothing to roll back to"
        )
    return current, previous


def check_target(ctx: Context, app: str, env: str) -> None:
    env_config(ctx, env)
    if app not in ctx.config.apps:
        raise NotFoundError(f"unknown app '{app}'")
    if env not in ctx.config.apps[app].targets:
        raise UsageError(f"{app} has no target in {env}")


def preview_rollback(ctx: Context, app: str, env: str) -> RollbackPreview:
    check_target(ctx, app, env)
    with ctx.db.read() as conn:
        current, previous = rollback_pair(conn, app, env)
    return RollbackPreview(
        app, env, current.version, previous.version, env_config(ctx, env).protected
    )
