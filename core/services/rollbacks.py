"""What a rollback would do, and what it needs, before anyone confirms it.

`rollback` (core.services.runs) and both front ends read the same answer: which deployment it
undoes, which release comes back, whether a reason is required (protected environments, like
day-2 changes), whether the front end must ask for confirmation, and how many approvals the
environment's policy wants for rollbacks (`rollback_approvals`, default none).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shipdeck.core.errors import NotFoundError, UsageError
from shipdeck.core.services.context import Context
from shipdeck.core.services.history import approvals_note
from shipdeck.core.services.plans import env_config
from shipdeck.core.storage import deployments, releases
from shipdeck.core.storage.db import Tx
from shipdeck.core.storage.deployments import DeploymentRow
from shipdeck.core.storage.releases import ReleaseRow


@dataclass(frozen=True)
class RollbackChoice:
    current: DeploymentRow  # the live deployment the rollback undoes
    release: ReleaseRow  # the release that comes back


@dataclass(frozen=True)
class RollbackPreview:
    app: str
    env: str
    from_version: str
    to_version: str
    reason_required: bool
    confirm: bool  # front ends ask first (CLI: without a TTY and without --yes, exit 3)
    approvals_required: int
    approvals_note: str

    @property
    def question(self) -> str:
        return f"Roll back {self.app} in {self.env} from {self.from_version} to {self.to_version}?"

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def check_target(ctx: Context, app: str, env: str) -> None:
    env_config(ctx, env)
    if app not in ctx.config.apps:
        raise NotFoundError(f"unknown app '{app}'")
    if env not in ctx.config.apps[app].targets:
        raise UsageError(f"{app} has no target in {env}")


def choose(conn: Tx, app: str, env: str) -> RollbackChoice:
    """The live deployment and the release live before it (a different release), among the
    deployments their events vouch for: a row written into the table must not choose what an
    incident rollback brings back (`audit verify` names such rows)."""
    rows, _ = deployments.proven_succeeded(conn, app, env)
    if not rows:
        raise UsageError(f"nothing of {app} is deployed in {env}: nothing to roll back")
    current = rows[0]
    previous = next((r for r in rows[1:] if r.release_id != current.release_id), None)
    if previous is None:
        raise UsageError(
            f"{app} {current.version} is the only release {env} has run: nothing to roll back to"
        )
    return RollbackChoice(current, releases.get(conn, previous.release_id))


def check_reason(ctx: Context, env: str, reason: str) -> None:
    """Protected environments want a reason for a rollback, as for any change made by hand."""
    if env_config(ctx, env).protected and not reason.strip():
        raise UsageError(f"--reason: required for a rollback in protected environment '{env}'")


def preview_rollback(ctx: Context, app: str, env: str) -> RollbackPreview:
    """Read-only: what `rollback(ctx, app, env)` would switch, and what it needs first."""
    check_target(ctx, app, env)
    environment = env_config(ctx, env)
    with ctx.db.read() as conn:
        choice = choose(conn, app, env)
    return RollbackPreview(
        app,
        env,
        choice.current.version,
        choice.release.version,
        reason_required=environment.protected,
        confirm=environment.protected,
        approvals_required=environment.rollback_approvals,
        approvals_note=approvals_note(environment),
    )
