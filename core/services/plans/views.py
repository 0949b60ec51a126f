"""What the plan services return: plain dataclasses (PlanView, PlanSummary, ChecklistView,
OverrideView, StepView, ...), never table rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from shipdeck.core.domain.canary import journal_weights
from shipdeck.core.domain.windows import WindowState
from shipdeck.core.errors import Blocker
from shipdeck.core.services.history import ItemChange, RollbackInfo, Supersession
from shipdeck.core.services.plans.queued import QueuedView
from shipdeck.core.storage.overrides import OverrideRow

# --- views -----------------------------------------------------------------------------------


def _plain(view: Any, **rename: str) -> dict[str, Any]:
    """A view's fields in order as JSON values (datetimes as ISO text, tuples as lists), so the
    document keys follow the dataclass and cannot drift from it."""
    out: dict[str, Any] = {}
    for f in fields(view):
        value = getattr(view, f.name)
        if isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, tuple):
            value = [v.as_dict() if hasattr(v, "as_dict") else v for v in value]
        elif hasattr(value, "as_dict"):
            value = value.as_dict()
        out[rename.get(f.name, f.name)] = value
    return out


@dataclass(frozen=True)
class ItemView:
    app: str
    version: str
    commit: str
    digest: str
    release_author: str
    wave: int

    def as_dict(self) -> dict[str, Any]:
        return {"app": self.app, "version": self.version, "commit": self.commit,
                "digest": self.digest, "wave": self.wave, "release_author": self.release_author}  # fmt: skip


@dataclass(frozen=True)
class ApprovalView:
    by: str
    at: datetime
    digest: str
    decision: str  # approve | reject
    comment: str
    current: bool  # bound to the plan's current digest


@dataclass(frozen=True)
class ChecklistView:
    item: str
    text: str
    command: tuple[str, ...] | None
    done: bool
    by: str | None
    at: datetime | None
    ok: bool | None
    output: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "item": self.item, "text": self.text, "done": self.done, "by": self.by,
            "at": self.at.isoformat() if self.at else None, "ok": self.ok,
            "command": list(self.command) if self.command else None, "output": self.output,
        }  # fmt: skip


@dataclass(frozen=True)
class OverrideView:
    id: int
    plan_id: str
    env: str
    by: str
    reason: str
    at: datetime
    until: datetime
    active: bool
    acknowledged_by: str | None
    acknowledged_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return _plain(self, plan_id="plan")


@dataclass(frozen=True)
class StepView:
    id: int
    epoch: int
    wave: int
    app: str
    step: str
    state: str  # started | done | failed
    detail: str
    at: datetime

    def as_dict(self) -> dict[str, Any]:
        return _plain(self)


@dataclass(frozen=True)
class LockView:
    holder: str
    plan_id: str | None
    since: datetime | None
    expires_at: datetime | None
    epoch: int


@dataclass(frozen=True)
class PlanSummary:
    id: str
    env: str
    name: str
    kind: str
    state: str
    digest: str
    apps: tuple[str, ...]
    created_by: str
    created_at: datetime
    updated_at: datetime
    result: str
    rollback: RollbackInfo | None = None  # kind rollback: from/to, by, reason, approvals note
    superseded_by: tuple[Supersession, ...] = ()  # later plans that replaced what this one shipped

    def as_dict(self) -> dict[str, Any]:
        return _plain(self)


@dataclass(frozen=True)
class PlanView:
    id: str
    env: str
    name: str
    kind: str
    state: str
    digest: str
    created_by: str
    created_at: datetime
    updated_at: datetime
    failure_policy: str
    items: tuple[ItemView, ...]
    waves: tuple[tuple[str, ...], ...]
    approvals: tuple[ApprovalView, ...]
    approvals_required: int
    approval_roles: tuple[str, ...]
    checklist: tuple[ChecklistView, ...]
    blockers: tuple[Blocker, ...]
    overrides: tuple[OverrideView, ...]
    steps: tuple[StepView, ...]
    window: WindowState
    window_text: str
    lock: LockView | None
    started_at: datetime | None
    finished_at: datetime | None
    run_epoch: int | None
    abort_requested_by: str | None
    result: str
    extra: dict[str, Any] = field(default_factory=dict)
    warnings: tuple[Blocker, ...] = ()  # model scan findings this environment only warns about
    changes: tuple[ItemChange, ...] = ()  # before it runs: each item against what is live now
    rollback: RollbackInfo | None = None
    superseded_by: tuple[Supersession, ...] = ()
    reused: bool = False  # create_plan found an open plan with this digest and returned it
    queued: QueuedView | None = None  # `plan run --when-open`: its queue entry, while or after

    @property
    def downgrades(self) -> tuple[ItemChange, ...]:
        return tuple(c for c in self.changes if c.downgrade)

    @property
    def runnable(self) -> bool:
        return self.state in ("awaiting_approval", "approved") and not self.blockers

    @property
    def canary_weights(self) -> dict[str, int]:
        """App -> the weight its canary has now, while the plan runs (from the journal)."""
        if self.state != "running":
            return {}
        return journal_weights((s.app, s.step, s.state, s.detail) for s in self.steps)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "env": self.env,
            "name": self.name,
            "kind": self.kind,
            "state": self.state,
            "digest": self.digest,
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
            "failure_policy": self.failure_policy,
            "items": [i.as_dict() for i in self.items],
            "waves": [list(w) for w in self.waves],
            "approvals": [_plain(a) for a in self.approvals],
            "approvals_required": self.approvals_required,
            "checklist": [c.as_dict() for c in self.checklist],
            "blockers": [b.as_dict() for b in self.blockers],
            "warnings": [w.as_dict() for w in self.warnings],
            "overrides": [o.as_dict() for o in self.overrides],
            "window": {**self.window.as_dict(), "text": self.window_text},
            "lock": None
            if self.lock is None
            else {
                "holder": self.lock.holder,
                "plan": self.lock.plan_id,
                "since": self.lock.since.isoformat() if self.lock.since else None,
            },
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "abort_requested_by": self.abort_requested_by,
            "result": self.result,
            "steps": [s.as_dict() for s in self.steps],
            "canary_weights": self.canary_weights,
            "changes": [c.as_dict() for c in self.changes],
            "downgrades": [c.sentence for c in self.downgrades],
            "rollback": self.rollback.as_dict() if self.rollback else None,
            "superseded_by": [x.as_dict() for x in self.superseded_by],
            "queued": self.queued.as_dict() if self.queued else None,
            "reused": self.reused,
        }


def _override_view(o: OverrideRow, now: datetime) -> OverrideView:
    return OverrideView(
        o.id, o.plan_id, o.env, o.by, o.reason, o.at, o.until, o.until > now,
        o.acknowledged_by, o.acknowledged_at,
    )  # fmt: skip
