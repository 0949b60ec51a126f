"""Database tables, declared as SQLAlchemy Core tables: services read and write them with Core.

Plain `Table`s, not SQLModel classes: building the classes (pydantic models per table) and importing
sqlmodel cost every command about 150 ms before it did any work (bench/status_json.py).

Rows never leave core.storage/core.services as table objects: services convert them to the plain
dataclasses in core.domain, so front ends cannot write state behind the services' back.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect


class UTCDateTime(TypeDecorator[datetime]):
    """Stores naive UTC on every backend and returns aware UTC, so comparisons never mix kinds."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        return value.replace(tzinfo=UTC)


def _utc(name: str, nullable: bool = False) -> Column[datetime]:
    return Column(name, UTCDateTime(), nullable=nullable)


def _text(name: str) -> Column[str]:
    """Free text, empty by default."""
    return Column(name, Text, nullable=False, default="")


def _str(name: str, *, default: str | None = None, **kw: Any) -> Column[str]:
    return Column(name, String, nullable=False, default=default, **kw)


def _opt(name: str, kind: Any = String) -> Column[Any]:
    return Column(name, kind, nullable=True)


def _int(name: str, default: int | None = None) -> Column[int]:
    return Column(name, Integer, nullable=False, default=default)


def _id() -> Column[int]:
    return Column("id", Integer, primary_key=True)


def _bound() -> Column[int]:
    """The audit event that created or last changed the row (binding)."""
    return _opt("audit_seq", Integer)


def _plan_ref(**kw: Any) -> Column[str]:
    return Column("plan_id", String, ForeignKey("plan.id"), nullable=False, **kw)


metadata = MetaData()

AUDIT_EVENTS = Table(
    "audit_event",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    _utc("at"),
    _str("actor"),
    _str("os_user"),
    _opt("ssh_client"),
    _str("kind"),
    _opt("app"),
    _opt("env"),
    _opt("plan"),
    Column("payload", LargeBinary, nullable=False),
    _str("prev_hash"),
    _str("hash"),
    Index("ix_audit_actor_seq", "actor", "seq"),
    Index("ix_audit_app_seq", "app", "seq"),
    Index("ix_audit_env_seq", "env", "seq"),
    Index("ix_audit_kind_seq", "kind", "seq"),
    Index("ix_audit_at", "at"),
)

# One row: the chain head. Writers lock it, so there is one audit writer at a time.
AUDIT_HEAD = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, default=1),
    _int("seq", default=0),
    _str("hash", default=""),
)

RELEASES = Table(
    "release",
    metadata,
    _id(),
    _str("app", index=True),
    _str("version"),
    _str("commit"),
    _str("digest"),
    Column("manifest", LargeBinary, nullable=False),
    _text("notes"),
    _utc("created_at"),
    _str("created_by"),
    _bound(),
    UniqueConstraint("app", "version", name="uq_release_app_version"),
)

# A release that became live in an environment (or was rolled back to).
DEPLOYMENTS = Table(
    "deployment",
    metadata,
    _id(),
    _str("app"),
    _str("env"),
    Column("release_id", Integer, ForeignKey("release.id"), nullable=False),
    _str("version"),
    _str("commit"),
    _str("digest"),
    _opt("color"),
    _utc("at"),
    _str("by"),
    _opt("plan_id"),
    _str("kind", default="deploy"),  # deploy | rollback
    _str("outcome", default="succeeded"),  # succeeded | failed | rolled_back
    # When the outcome stopped changing: a rolled-back row's restore time (DORA time to restore).
    _utc("ended_at", nullable=True),
    _bound(),
    Index("ix_deployment_app_env_id", "app", "env", "id"),
)

# Cache of `git rev-list --count old..new`: immutable for a pair of shas.
DISTANCES = Table(
    "commit_distance",
    metadata,
    Column("repo", String, primary_key=True),
    Column("old", String, primary_key=True),
    Column("new", String, primary_key=True),
    _int("count"),
)

PLANS = Table(
    "plan",
    metadata,
    Column("id", String, primary_key=True),
    _str("env", index=True),
    _str("name", default=""),
    _str("state", default="draft"),
    _str("digest"),
    Column("body", LargeBinary, nullable=False),  # canonical plan JSON
    _str("failure_policy", default="rollback"),
    _utc("created_at"),
    _str("created_by"),
    _utc("updated_at"),
    _str("kind", default="plan"),  # plan | deploy | rollback
    _utc("started_at", nullable=True),
    _utc("finished_at", nullable=True),
    _opt("run_epoch", Integer),
    _opt("abort_requested_by"),
    _text("result"),
    _bound(),
)

APPROVALS = Table(
    "approval",
    metadata,
    _id(),
    _plan_ref(index=True),
    _str("by"),
    _utc("at"),
    _str("digest"),
    _str("decision", default="approve"),  # approve | reject
    _str("comment", default=""),
    _bound(),
)

TICKS = Table(
    "checklist_tick",
    metadata,
    _plan_ref(primary_key=True),
    Column("item", String, primary_key=True),
    _str("by"),
    _utc("at"),
    _text("output"),
    Column("ok", Boolean, nullable=False, default=True),
    _bound(),
)

# The environment lock: one running plan per environment, fenced by an ever-rising epoch.
LEASES = Table(
    "lease",
    metadata,
    Column("env", String, primary_key=True),
    _int("epoch", default=0),
    _opt("holder"),
    _opt("plan_id"),
    _utc("since", nullable=True),
    _utc("expires_at", nullable=True),
    # host|boot id|pid|start time of the process running the plan: a dead runner on this host
    # frees the lease at once instead of after its expiry.
    _opt("runner"),
    # SHA-256 of the one-time token the command that took the lease handed to its detached
    # runner out of band; the runner redeems it (and clears it) before it may act.
    _opt("runner_token"),
)

# The run journal: each step is written before (started) and after (done/failed) it runs.
STEPS = Table(
    "run_step",
    metadata,
    _id(),
    _plan_ref(),
    _int("epoch"),
    _int("wave"),
    _str("app"),
    _str("step"),
    _str("state"),  # started | done | failed
    _text("detail"),
    _utc("at"),
    Index("ix_run_step_plan", "plan_id", "id"),
)

OVERRIDES = Table(
    "override",
    metadata,
    _id(),
    _plan_ref(index=True),
    _str("by"),
    _str("reason"),
    _utc("at"),
    _utc("until"),
    _opt("acknowledged_by"),
    _utc("acknowledged_at", nullable=True),
    _bound(),
)

# A plan queued to start at the next opening of its window (`plan run --when-open`): one row per
# plan, kept after it ends so the plan can say what became of it.
QUEUED_RUNS = Table(
    "queued_run",
    metadata,
    _plan_ref(primary_key=True),
    _str("env", index=True),
    _str("by"),
    _utc("at"),
    _str("state", default="waiting"),  # waiting | started | refused | cancelled
    _utc("starts_at", nullable=True),  # the opening foreseen when it was queued
    _utc("ended_at", nullable=True),
    _text("note"),  # why it was refused or cancelled
    # host|boot id|pid|start time of the waiting process (core.waiter), as the lease keeps its
    # runner's: a waiter that died is shown as gone instead of seeming to wait forever.
    _opt("waiter"),
    _bound(),
)
