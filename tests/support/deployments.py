"""Deployments recorded without running a plan, for tests that need history (status, TUI
scenarios, snapshots): the deployment row and its audit event in one transaction, as a finished
run writes them."""

from __future__ import annotations

from sqlalchemy import insert

from shipdeck.core.services.context import Context
from shipdeck.core.services.releases import find_release
from shipdeck.core.storage.tables import DEPLOYMENTS

_DEP = DEPLOYMENTS


def record_deployment(
    ctx: Context,
    app: str,
    env: str,
    version: str,
    color: str = "blue",
    outcome: str = "succeeded",
) -> int:
    """`version` of `app` went live in `env` (or failed to); returns the deployment id."""
    with ctx.db.write() as conn:
        rel = find_release(conn, app, version)
        assert rel is not None, (app, version)
        key = conn.execute(
            insert(_DEP).values(
                app=app,
                env=env,
                release_id=rel.id,
                version=version,
                commit=rel.commit,
                digest=rel.digest,
                color=color,
                at=ctx.now(),
                by=ctx.actor.name,
                outcome=outcome,
            )
        ).inserted_primary_key
        assert key is not None
        ctx.audit(
            conn,
            "deployment.recorded",
            {"version": version, "color": color, "outcome": outcome},
            app=app,
            env=env,
            binds=[(_DEP, {"id": key[0]})],
        )
    return int(key[0])
