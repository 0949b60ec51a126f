"""`plan promote`: a person moves a running canary past the pause it waits at (a pause until
promoted, a timed one, or an inconclusive analysis), as `kubectl argo rollouts promote` does."""

from __future__ import annotations

from shipdeck.core.domain.plan import PlanBody, label
from shipdeck.core.errors import ConflictError
from shipdeck.core.services.context import Context
from shipdeck.core.services.plans import load_plan_row, steps_of
from shipdeck.core.services.runs.canary import PROMOTE_REQUESTED
from shipdeck.core.services.runs.views import RunResult


def promote(ctx: Context, plan_id: str) -> RunResult:
    """Record a promote request (audited; the 'plan.run' permission: whoever may run the plan
    may move it on). The runner ends the pause that began before the request at its next look;
    a request made while no pause is open waits for none (the next pause needs its own)."""
    with ctx.db.read() as conn:
        row = load_plan_row(conn, plan_id)
    ctx.require("plan.run", env=row.env, plan=plan_id)
    body = PlanBody.decode(row.body)
    canaries = [a for a in body.apps if ctx.config.canary(a, row.env, body.kind) is not None]
    with ctx.db.write() as conn:
        row = load_plan_row(conn, plan_id, for_update=True)
        if row.state != "running":
            raise ConflictError(
                f"plan {plan_id} is {label(row.state)}: only a running canary can be promoted"
            )
        if not canaries:
            raise ConflictError(
                f"plan {plan_id} has no canary to promote: its apps ship blue/green in {row.env}"
            )
        ctx.audit(
            conn, PROMOTE_REQUESTED, {"epoch": row.run_epoch, "apps": canaries},
            env=row.env, plan=plan_id,
        )  # fmt: skip
    with ctx.db.read() as conn:
        steps = tuple(steps_of(conn, plan_id))
    return RunResult(plan_id, row.env, row.state, row.result, row.run_epoch, steps)
