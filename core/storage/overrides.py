"""The store of break-glass overrides: typed rows in and out, and only proven ones for decisions.

A decision (may the plan run, may a held wave go on) counts an override only when its audit
event vouches for it: a row written straight into the table must not open a freeze. Changes go
through core.storage.binding, so an edited row is refused rather than rebound by the next event.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select

from shipdeck.core.storage import binding
from shipdeck.core.storage.binding import Bind, Problem
from shipdeck.core.storage.tables import OVERRIDES, PLANS


@dataclass(frozen=True)
class OverrideRow:
    id: int
    plan_id: str
    env: str
    by: str
    reason: str
    at: datetime
    until: datetime
    acknowledged_by: str | None
    acknowledged_at: datetime | None


def _query() -> Any:
    return select(OVERRIDES, PLANS.c.env).join(PLANS, PLANS.c.id == OVERRIDES.c.plan_id)


def _row(r: Any) -> OverrideRow:
    return OverrideRow(
        r.id, r.plan_id, r.env, r.by, r.reason, r.at, r.until, r.acknowledged_by,
        r.acknowledged_at,
    )  # fmt: skip


def of_plan(conn: Connection, plan_id: str) -> list[OverrideRow]:
    """Every override of the plan as stored, oldest first (what a person is shown)."""
    query = _query().where(OVERRIDES.c.plan_id == plan_id).order_by(OVERRIDES.c.id)
    return [_row(r) for r in conn.execute(query)]


def proven_of_plan(conn: Connection, plan_id: str) -> tuple[list[OverrideRow], list[Problem]]:
    """The plan's overrides their events vouch for, and the problems of the others."""
    query = _query().where(OVERRIDES.c.plan_id == plan_id).order_by(OVERRIDES.c.id)
    good, problems = binding.trusted_rows(conn, OVERRIDES, conn.execute(query))
    return [_row(r) for r in good], problems


def get(conn: Connection, override_id: int) -> OverrideRow | None:
    found = conn.execute(_query().where(OVERRIDES.c.id == override_id)).first()
    return None if found is None else _row(found)


def unacknowledged(conn: Connection) -> list[OverrideRow]:
    query = _query().where(OVERRIDES.c.acknowledged_by.is_(None)).order_by(OVERRIDES.c.id)
    return [_row(r) for r in conn.execute(query)]


def add(
    conn: Connection, plan_id: str, by: str, reason: str, at: datetime, until: datetime
) -> tuple[int, Bind]:
    values = {"plan_id": plan_id, "by": by, "reason": reason, "at": at, "until": until}
    key = conn.execute(insert(OVERRIDES).values(**values)).inserted_primary_key
    assert key is not None
    new_id = int(key[0])
    return new_id, (OVERRIDES, {"id": new_id})


def acknowledge(conn: Connection, override_id: int, by: str, at: datetime) -> Bind:
    """Close the review; the row must still be what its event recorded (IntegrityError)."""
    return binding.change(
        conn, OVERRIDES, {"id": override_id}, acknowledged_by=by, acknowledged_at=at
    )
