"""The store of environment leases: one row per environment, fenced by an ever-rising epoch.

A lease is not a bound row (core.storage.binding): its changes are fenced by the epoch instead,
and the audit events of the run or task that takes, renews or frees it say what happened. Every
write here is scoped to the epoch it was given, so a runner that lost its lease changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

from shipdeck.core.storage.db import driver_sql
from shipdeck.core.storage.dialect import insert_or_skip
from shipdeck.core.storage.tables import LEASES

# The fence opens every journal transaction of a run: driver SQL (db.driver_sql), as the audit
# append is, so it costs the database's work, not SQLAlchemy's compile of a select.
_FENCE = "SELECT epoch, plan_id FROM lease WHERE env = {mark}"
_FENCE_LOCK = {False: " FOR SHARE", True: " FOR UPDATE"}  # PostgreSQL's; SQLite's BEGIN locks


@dataclass(frozen=True)
class LeaseRow:
    env: str
    epoch: int
    holder: str | None  # None: free
    plan_id: str | None  # None: free, or held by a day-2 task
    since: datetime | None
    expires_at: datetime | None
    runner: str | None  # host|boot id|pid|start time of the process acting under it


def _row(r: Any) -> LeaseRow:
    return LeaseRow(r.env, r.epoch, r.holder, r.plan_id, r.since, r.expires_at, r.runner)


def read(conn: Connection, env: str) -> LeaseRow | None:
    found = conn.execute(select(LEASES).where(LEASES.c.env == env)).first()
    return None if found is None else _row(found)


def of_plan(conn: Connection, plan_id: str) -> LeaseRow | None:
    """The lease the plan holds, if it holds one."""
    found = conn.execute(select(LEASES).where(LEASES.c.plan_id == plan_id)).first()
    return None if found is None else _row(found)


def held(conn: Connection) -> list[LeaseRow]:
    """Leases someone holds (some may have expired: the reader decides)."""
    return [_row(r) for r in conn.execute(select(LEASES).where(LEASES.c.holder.is_not(None)))]


def with_runner(conn: Connection) -> list[LeaseRow]:
    """Leases a detached runner has named itself on (it may have died since)."""
    return [_row(r) for r in conn.execute(select(LEASES).where(LEASES.c.runner.is_not(None)))]


def lock(conn: Connection, env: str) -> LeaseRow:
    """The env's lease row, created if missing, locked until the transaction ends."""
    conn.execute(insert_or_skip(conn, LEASES, index_elements=["env"]).values(env=env, epoch=0))
    return _row(conn.execute(select(LEASES).where(LEASES.c.env == env).with_for_update()).one())


@dataclass(frozen=True)
class Holding:
    """Who holds a lease, as far as a fence needs to know: the epoch and the plan."""

    epoch: int
    plan_id: str | None


def fence(conn: Connection, env: str, *, exclusive: bool) -> Holding | None:
    """The env's lease holding, locked until the transaction ends: shared (parallel journal
    writers do not queue behind each other) unless `exclusive` (a takeover, a run's last row)."""
    run, mark = driver_sql(conn)
    lock = "" if conn.dialect.name == "sqlite" else _FENCE_LOCK[exclusive]
    found = run(_FENCE.format(mark=mark) + lock, (env,)).fetchone()
    return None if found is None else Holding(int(found[0]), found[1])


def take(
    conn: Connection,
    env: str,
    *,
    epoch: int,
    holder: str,
    plan_id: str | None,
    since: datetime,
    expires_at: datetime,
    runner: str,
) -> None:
    """Hold the (locked) lease at a new `epoch`, for a plan or (plan_id None) a day-2 task."""
    conn.execute(
        update(LEASES)
        .where(LEASES.c.env == env)
        .values(
            epoch=epoch, holder=holder, plan_id=plan_id, since=since, expires_at=expires_at,
            runner=runner,
        )
    )  # fmt: skip


def free(conn: Connection, env: str, epoch: int) -> None:
    """Let go of the lease, if it is still held at `epoch` (a takeover's epoch is left alone)."""
    conn.execute(
        update(LEASES)
        .where(LEASES.c.env == env, LEASES.c.epoch == epoch)
        .values(holder=None, plan_id=None, expires_at=None, runner=None)
    )


def renew(conn: Connection, env: str, epoch: int, plan_id: str, expires_at: datetime) -> bool:
    """Move the expiry of the plan's lease at `epoch`; False when it no longer holds it."""
    done = conn.execute(
        update(LEASES)
        .where(LEASES.c.env == env, LEASES.c.epoch == epoch, LEASES.c.plan_id == plan_id)
        .values(expires_at=expires_at)
    )
    return bool(done.rowcount)


def set_runner(conn: Connection, plan_id: str, epoch: int, runner: str) -> None:
    """Name the process that acts under the plan's lease at `epoch`."""
    conn.execute(
        update(LEASES)
        .where(LEASES.c.epoch == epoch, LEASES.c.plan_id == plan_id)
        .values(runner=runner)
    )
