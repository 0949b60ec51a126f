"""The deployment records, read: what is live, how the last runs ended, what a rollback may undo.

Rows are written by the runs that ship (and by reconcile); this store gives the reads the status
view, the metrics, the plan history and the rollback choice rest on, each in one query however many
apps and environments there are.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, func, select

from shipdeck.core.storage import binding
from shipdeck.core.storage.binding import Problem
from shipdeck.core.storage.tables import DEPLOYMENTS, RELEASES


@dataclass(frozen=True)
class DeploymentRow:
    id: int
    app: str
    env: str
    release_id: int
    version: str
    commit: str
    digest: str
    color: str | None
    at: datetime
    by: str
    plan_id: str | None
    kind: str  # deploy | rollback
    outcome: str  # succeeded | failed | rolled_back
    ended_at: datetime | None
    audit_seq: int | None


@dataclass(frozen=True)
class LiveDeployment(DeploymentRow):
    """A live deployment with its release's manifest (what the environment runs, in full)."""

    manifest: bytes


_Row = TypeVar("_Row", bound=DeploymentRow)


def as_row(kind: type[_Row], found: Any) -> _Row:
    """A query row as `kind`, column by field name (for the stores that join more columns)."""
    mapping = found._mapping
    return kind(**{name: mapping[name] for name in _names(kind)})


_NAMES: dict[type, tuple[str, ...]] = {}


def _names(kind: type) -> tuple[str, ...]:
    """`kind`'s field names, read once: dataclasses.fields per row was a tenth of reading the
    live deployments of a thousand apps."""
    found = _NAMES.get(kind)
    if found is None:
        found = _NAMES[kind] = tuple(f.name for f in fields(kind))
    return found


def live(
    conn: Connection, apps: Sequence[str] | None = None
) -> dict[tuple[str, str], LiveDeployment]:
    """The deployment live now per (app, env): the newest succeeded one."""
    newest = (
        select(func.max(DEPLOYMENTS.c.id))
        .where(DEPLOYMENTS.c.outcome == "succeeded")
        .group_by(DEPLOYMENTS.c.app, DEPLOYMENTS.c.env)
        .scalar_subquery()
    )
    # The columns in LiveDeployment's field order, so each row builds one positionally: by name
    # (as_row), a thousand apps' 3,000 rows took a third longer to read.
    columns: list[Any] = [*(DEPLOYMENTS.c[n] for n in _names(DeploymentRow)), RELEASES.c.manifest]
    query = (
        select(*columns)
        .join(RELEASES, RELEASES.c.id == DEPLOYMENTS.c.release_id)
        .where(DEPLOYMENTS.c.id.in_(newest))
    )
    if apps is not None:
        query = query.where(DEPLOYMENTS.c.app.in_(apps))
    return {(d.app, d.env): d for d in (LiveDeployment(*r) for r in conn.execute(query).all())}


def last_outcomes(conn: Connection) -> dict[tuple[str, str], str]:
    """The outcome of the newest deployment per (app, env), whatever it was."""
    newest = (
        select(func.max(DEPLOYMENTS.c.id))
        .group_by(DEPLOYMENTS.c.app, DEPLOYMENTS.c.env)
        .scalar_subquery()
    )
    query = select(DEPLOYMENTS.c.app, DEPLOYMENTS.c.env, DEPLOYMENTS.c.outcome).where(
        DEPLOYMENTS.c.id.in_(newest)
    )
    # Unpacked, not read by name: a third of the time for a thousand apps' 3,000 rows.
    return {(app, env): outcome for app, env, outcome in conn.execute(query).all()}


def version_of(conn: Connection, deployment_id: int) -> str | None:
    query = select(DEPLOYMENTS.c.version).where(DEPLOYMENTS.c.id == deployment_id)
    found = conn.execute(query).scalar()
    return None if found is None else str(found)


def in_order(conn: Connection, env: str | None = None) -> list[DeploymentRow]:
    """Every deployment (or those of `env`), oldest first: the history metrics are made of."""
    query = select(DEPLOYMENTS).order_by(DEPLOYMENTS.c.id)
    if env is not None:
        query = query.where(DEPLOYMENTS.c.env == env)
    return [as_row(DeploymentRow, r) for r in conn.execute(query)]


def proven_succeeded(
    conn: Connection, app: str, env: str
) -> tuple[list[DeploymentRow], list[Problem]]:
    """The app's succeeded deployments in `env`, newest first, that their events vouch for, and
    the problems of the others."""
    query = (
        select(DEPLOYMENTS)
        .where(
            DEPLOYMENTS.c.app == app, DEPLOYMENTS.c.env == env, DEPLOYMENTS.c.outcome == "succeeded"
        )
        .order_by(DEPLOYMENTS.c.id.desc())
    )
    good, problems = binding.trusted_rows(conn, DEPLOYMENTS, conn.execute(query).all())
    return [as_row(DeploymentRow, r) for r in good], problems


def shipped_to(
    conn: Connection, env: str, release_ids: Sequence[int]
) -> tuple[set[int], list[Problem]]:
    """Which of the releases a succeeded deployment (not a rollback) took to `env`, counting
    only deployments their events vouch for, and the problems of the others."""
    found = conn.execute(
        select(DEPLOYMENTS).where(
            DEPLOYMENTS.c.env == env,
            DEPLOYMENTS.c.outcome == "succeeded",
            DEPLOYMENTS.c.kind == "deploy",
            DEPLOYMENTS.c.release_id.in_(list(release_ids)),
        )
    )
    shipped, problems = binding.trusted_rows(conn, DEPLOYMENTS, found)
    return {r.release_id for r in shipped}, problems
