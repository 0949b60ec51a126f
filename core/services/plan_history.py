"""What a plan means for the environment's history now, read from the deployment records.

A plan keeps the state its own run left it in ("succeeded"), which stays true of the run but not
of the environment once a later rollback or run replaces what it shipped. `plan_history` says so
for the plans and plan screens: which later plan superseded (or rolled back) each app this plan
put live, and for a rollback plan its from and to versions, who asked, why, and why it needed no
approvals. (core12 is building the same model for `plan list/show`; one of the two will go.)
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select

from shipdeck.core.domain.plan import PlanBody
from shipdeck.core.services.context import Context
from shipdeck.core.storage.tables import AUDIT_EVENTS, DEPLOYMENTS, PLANS

_TOOK_TRAFFIC = ("succeeded", "rolled_back")


@dataclass(frozen=True)
class Supersession:
    """A later plan put another release of `app` live over what this plan had shipped."""

    app: str
    plan: str
    kind: str  # the later plan's kind: plan | deploy | rollback
    version: str
    at: datetime
    rolled_back: bool  # the later plan was a rollback of this plan's deployment

    @property
    def sentence(self) -> str:
        verb = "rolled back by" if self.rolled_back else "superseded by"
        return (
            f"{self.app}: {verb} {self.plan} ({self.version} live since {self.at:%m-%d %H:%M} UTC)"
        )


@dataclass(frozen=True)
class RollbackInfo:
    app: str
    from_version: str | None
    to_version: str
    by: str
    reason: str
    approvals_note: str  # why none were needed

    @property
    def label(self) -> str:
        return f"rollback {self.app} {self.from_version or '?'} → {self.to_version}"


@dataclass(frozen=True)
class PlanHistory:
    superseded: tuple[Supersession, ...] = ()
    rollback: RollbackInfo | None = None


def approvals_note(env: str) -> str:
    return (
        f"no approvals needed: in {env} a rollback needs only the 'rollback' permission "
        "(it is how incidents end)"
    )


def plan_history(ctx: Context, plan_ids: Sequence[str]) -> dict[str, PlanHistory]:
    """For each plan, who replaced what it shipped, and (for rollbacks) what it undid and why."""
    if not plan_ids:
        return {}
    with ctx.db.read() as conn:
        superseded = _superseded(conn, plan_ids)
        rows = conn.execute(
            select(PLANS.c.id, PLANS.c.env, PLANS.c.body, PLANS.c.created_by).where(
                PLANS.c.id.in_(list(plan_ids)), PLANS.c.kind == "rollback"
            )
        ).all()
        rollbacks = {r.id: _rollback_info(conn, r.id, r.env, r.body, r.created_by) for r in rows}
    return {
        pid: PlanHistory(superseded.get(pid, ()), rollbacks.get(pid))
        for pid in plan_ids
        if pid in superseded or rollbacks.get(pid) is not None
    }


def _rollback_info(
    conn: Connection, plan_id: str, env: str, raw: bytes, created_by: str
) -> RollbackInfo | None:
    body = PlanBody.decode(raw)
    if not body.items:
        return None
    item = body.items[0]
    replaced = body.replaces.get(item.app)
    from_version = None
    if replaced is not None:
        from_version = conn.execute(
            select(DEPLOYMENTS.c.version).where(DEPLOYMENTS.c.id == replaced)
        ).scalar()
    started = conn.execute(
        select(AUDIT_EVENTS.c.payload).where(
            AUDIT_EVENTS.c.plan == plan_id, AUDIT_EVENTS.c.kind == "run.started"
        )
    ).first()
    reason = str(json.loads(started.payload).get("reason", "")) if started is not None else ""
    return RollbackInfo(
        item.app, from_version, item.version, created_by, reason, approvals_note(env)
    )


def _superseded(conn: Connection, plan_ids: Sequence[str]) -> dict[str, tuple[Supersession, ...]]:
    mine = conn.execute(
        select(DEPLOYMENTS).where(
            DEPLOYMENTS.c.plan_id.in_(list(plan_ids)), DEPLOYMENTS.c.outcome.in_(_TOOK_TRAFFIC)
        )
    ).all()
    out: dict[str, list[Supersession]] = {}
    for d in mine:
        later = conn.execute(
            select(DEPLOYMENTS, PLANS.c.kind.label("plan_kind"))
            .join(PLANS, PLANS.c.id == DEPLOYMENTS.c.plan_id)
            .where(
                DEPLOYMENTS.c.app == d.app,
                DEPLOYMENTS.c.env == d.env,
                DEPLOYMENTS.c.id > d.id,
                DEPLOYMENTS.c.plan_id != d.plan_id,
                DEPLOYMENTS.c.outcome.in_(_TOOK_TRAFFIC),
            )
            .order_by(DEPLOYMENTS.c.id)
            .limit(1)
        ).first()
        if later is None:
            continue
        rolled_back = later.plan_kind == "rollback" and d.outcome == "rolled_back"
        out.setdefault(d.plan_id, []).append(
            Supersession(
                d.app, later.plan_id, later.plan_kind, later.version, later.at, rolled_back
            )
        )
    return {k: tuple(sorted(v, key=lambda s: s.app)) for k, v in out.items()}
