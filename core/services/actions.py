"""Which actions an actor may take now, and why not: the one answer both front ends show.

`plan_actions` covers a plan (submit, edit, tick, approve, reject, run, queue and unqueue for its
window, promote a running canary, abort, override, ack);
`app_actions` an app in an environment (deploy, rollback and each day-2 task; `task_actions` the
tasks alone, without IO). Each Action
carries structured reasons (kind + sentence) when refused, and whether it applies at all (a plan
without a checklist has nothing to tick; the TUI leaves such keys out rather than greying them).
The services check the same rules again when the action is taken (and audit a refusal); these
functions only read, so a screen can grey a key out and say why before anyone presses it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shipdeck.core.domain.config import Environment, TargetConfig
from shipdeck.core.domain.plan import PRE_RUN, label
from shipdeck.core.domain.queue import decide, refusals
from shipdeck.core.errors import ShipdeckError
from shipdeck.core.services.context import Context
from shipdeck.core.services.plans import OverrideView, PlanView, env_config

PLAN_ACTIONS = (
    "submit", "edit", "tick", "approve", "reject", "run", "queue", "unqueue", "promote", "abort",
    "override", "ack",
)  # fmt: skip
TASKS = ("task.logs", "task.restart", "task.token-limit")
APP_ACTIONS = ("deploy", "rollback", *TASKS)
_WAITING = ("awaiting_approval", "approved")


@dataclass(frozen=True)
class Reason:
    kind: str  # not_permitted | state | self_approval | already_approved | nothing_to_do |
    #            no_target | not_configured | or a policy blocker kind (window_closed, approvals_missing, ...)
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "message": self.message}


@dataclass(frozen=True)
class Action:
    name: str
    reasons: tuple[Reason, ...] = ()
    applies: bool = True  # False: the action has no meaning for this plan now

    @property
    def allowed(self) -> bool:
        return not self.reasons

    @property
    def why_not(self) -> str:
        """The first reason, for a status line ('' when allowed)."""
        return self.reasons[0].message if self.reasons else ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "action": self.name,
            "allowed": self.allowed,
            "reasons": [r.as_dict() for r in self.reasons],
        }


def _permission(
    ctx: Context, permission: str | tuple[str, ...], roles: tuple[str, ...] = ()
) -> list[Reason]:
    why = ctx.refusal(permission, roles)
    return [] if why is None else [Reason("not_permitted", why)]


def task_roles(env: Environment) -> tuple[str, ...]:
    """Who may run day-2 tasks beyond the permission: the task roles, where protected."""
    return env.task_roles if env.protected else ()


def _state(view: PlanView, allowed: tuple[str, ...], what: str) -> list[Reason]:
    if view.state in allowed:
        return []
    if view.state == "draft":
        return [Reason("state", f"plan {view.id} is a draft: submit it before it can be {what}")]
    return [Reason("state", f"plan {view.id} is {label(view.state)}: it cannot be {what} now")]


def open_reviews(ctx: Context, view: PlanView) -> list[OverrideView]:
    """Overrides on this plan someone other than their author still has to acknowledge."""
    return [o for o in view.overrides if o.acknowledged_by is None and o.by != ctx.actor.name]


def shown(actions: dict[str, Action]) -> dict[str, str | None]:
    """The actions that apply, each mapped to None (allowed) or the sentence saying why not."""
    return {n: (None if a.allowed else a.why_not) for n, a in actions.items() if a.applies}


def plan_actions(ctx: Context, view: PlanView) -> dict[str, Action]:
    """Every plan action for this actor on `view` as it is now."""
    env = env_config(ctx, view.env)
    pre_run = view.state in PRE_RUN
    live = pre_run or view.state == "running"
    waiting = view.queued is not None and view.queued.waiting
    applies = {
        "submit": view.state == "draft",
        "edit": pre_run,
        "tick": bool(view.checklist),
        "approve": view.approvals_required > 0,
        "reject": view.approvals_required > 0,
        "run": pre_run,
        "queue": pre_run
        and not (waiting and view.queued is not None and not view.queued.waiter_gone),
        "unqueue": waiting,
        "promote": view.state == "running"
        and any(ctx.config.canary(i.app, view.env, view.kind) for i in view.items),
        "abort": live,
        "override": live and bool(env.override_roles),
        "ack": bool(open_reviews(ctx, view)),
    }
    reasons: dict[str, list[Reason]] = {}
    editing = _permission(ctx, "plan.create")
    reasons["submit"] = editing + _state(view, ("draft",), "submitted")
    reasons["edit"] = editing + _state(view, tuple(PRE_RUN), "edited")
    approver = _permission(ctx, "plan.approve")
    reasons["ack"] = [] if not approver or not _permission(ctx, "override") else approver
    reasons["approve"] = _approve_reasons(ctx, view)
    reasons["reject"] = [r for r in reasons["approve"] if r.kind not in _APPROVER_ONLY]
    tick = _permission(ctx, "plan.check") + _state(view, tuple(PRE_RUN), "ticked")
    if not view.checklist:
        tick.append(Reason("nothing_to_do", f"plan {view.id} has no checklist"))
    reasons["tick"] = tick
    run = _permission(ctx, "deploy" if view.kind == "deploy" else "plan.run")
    run += _state(view, _WAITING, "run")
    if not run:
        run += [
            Reason(b.kind, f"plan {view.id} may not run yet: {b.message}") for b in view.blockers
        ]
    reasons["run"] = run
    reasons["queue"] = _queue_reasons(ctx, view)
    reasons["unqueue"] = _permission(ctx, ("plan.run", "plan.abort"))
    reasons["promote"] = _permission(ctx, "plan.run") + _state(view, ("running",), "promoted")
    reasons["abort"] = _permission(ctx, "plan.abort") + _state(
        view, (*PRE_RUN, "running"), "aborted"
    )
    if env.override_roles:
        override = _permission(ctx, "override", env.override_roles)
    else:
        override = [Reason("not_permitted", f"environment {env.name} allows no overrides")]
    reasons["override"] = override + _state(view, (*PRE_RUN, "running"), "overridden")
    return {name: Action(name, tuple(reasons[name]), applies[name]) for name in PLAN_ACTIONS}


_APPROVER_ONLY = ("self_approval", "already_approved")  # what stops approving, not rejecting


def _approve_reasons(ctx: Context, view: PlanView) -> list[Reason]:
    me = ctx.actor.name
    approve = _permission(ctx, "plan.approve", view.approval_roles)
    approve += _state(view, _WAITING, "approved")
    if view.approvals_required == 0:
        approve.append(Reason("nothing_to_do", f"{view.env} needs no approvals for this plan"))
    if me == view.created_by or me in {i.release_author for i in view.items}:
        what = "drafted this plan" if me == view.created_by else "authored a release in it"
        approve.append(Reason("self_approval", f"{me} {what} and cannot approve it"))
    if any(a.by == me and a.current and a.decision == "approve" for a in view.approvals):
        approve.append(Reason("already_approved", f"{me} has approved this plan as it is"))
    return approve


def _queue_reasons(ctx: Context, view: PlanView) -> list[Reason]:
    """Queueing for the window: as running, except that what a window lifts by itself (closed,
    frozen, locked) is what it waits for; with nothing to wait for, run it instead."""
    queue = _permission(ctx, "deploy" if view.kind == "deploy" else "plan.run")
    queue += _state(view, _WAITING, "queued")
    if queue:
        return queue
    blocking = refusals(view.blockers)
    if blocking:
        return [Reason(b.kind, f"plan {view.id} cannot be queued: {b.message}") for b in blocking]
    if decide(view.blockers) == "start":
        return [Reason("nothing_to_do", f"nothing holds plan {view.id}: run it now")]
    return []


def app_actions(ctx: Context, app: str, env: str) -> dict[str, Action]:
    """deploy, rollback and each day-2 task for this actor on `app` in `env`."""
    from shipdeck.core.services.rollbacks import preview_rollback

    tasks = task_actions(ctx, app, env)
    target = _no_target(ctx, app, env)
    deploy = _permission(ctx, "deploy") + target
    rollback = _permission(ctx, "rollback") + target
    if not rollback:
        try:
            preview_rollback(ctx, app, env)
        except ShipdeckError as exc:
            rollback.append(Reason("nothing_to_do", str(exc)))
    return {
        "deploy": Action("deploy", tuple(deploy)),
        "rollback": Action("rollback", tuple(rollback)),
        **tasks,
    }


def task_actions(ctx: Context, app: str, env: str) -> dict[str, Action]:
    """Each day-2 task for this actor on `app` in `env`, from the configuration and the actor
    alone (no IO): cheap enough for a screen to ask on every key it greys out."""
    roles = task_roles(env_config(ctx, env))
    target = _target(ctx, app, env)
    where = _no_target(ctx, app, env)
    out: dict[str, Action] = {}
    for task in TASKS:
        reasons = _permission(ctx, task, roles) + where
        if task == "task.token-limit" and target is not None and target.token_limits is None:
            reasons.append(Reason("not_configured", f"{app} has no token limits in {env}"))
        out[task] = Action(task, tuple(reasons))
    return out


def _target(ctx: Context, app: str, env: str) -> TargetConfig | None:
    spec = ctx.config.apps.get(app)
    return spec.targets.get(env) if spec else None


def _no_target(ctx: Context, app: str, env: str) -> list[Reason]:
    return [] if _target(ctx, app, env) else [Reason("no_target", f"{app} has no target in {env}")]
