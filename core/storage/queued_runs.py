"""The store of queued runs (`plan run --when-open`): typed rows in, typed rows out.

Every change here returns the bind for the event that vouches for it (core.storage.binding), so
the service that calls it appends that event in the same transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from shipdeck.core.errors import ConflictError
from shipdeck.core.storage import binding
from shipdeck.core.storage.binding import Bind
from shipdeck.core.storage.tables import QUEUED_RUNS


@dataclass(frozen=True)
class QueuedRow:
    plan_id: str
    env: str
    by: str
    at: datetime
    state: str  # waiting | started | refused | cancelled
    starts_at: datetime | None
    ended_at: datetime | None
    note: str
    waiter: str | None


def _row(found: Any) -> QueuedRow:
    return QueuedRow(
        found.plan_id, found.env, found.by, found.at, found.state, found.starts_at,
        found.ended_at, found.note, found.waiter,
    )  # fmt: skip


def read(conn: Connection, plan_id: str, *, for_update: bool = False) -> QueuedRow | None:
    query = select(QUEUED_RUNS).where(QUEUED_RUNS.c.plan_id == plan_id)
    found = conn.execute(query.with_for_update() if for_update else query).first()
    return None if found is None else _row(found)


def waiting(conn: Connection, envs: Iterable[str] | None = None) -> list[QueuedRow]:
    query = select(QUEUED_RUNS).where(QUEUED_RUNS.c.state == "waiting")
    if envs is not None:
        query = query.where(QUEUED_RUNS.c.env.in_(list(envs)))
    return [_row(r) for r in conn.execute(query)]


def put(
    conn: Connection, plan_id: str, env: str, by: str, at: datetime, starts_at: datetime | None
) -> Bind:
    """Queue the plan (a new row, or the plan's ended entry made to wait again)."""
    values = {"env": env, "by": by, "at": at, "state": "waiting", "starts_at": starts_at,
              "ended_at": None, "note": "", "waiter": None}  # fmt: skip
    if read(conn, plan_id) is None:
        conn.execute(insert(QUEUED_RUNS).values(plan_id=plan_id, **values))
        return QUEUED_RUNS, {"plan_id": plan_id}
    return binding.change(conn, QUEUED_RUNS, {"plan_id": plan_id}, **values)


def end(conn: Connection, plan_id: str, state: str, now: datetime, note: str = "") -> Bind:
    """Move a waiting entry to `state`; ConflictError when it no longer waits, so a cancel and
    a start racing each other cannot both win."""
    found = read(conn, plan_id, for_update=True)
    if found is None or found.state != "waiting":
        was = "never queued" if found is None else f"no longer queued ({found.state})"
        raise ConflictError(f"plan {plan_id} is {was}")
    return binding.change(
        conn, QUEUED_RUNS, {"plan_id": plan_id}, state=state, ended_at=now, note=note
    )


def set_waiter(conn: Connection, plan_id: str, waiter: str) -> None:
    """Name the waiting process; not bound, as the lease's runner is not: it decides nothing."""
    conn.execute(
        update(QUEUED_RUNS)
        .where(QUEUED_RUNS.c.plan_id == plan_id, QUEUED_RUNS.c.state == "waiting")
        .values(waiter=waiter)
    )
