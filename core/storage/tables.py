"""Database tables (SQLModel declarations; services read and write them with SQLAlchemy Core).

Rows never leave core.storage/core.services as table objects: services convert them to the plain
dataclasses in core.domain, so front ends cannot write state behind the services' back.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Index,
    LargeBinary,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlmodel import Field, SQLModel


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


def _utc(nullable: bool = False) -> Any:
    return Field(sa_column=Column(UTCDateTime(), nullable=nullable))


class AuditEvent(SQLModel, table=True):
    __tablename__ = "audit_event"
    __table_args__ = (
        Index("ix_audit_actor_seq", "actor", "seq"),
        Index("ix_audit_app_seq", "app", "seq"),
        Index("ix_audit_env_seq", "env", "seq"),
        Index("ix_audit_kind_seq", "kind", "seq"),
        Index("ix_audit_at", "at"),
    )

    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    at: datetime = _utc()
    actor: str
    os_user: str
    ssh_client: str | None = None
    kind: str
    app: str | None = None
    env: str | None = None
    plan: str | None = None
    payload: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    prev_hash: str
    hash: str


class AuditHead(SQLModel, table=True):
    """One row: the chain head. Writers lock it, so there is one audit writer at a time."""

    __tablename__ = "audit_head"

    id: int = Field(default=1, primary_key=True)
    seq: int = 0
    hash: str = ""


class Release(SQLModel, table=True):
    __tablename__ = "release"
    __table_args__ = (UniqueConstraint("app", "version", name="uq_release_app_version"),)

    id: int | None = Field(default=None, primary_key=True)
    app: str = Field(index=True)
    version: str
    commit: str
    digest: str
    manifest: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    notes: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    created_at: datetime = _utc()
    created_by: str
    audit_seq: int | None = None  # the audit event that created or last changed it (binding)


class Deployment(SQLModel, table=True):
    """A release that became live in an environment (or was rolled back to)."""

    __tablename__ = "deployment"
    __table_args__ = (Index("ix_deployment_app_env_id", "app", "env", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    app: str
    env: str
    release_id: int = Field(foreign_key="release.id")
    version: str
    commit: str
    digest: str
    color: str | None = None
    at: datetime = _utc()
    by: str
    plan_id: str | None = None
    kind: str = "deploy"  # deploy | rollback
    outcome: str = "succeeded"  # succeeded | failed | rolled_back
    # When the outcome stopped changing: a rolled-back row's restore time (DORA time to restore).
    ended_at: datetime | None = _utc(nullable=True)
    audit_seq: int | None = None  # the audit event that created or last changed it (binding)


class CommitDistance(SQLModel, table=True):
    """Cache of `git rev-list --count old..new`: immutable for a pair of shas."""

    __tablename__ = "commit_distance"

    repo: str = Field(primary_key=True)
    old: str = Field(primary_key=True)
    new: str = Field(primary_key=True)
    count: int


class Plan(SQLModel, table=True):
    __tablename__ = "plan"

    id: str = Field(primary_key=True)
    env: str = Field(index=True)
    name: str = ""
    state: str = "draft"
    digest: str
    body: bytes = Field(sa_column=Column(LargeBinary, nullable=False))  # canonical plan JSON
    failure_policy: str = "rollback"
    created_at: datetime = _utc()
    created_by: str
    updated_at: datetime = _utc()
    kind: str = "plan"  # plan | deploy | rollback
    started_at: datetime | None = _utc(nullable=True)
    finished_at: datetime | None = _utc(nullable=True)
    run_epoch: int | None = None
    abort_requested_by: str | None = None
    result: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    audit_seq: int | None = None  # the audit event that created or last changed it (binding)


class Approval(SQLModel, table=True):
    __tablename__ = "approval"

    id: int | None = Field(default=None, primary_key=True)
    plan_id: str = Field(foreign_key="plan.id", index=True)
    by: str
    at: datetime = _utc()
    digest: str
    decision: str = "approve"  # approve | reject
    comment: str = ""
    audit_seq: int | None = None  # the audit event that created or last changed it (binding)


class ChecklistTick(SQLModel, table=True):
    __tablename__ = "checklist_tick"

    plan_id: str = Field(foreign_key="plan.id", primary_key=True)
    item: str = Field(primary_key=True)
    by: str
    at: datetime = _utc()
    output: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    ok: bool = True
    audit_seq: int | None = None  # the audit event that created or last changed it (binding)


class Lease(SQLModel, table=True):
    """The environment lock: one running plan per environment, fenced by an ever-rising epoch."""

    __tablename__ = "lease"

    env: str = Field(primary_key=True)
    epoch: int = 0
    holder: str | None = None
    plan_id: str | None = None
    since: datetime | None = _utc(nullable=True)
    expires_at: datetime | None = _utc(nullable=True)
    # host|boot id|pid|start time of the process running the plan: a dead runner on this host
    # frees the lease at once instead of after its expiry.
    runner: str | None = None
    # SHA-256 of the one-time token the command that took the lease handed to its detached
    # runner out of band; the runner redeems it (and clears it) before it may act.
    runner_token: str | None = None


class RunStep(SQLModel, table=True):
    """The run journal: each step is written before (started) and after (done/failed) it runs."""

    __tablename__ = "run_step"
    __table_args__ = (Index("ix_run_step_plan", "plan_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    plan_id: str = Field(foreign_key="plan.id")
    epoch: int
    wave: int
    app: str
    step: str
    state: str  # started | done | failed
    detail: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    at: datetime = _utc()


class Override(SQLModel, table=True):
    __tablename__ = "override"

    id: int | None = Field(default=None, primary_key=True)
    plan_id: str = Field(foreign_key="plan.id", index=True)
    by: str
    reason: str
    at: datetime = _utc()
    until: datetime = _utc()
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = _utc(nullable=True)
    audit_seq: int | None = None  # the audit event that created or last changed it (binding)


metadata = SQLModel.metadata

# The Core tables the services query, typed once here (SQLModel does not declare __table__).
AUDIT_EVENTS: Table = AuditEvent.__table__  # type: ignore[attr-defined]
AUDIT_HEAD: Table = AuditHead.__table__  # type: ignore[attr-defined]
RELEASES: Table = Release.__table__  # type: ignore[attr-defined]
DEPLOYMENTS: Table = Deployment.__table__  # type: ignore[attr-defined]
DISTANCES: Table = CommitDistance.__table__  # type: ignore[attr-defined]
PLANS: Table = Plan.__table__  # type: ignore[attr-defined]
APPROVALS: Table = Approval.__table__  # type: ignore[attr-defined]
TICKS: Table = ChecklistTick.__table__  # type: ignore[attr-defined]
LEASES: Table = Lease.__table__  # type: ignore[attr-defined]
STEPS: Table = RunStep.__table__  # type: ignore[attr-defined]
OVERRIDES: Table = Override.__table__  # type: ignore[attr-defined]
