"""The store of the run journal: run_step rows, each written before (started) and after
(done/failed) its step runs.

Journal rows are not bound (core.storage.binding): they are the engine's own record, written in
transactions fenced by the lease's epoch, and the effects they carry are proven by the audit
events written beside them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from shipdeck.core.storage.db import driver_sql
from shipdeck.core.storage.tables import STEPS

# Every step of every run writes rows here, inside the group commit the wave's apps wait on:
# written for the driver (db.driver_sql), as the audit append is, because SQLAlchemy's compile,
# cache key and parameter processing of an insert cost several times SQLite's own work.
_COLUMNS = "plan_id, epoch, wave, app, step, state, detail, at"
_SQLITE_INSERT = f"INSERT INTO run_step ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
# PostgreSQL: one statement for the whole group, its ids in the rows' order. The ORDER BY makes
# the ids the sequence hands out rise in that order (as SQLAlchemy's insertmanyvalues does).
_PG_ROW = "(%s, %s, %s, %s, %s, %s, %s, %s, %s)"
_PG_INSERT = (
    f"INSERT INTO run_step ({_COLUMNS}) SELECT {_COLUMNS} FROM (VALUES {{rows}})"
    f" AS v({_COLUMNS}, n) ORDER BY n RETURNING id"
)


@dataclass(frozen=True)
class Step:
    plan_id: str
    epoch: int
    wave: int
    app: str  # an app, or "*" for a step of the whole plan
    step: str
    state: str  # started | done | failed
    detail: str
    at: datetime


@dataclass(frozen=True)
class Logged(Step):
    """A row as read back: its id is what a follower of the run pages by."""

    id: int = 0


def of_plan(conn: Connection, plan_id: str, after_id: int = 0) -> list[Logged]:
    """The plan's journal after step `after_id`, in the order it was written."""
    query = (
        select(STEPS).where(STEPS.c.plan_id == plan_id, STEPS.c.id > after_id).order_by(STEPS.c.id)
    )
    return [_logged(r) for r in conn.execute(query)]


def canary_steps(conn: Connection, plan_ids: Iterable[str]) -> list[Logged]:
    """The canary and switch steps of these plans' journals, in the order they were written:
    what a running canary's weight is read from (core.domain.canary.journal_weights)."""
    query = (
        select(STEPS)
        .where(STEPS.c.plan_id.in_(list(plan_ids)), STEPS.c.step.in_(("canary", "switch")))
        .order_by(STEPS.c.id)
    )
    return [_logged(r) for r in conn.execute(query)]


def _logged(r: Any) -> Logged:
    return Logged(r.plan_id, r.epoch, r.wave, r.app, r.step, r.state, r.detail, r.at, r.id)


def add_all(conn: Connection, steps: Sequence[Step]) -> list[int]:
    """Write rows in order; their ids (what a follower of the run pages by), in that order."""
    if not steps:
        return []
    at = STEPS.c.at.type.bind_processor(conn.dialect)  # stored as the column stores it
    assert at is not None
    rows = [(s.plan_id, s.epoch, s.wave, s.app, s.step, s.state, s.detail, at(s.at)) for s in steps]
    if conn.dialect.name == "sqlite":  # one prepared statement, no round trips to save
        run, _mark = driver_sql(conn)
        return [int(run(_SQLITE_INSERT, row).lastrowid) for row in rows]
    sql = _PG_INSERT.format(rows=", ".join([_PG_ROW] * len(rows)))
    params = [v for n, row in enumerate(rows) for v in (*row, n)]
    return sorted(int(i) for i in conn.exec_driver_sql(sql, tuple(params)).scalars())
