"""The store of plans and their checklist ticks: typed rows in, typed rows out.

Both tables are bound (core.storage.binding): every change here returns the bind for the event
that vouches for it, so the service that calls it appends that event in the same transaction, and
decisions read ticks (and the plan row itself) only as far as their events vouch for them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select

from shipdeck.core.storage import binding
from shipdeck.core.storage.binding import Bind, Problem
from shipdeck.core.storage.db import Tx
from shipdeck.core.storage.tables import PLANS, TICKS


@dataclass(frozen=True)
class PlanRow:
    id: str
    env: str
    name: str
    state: str
    digest: str
    body: bytes  # canonical plan JSON (core.domain.plan.PlanBody.decode)
    failure_policy: str
    created_at: datetime
    created_by: str
    updated_at: datetime
    kind: str  # plan | deploy | rollback
    started_at: datetime | None
    finished_at: datetime | None
    run_epoch: int | None
    abort_requested_by: str | None
    result: str
    audit_seq: int | None  # the event that created or last changed it


def _plan(r: Any) -> PlanRow:
    return PlanRow(
        r.id, r.env, r.name, r.state, r.digest, r.body, r.failure_policy, r.created_at,
        r.created_by, r.updated_at, r.kind, r.started_at, r.finished_at, r.run_epoch,
        r.abort_requested_by, r.result, r.audit_seq,
    )  # fmt: skip


def read(conn: Tx, plan_id: str, *, for_update: bool = False) -> PlanRow | None:
    query = select(PLANS).where(PLANS.c.id == plan_id)
    found = conn.execute(query.with_for_update() if for_update else query).first()
    return None if found is None else _plan(found)


def newest(conn: Tx, *, env: str | None, state: str | None, limit: int) -> list[PlanRow]:
    """Plans newest first (ties by id), of `env` and in the stored `state` when given."""
    query = select(PLANS).order_by(PLANS.c.created_at.desc(), PLANS.c.id).limit(limit)
    if env is not None:
        query = query.where(PLANS.c.env == env)
    if state is not None:
        query = query.where(PLANS.c.state == state)
    return [_plan(r) for r in conn.execute(query)]


def in_states(conn: Tx, env: str, states: Iterable[str]) -> list[PlanRow]:
    """The plans of `env` in any of `states`, oldest first."""
    query = (
        select(PLANS)
        .where(PLANS.c.env == env, PLANS.c.state.in_(sorted(states)))
        .order_by(PLANS.c.created_at)
    )
    return [_plan(r) for r in conn.execute(query)]


def bodies(conn: Tx, plan_ids: Iterable[str]) -> dict[str, bytes]:
    """Plan id -> its canonical body, for the plans asked (ids no plan has are left out; none
    asked: no query, as status asks with no plan holding a lease or queued)."""
    wanted = list(plan_ids)
    if not wanted:
        return {}
    query = select(PLANS.c.id, PLANS.c.body).where(PLANS.c.id.in_(wanted))
    return {r.id: r.body for r in conn.execute(query)}


def rollbacks_among(conn: Tx, plan_ids: Iterable[str]) -> list[PlanRow]:
    """The rollback plans among these."""
    query = select(PLANS).where(PLANS.c.id.in_(list(plan_ids)), PLANS.c.kind == "rollback")
    return [_plan(r) for r in conn.execute(query)]


def add(conn: Tx, plan_id: str, **values: Any) -> Bind:
    conn.execute(insert(PLANS).values(id=plan_id, **values))
    return PLANS, {"id": plan_id}


def change(conn: Tx, plan_id: str, **values: Any) -> Bind:
    """Update the plan; it must still be what its last event recorded (IntegrityError)."""
    return binding.change(conn, PLANS, {"id": plan_id}, **values)


def problems(conn: Tx, row: PlanRow) -> list[Problem]:
    """Why the plan row as read does not verify against its event (none: it does)."""
    return binding.trusted_rows(conn, PLANS, [row])[1]


@dataclass(frozen=True)
class TickRow:
    plan_id: str
    item: str
    by: str
    at: datetime
    output: str
    ok: bool


def _tick(r: Any) -> TickRow:
    return TickRow(r.plan_id, r.item, r.by, r.at, r.output, bool(r.ok))


def _ticks(conn: Tx, plan_id: str) -> Any:
    return conn.execute(select(TICKS).where(TICKS.c.plan_id == plan_id))


def ticks_of(conn: Tx, plan_id: str) -> dict[str, TickRow]:
    """Every tick of the plan as stored, by item (what a person is shown)."""
    return {t.item: t for t in map(_tick, _ticks(conn, plan_id))}


def proven_ticks_of(conn: Tx, plan_id: str) -> tuple[list[TickRow], list[Problem]]:
    """The plan's ticks their events vouch for, and the problems of the others."""
    good, bad = binding.trusted_rows(conn, TICKS, _ticks(conn, plan_id))
    return [_tick(r) for r in good], bad


def put_tick(
    conn: Tx, plan_id: str, item: str, by: str, at: datetime, output: str, ok: bool
) -> Bind:
    """Tick `item` afresh: the tick before it, if any, is replaced."""
    conn.execute(delete(TICKS).where(TICKS.c.plan_id == plan_id, TICKS.c.item == item))
    conn.execute(
        insert(TICKS).values(plan_id=plan_id, item=item, by=by, at=at, output=output, ok=ok)
    )
    return TICKS, {"plan_id": plan_id, "item": item}
