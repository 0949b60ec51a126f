"""Reading plans: the list (PlanSummary), one whole plan (PlanView) and its run journal."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from shipdeck.core.domain import policy
from shipdeck.core.domain.config import ChecklistItem
from shipdeck.core.domain.plan import PRE_RUN, PlanBody, policy_for
from shipdeck.core.domain.windows import WindowState
from shipdeck.core.services.context import Context
from shipdeck.core.services.history import Supersession, item_changes, rollback_info, superseded
from shipdeck.core.services.plans.lookups import env_config, load_plan_row, window_tz
from shipdeck.core.services.plans.queued import queued_of
from shipdeck.core.services.plans.verdicts import effective_state, verdict
from shipdeck.core.services.plans.views import (
    ApprovalView,
    ChecklistView,
    ItemView,
    PlanSummary,
    PlanView,
    StepView,
    _override_view,
)
from shipdeck.core.storage import approvals as stored_approvals
from shipdeck.core.storage import journal, plans
from shipdeck.core.storage import overrides as stored_overrides
from shipdeck.core.storage.db import Tx
from shipdeck.core.storage.plans import PlanRow, TickRow

# --- reading ---------------------------------------------------------------------------------


def _summary(ctx: Context, conn: Tx, row: PlanRow, later: tuple[Supersession, ...]) -> PlanSummary:
    body = PlanBody.decode(row.body)
    env = policy_for(env_config(ctx, row.env), body.kind)
    return PlanSummary(
        id=row.id,
        env=row.env,
        name=row.name,
        kind=row.kind,
        state=row.state,
        digest=row.digest,
        apps=tuple(body.apps),
        created_by=row.created_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
        result=row.result,
        rollback=rollback_info(conn, env, body, row.created_by),
        superseded_by=later,
    )


def list_plans(
    ctx: Context, *, env: str | None = None, state: str | None = None, limit: int = 200
) -> list[PlanSummary]:
    """Plans newest first. `state` filters on the stored state."""
    if env is not None:
        env_config(ctx, env)
    with ctx.db.read() as conn:
        rows = plans.newest(conn, env=env, state=state, limit=limit)
        later = superseded(conn, [r.id for r in rows])
        return [_summary(ctx, conn, r, later.get(r.id, ())) for r in rows]


def steps_of(conn: Tx, plan_id: str, after_id: int = 0) -> list[StepView]:
    return [
        StepView(r.id, r.epoch, r.wave, r.app, r.step, r.state, r.detail, r.at)
        for r in journal.of_plan(conn, plan_id, after_id)
    ]


def get_plan(ctx: Context, plan_id: str) -> PlanView:
    """The whole plan: items, waves, approvals, checklist, blockers, overrides and run journal."""
    with ctx.db.read() as conn:
        row = load_plan_row(conn, plan_id)
        return _view(ctx, conn, row)


def _view(ctx: Context, conn: Tx, row: PlanRow) -> PlanView:
    v = verdict(ctx, conn, row)
    now = ctx.now()
    wave_of = {app: n for n, wave in enumerate(v.body.waves) for app in wave}
    checklist_views = _checklist_views(v.facts.checklist, plans.ticks_of(conn, row.id))
    approvals = tuple(
        ApprovalView(a.by, a.at, a.digest, a.decision, a.comment, a.digest == v.digest)
        for a in stored_approvals.of_plan(conn, row.id)
    )
    overrides = tuple(_override_view(o, now) for o in stored_overrides.of_plan(conn, row.id))
    return PlanView(
        id=row.id,
        env=row.env,
        name=row.name,
        kind=row.kind,
        state=effective_state(row.state, v.blockers),
        digest=v.digest,
        created_by=row.created_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
        failure_policy=v.body.failure_policy,
        items=tuple(
            ItemView(i.app, i.version, i.commit, i.digest, i.author, wave_of.get(i.app, 0))
            for i in sorted(v.body.items, key=lambda i: (wave_of.get(i.app, 0), i.app))
        ),
        waves=v.body.waves,
        approvals=approvals,
        approvals_required=v.env.approvals.required,
        approval_roles=v.env.approvals.roles,
        checklist=tuple(checklist_views),
        blockers=v.blockers,
        overrides=overrides,
        steps=tuple(steps_of(conn, row.id)),
        window=v.window,
        window_text=_window_text(ctx, row.env, v.window, now),
        lock=v.lock,
        started_at=row.started_at,
        finished_at=row.finished_at,
        run_epoch=row.run_epoch,
        abort_requested_by=row.abort_requested_by,
        result=row.result,
        warnings=tuple(policy.model_warnings(v.facts, v.env)),
        changes=item_changes(conn, row.env, v.body.items) if row.state in PRE_RUN else (),
        rollback=rollback_info(conn, v.env, v.body, row.created_by),
        superseded_by=superseded(conn, [row.id]).get(row.id, ()),
        queued=queued_of(conn, row.id, ctx.processes),
    )


def _checklist_views(
    items: Sequence[ChecklistItem], ticks: Mapping[str, TickRow]
) -> list[ChecklistView]:
    """Each checklist item with its tick, if it has one."""
    checklist_views = []
    for item in items:
        t = ticks.get(item.id)
        checklist_views.append(
            ChecklistView(
                item.id,
                item.text,
                item.command,
                t is not None and t.ok,
                t.by if t else None,
                t.at if t else None,
                t.ok if t else None,
                t.output if t else "",
            )
        )
    return checklist_views


def _window_text(ctx: Context, env: str, window: WindowState, now: datetime) -> str:
    from shipdeck.core.domain.windows import describe_next

    return describe_next(window, window_tz(ctx, env), now)
