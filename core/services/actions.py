"""What the person in a session may do to a plan now, and when not, the sentence saying why.

One answer for every front end: the TUI shows a refused action disabled and says the reason when
its key is pressed; the services refuse the same things again when asked (they never trust this).
An action absent from the answer does not apply to the plan at all (nothing to acknowledge, a
plan that never ran has no run to watch); present with None, it may be taken; present with a
sentence, it is refused for that reason.
"""

from __future__ import annotations

from shipdeck.core.domain import policy
from shipdeck.core.domain.plan import PRE_RUN, label
from shipdeck.core.services.context import Context
from shipdeck.core.services.plans import OverrideView, PlanView

RUNNABLE = frozenset({"awaiting_approval", "approved"})
PLAN_ACTIONS = ("submit", "edit", "tick", "approve", "reject", "run", "abort", "override", "ack")


def open_reviews(ctx: Context, view: PlanView) -> list[OverrideView]:
    """Overrides on this plan someone other than their author still has to acknowledge."""
    return [o for o in view.overrides if o.acknowledged_by is None and o.by != ctx.actor.name]


def plan_actions(ctx: Context, view: PlanView) -> dict[str, str | None]:
    """Each action that applies to `view`, mapped to None (allowed) or why it is refused."""
    env = ctx.config.environments[view.env]
    state = label(view.state)
    out: dict[str, str | None] = {}

    def decide(action: str, applies: bool, why_not: str | None) -> None:
        if applies:
            out[action] = why_not

    pre_run = view.state in PRE_RUN
    editing = ctx.denial("plan.create")
    decide("submit", view.state == "draft", editing)
    decide("edit", pre_run, editing)
    if view.checklist:
        decide(
            "tick",
            True,
            ctx.denial("plan.check") or (None if pre_run else f"the plan is {state}"),
        )
    if view.approvals_required > 0:
        out["approve"] = _approve_denial(ctx, view, env.approvals.roles)
        out["reject"] = ctx.denial("plan.approve", env.approvals.roles) or _runnable(view)
    run_permission = "deploy" if view.kind == "deploy" else "plan.run"
    if pre_run or view.state == "running":
        decide("run", pre_run, ctx.denial(run_permission) or _run_blocked(view))
        out["abort"] = ctx.denial("plan.abort")
        if env.override_roles:
            out["override"] = ctx.denial("override", env.override_roles)
    if open_reviews(ctx, view):
        approver = ctx.denial("plan.approve")
        out["ack"] = None if approver is None or ctx.denial("override") is None else approver
    return out


def _runnable(view: PlanView) -> str | None:
    if view.state == "draft":
        return "the plan is a draft: submit it first (S)"
    if view.state not in RUNNABLE:
        return f"the plan is {label(view.state)}"
    return None


def _approve_denial(ctx: Context, view: PlanView, roles: tuple[str, ...]) -> str | None:
    me = ctx.actor.name
    denied = ctx.denial("plan.approve", roles) or _runnable(view)
    if denied:
        return denied
    facts = policy.PlanFacts(
        view.id, view.env, view.digest, view.created_by,
        tuple((i.app, i.version, i.release_author) for i in view.items), (),
    )  # fmt: skip
    if me in policy.authors(facts):
        what = "drafted this plan" if me == view.created_by else "authored a release in it"
        return f"{me} {what}: approvals must come from someone else"
    if any(a.by == me and a.current and a.decision == "approve" for a in view.approvals):
        return f"{me} already approved this plan as it is now"
    return None


def _run_blocked(view: PlanView) -> str | None:
    if view.state == "draft":
        return "the plan is a draft: submit it first (S)"
    if view.blockers:
        more = f" (and {len(view.blockers) - 1} more)" if len(view.blockers) > 1 else ""
        return f"plan {view.id} may not run yet: {view.blockers[0].message}{more}"
    return None
