"""The store of approvals and rejections: typed rows, and only proven ones for decisions.

Policy counts an approval only when its audit event vouches for it (a row written straight into
the table is named as a blocker instead); a person is shown every row as stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select

from shipdeck.core.storage import binding
from shipdeck.core.storage.binding import Bind, Problem
from shipdeck.core.storage.tables import APPROVALS


@dataclass(frozen=True)
class ApprovalRow:
    id: int
    plan_id: str
    by: str
    at: datetime
    digest: str  # the plan digest it was given for
    decision: str  # approve | reject
    comment: str
    audit_seq: int | None  # the event that vouches for it (its policy snapshot says what held)


def _row(r: Any) -> ApprovalRow:
    return ApprovalRow(r.id, r.plan_id, r.by, r.at, r.digest, r.decision, r.comment, r.audit_seq)


def _of(plan_id: str) -> Any:
    return select(APPROVALS).where(APPROVALS.c.plan_id == plan_id).order_by(APPROVALS.c.id)


def of_plan(conn: Connection, plan_id: str) -> list[ApprovalRow]:
    return [_row(r) for r in conn.execute(_of(plan_id))]


def proven_of_plan(conn: Connection, plan_id: str) -> tuple[list[ApprovalRow], list[Problem]]:
    """The plan's approvals their events vouch for, and the problems of the others."""
    good, problems = binding.trusted_rows(conn, APPROVALS, conn.execute(_of(plan_id)))
    return [_row(r) for r in good], problems


def add(
    conn: Connection, plan_id: str, by: str, at: datetime, digest: str, decision: str, comment: str
) -> Bind:
    values = {"plan_id": plan_id, "by": by, "at": at, "digest": digest, "decision": decision,
              "comment": comment}  # fmt: skip
    key = conn.execute(insert(APPROVALS).values(**values)).inserted_primary_key
    assert key is not None
    return APPROVALS, {"id": int(key[0])}
