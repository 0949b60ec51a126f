"""A plan's way to approval: submitting a draft, approving, rejecting, and the one state change
under a rebinding event they share (_set_state).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from shipdeck.core.domain import policy
from shipdeck.core.domain.plan import PRE_RUN, PlanBody, check_transition, label
from shipdeck.core.errors import BlockedError, Blocker, ConflictError, UsageError
from shipdeck.core.services.context import Context
from shipdeck.core.services.notify import notify
from shipdeck.core.services.plans.lookups import env_config, load_plan_row
from shipdeck.core.services.plans.reading import get_plan
from shipdeck.core.services.plans.verdicts import (
    Verdict,
    _approved_now,
    _waiting_state,
    digest_for,
    snapshot_for,
    verdict,
)
from shipdeck.core.services.plans.views import PlanView
from shipdeck.core.storage import approvals, plans
from shipdeck.core.storage.binding import Bind
from shipdeck.core.storage.db import Tx
from shipdeck.core.storage.plans import PlanRow


def submit_plan(ctx: Context, plan_id: str) -> PlanView:
    """A draft goes up for approval (or straight to approved where none is required)."""
    with ctx.db.read() as conn:
        env = load_plan_row(conn, plan_id).env
    ctx.require("plan.create", env=env, plan=plan_id)
    with ctx.db.write() as conn:
        row = load_plan_row(conn, plan_id, for_update=True)
        if row.state != "draft":
            raise ConflictError(f"plan {plan_id} is {label(row.state)}, not a draft")
        new_state = _waiting_state(env_config(ctx, env))
        _set_state(ctx, conn, row, new_state, "plan.submitted", {})
    if new_state == "awaiting_approval":
        notify(ctx, "plan.awaiting_approval", {"plan": plan_id, "env": env}, env=env, plan=plan_id)
    return get_plan(ctx, plan_id)


def _set_state(
    ctx: Context,
    conn: Tx,
    row: PlanRow,
    new: str,
    kind: str,
    payload: dict[str, Any],
    binds: Sequence[Bind] = (),
    **values: Any,
) -> None:
    """Move the plan to `new` (with any other `values` of its row) under one rebinding event."""
    if new != row.state:
        check_transition(row.id, row.state, new)
    changed = plans.change(conn, row.id, state=new, updated_at=ctx.now(), **values)
    ctx.audit(
        conn,
        kind,
        {**payload, "from": row.state, "state": new},
        env=row.env,
        plan=row.id,
        binds=[*binds, changed],
    )


# --- approvals ---------------------------------------------------------------------------------


def _pre_run_row(conn: Tx, plan_id: str, what: str) -> PlanRow:
    row = load_plan_row(conn, plan_id, for_update=True)
    if row.state == "draft":
        raise ConflictError(f"plan {plan_id} is a draft: submit it before it can be {what}")
    if row.state not in PRE_RUN:
        raise ConflictError(f"plan {plan_id} is {label(row.state)}: it can no longer be {what}")
    return row


def _self_approval(ctx: Context, row: PlanRow, v: Verdict) -> Blocker:
    """Why the acting person, an author of the plan or of a release in it, may not approve it."""
    what = (
        "drafted this plan"
        if ctx.actor.name == row.created_by
        else "edited or submitted this plan"
        if ctx.actor.name in v.facts.editors
        else "authored a release in it"
    )
    return Blocker(
        "self_approval",
        f"{ctx.actor.name} {what} and cannot approve it: approvals must come from someone else",
        {"by": ctx.actor.name},
    )


def approve(ctx: Context, plan_id: str, comment: str = "") -> PlanView:
    """Approve the plan as it is now (its current digest). The plan's author and the authors of
    its releases are refused with a self_approval blocker (exit 3), and the attempt is audited."""
    with ctx.db.read() as conn:
        env = env_config(ctx, load_plan_row(conn, plan_id).env)
    ctx.require("plan.approve", env=env.name, plan=plan_id, roles=env.approvals.roles)
    refused: Blocker | None = None
    approved_now = False
    with ctx.db.write() as conn:
        row = _pre_run_row(conn, plan_id, "approved")
        v = verdict(ctx, conn, row)
        if ctx.actor.name in policy.authors(v.facts):
            refused = _self_approval(ctx, row, v)
            ctx.audit(
                conn, "plan.approval_refused", {"reason": refused.message, "digest": v.digest},
                env=row.env, plan=plan_id,
            )  # fmt: skip
        elif not any(
            a.by == ctx.actor.name and a.digest == v.digest and a.decision == "approve"
            for a in v.approvals
        ):
            now = ctx.now()
            approval = approvals.add(
                conn, plan_id, ctx.actor.name, now, v.digest, "approve", comment
            )
            mine = policy.ApprovalFact(
                ctx.actor.name, now, v.digest, "approve", tuple(ctx.actor.roles)
            )
            approved_now = _approved_now(replace(v, approvals=(*v.approvals, mine)))
            new_state = "approved" if approved_now else "awaiting_approval"
            changed = plans.change(conn, plan_id, state=new_state, digest=v.digest, updated_at=now)
            ctx.audit(
                conn,
                "plan.approved",
                {
                    "digest": v.digest,
                    "comment": comment,
                    "state": new_state,
                    "policy": snapshot_for(ctx, v.env),
                },
                env=row.env,
                plan=plan_id,
                binds=[approval, changed],
            )
    if refused is not None:
        raise BlockedError(refused.message, blockers=[refused])
    return get_plan(ctx, plan_id)


def reject(ctx: Context, plan_id: str, reason: str) -> PlanView:
    """A rejection stops the plan for good (aborted, with the reason kept)."""
    if not reason.strip():
        raise UsageError("--reason is required: say why the plan is rejected")
    with ctx.db.read() as conn:
        env = env_config(ctx, load_plan_row(conn, plan_id).env)
    ctx.require("plan.approve", env=env.name, plan=plan_id, roles=env.approvals.roles)
    with ctx.db.write() as conn:
        row = _pre_run_row(conn, plan_id, "rejected")
        digest = digest_for(ctx, env, PlanBody.decode(row.body))
        rejection = approvals.add(
            conn, plan_id, ctx.actor.name, ctx.now(), digest, "reject", reason
        )
        _set_state(
            ctx, conn, row, "aborted", "plan.rejected", {"reason": reason, "digest": digest},
            binds=[rejection],
            result=f"rejected by {ctx.actor.name}: {reason}",
        )  # fmt: skip
    return get_plan(ctx, plan_id)
