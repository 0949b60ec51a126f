"""What a set of plans means for their environments' history now, in one read for a screen.

The history rules live in core.services.history (the CLI's `plan list/show` use them too); this
gathers them per plan for the TUI's plans list and plan screen: which later plans superseded (or
rolled back) what each plan put live, and for a rollback plan what it undid, who asked and why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from shipdeck.core.domain.plan import PlanBody
from shipdeck.core.services.context import Context
from shipdeck.core.services.history import RollbackInfo, Supersession, rollback_info, superseded
from shipdeck.core.services.plans import env_config
from shipdeck.core.storage import plans

__all__ = ["PlanHistory", "RollbackInfo", "Supersession", "plan_history"]


@dataclass(frozen=True)
class PlanHistory:
    superseded: tuple[Supersession, ...] = ()
    rollback: RollbackInfo | None = None


def plan_history(ctx: Context, plan_ids: Sequence[str]) -> dict[str, PlanHistory]:
    """For each plan that has any, who replaced what it shipped and (rollbacks) what it undid."""
    if not plan_ids:
        return {}
    with ctx.db.read() as conn:
        later = superseded(conn, plan_ids)
        rollbacks = {
            r.id: rollback_info(conn, env_config(ctx, r.env), PlanBody.decode(r.body), r.created_by)
            for r in plans.rollbacks_among(conn, plan_ids)
            if r.env in ctx.config.environments
        }
    return {
        pid: PlanHistory(later.get(pid, ()), rollbacks.get(pid))
        for pid in plan_ids
        if pid in later or rollbacks.get(pid) is not None
    }
