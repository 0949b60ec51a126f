"""Reads the status view and the TUI's screens need from tables whose own stores are elsewhere:
held leases, plan bodies, a run journal's canary steps, and counts over the audit log.

Each is one batched query for the whole view (status runs them all in one transaction), so a
dashboard of hundreds of apps costs the same handful of round trips (bench/status_json.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Connection, Select, func, select

from shipdeck.core.storage.tables import AUDIT_EVENTS, LEASES, PLANS, STEPS


@dataclass(frozen=True)
class HeldLease:
    """An environment lease someone holds (it may have expired: the reader decides)."""

    env: str
    holder: str
    plan_id: str | None
    since: datetime | None
    expires_at: datetime | None


@dataclass(frozen=True)
class CanaryStep:
    """A canary or switch step of a run's journal: what a running canary's weight is read from."""

    plan_id: str
    app: str
    step: str
    state: str
    detail: str


class EventFilter(Protocol):
    """Narrows a query over the audit events (core.services.audit_log.AuditFilter)."""

    def apply(self, query: Select[Any]) -> Select[Any]: ...


def held_leases(conn: Connection) -> list[HeldLease]:
    query = select(LEASES).where(LEASES.c.holder.is_not(None))
    return [
        HeldLease(r.env, r.holder, r.plan_id, r.since, r.expires_at) for r in conn.execute(query)
    ]


def plan_bodies(conn: Connection, plan_ids: Iterable[str]) -> dict[str, bytes]:
    """Plan id -> its canonical body, for the plans asked (ids no plan has are left out)."""
    query = select(PLANS.c.id, PLANS.c.body).where(PLANS.c.id.in_(list(plan_ids)))
    return {p.id: p.body for p in conn.execute(query)}


def canary_steps(conn: Connection, plan_ids: Iterable[str]) -> list[CanaryStep]:
    """The canary and switch steps of these plans' journals, in the order they were written."""
    query = (
        select(STEPS.c.plan_id, STEPS.c.app, STEPS.c.step, STEPS.c.state, STEPS.c.detail)
        .where(STEPS.c.plan_id.in_(list(plan_ids)), STEPS.c.step.in_(("canary", "switch")))
        .order_by(STEPS.c.id)
    )
    return [CanaryStep(*r) for r in conn.execute(query)]


def count_events_up_to(conn: Connection, flt: EventFilter, top_seq: int) -> int:
    """Events matching `flt` up to `top_seq`."""
    query = flt.apply(select(func.count()).select_from(AUDIT_EVENTS))
    return int(conn.execute(query.where(AUDIT_EVENTS.c.seq <= top_seq)).scalar_one())


def event_seq_at_offset(
    conn: Connection, flt: EventFilter, offset: int, top_seq: int
) -> int | None:
    """The sequence number of the `offset`-th newest event matching `flt` up to `top_seq`."""
    query = (
        flt.apply(select(AUDIT_EVENTS.c.seq))
        .where(AUDIT_EVENTS.c.seq <= top_seq)
        .order_by(AUDIT_EVENTS.c.seq.desc())
        .offset(offset)
        .limit(1)
    )
    seq = conn.execute(query).scalar()
    return None if seq is None else int(seq)
