"""May this plan run now, and if not, why: a pure function of recorded facts and a clock.

Every blocker carries one sentence a person can act on ("needs 1 more approval from approvers",
"prod window opens Tue 09:00 Europe/Berlin, in 14h"), so the TUI and `plan show` never explain
policy themselves. Kinds are the headless contract's: window_closed, frozen, approvals_missing,
checklist_incomplete, locked, not_promoted, self_approval, stale_approval, target_missing, and the
model gates' unsafe_weights, scan_findings and license_not_allowed (core.domain.model_gates).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from shipdeck.core.domain import model_gates
from shipdeck.core.domain.config import ChecklistItem, Environment
from shipdeck.core.domain.windows import WindowState, describe_next
from shipdeck.core.errors import Blocker


@dataclass(frozen=True)
class PlanFacts:
    id: str
    env: str
    digest: str  # the current digest (body + today's policy)
    author: str
    items: tuple[tuple[str, str, str], ...]  # (app, version, release author)
    checklist: tuple[ChecklistItem, ...]
    editors: tuple[str, ...] = ()  # who changed or submitted the plan after drafting it
    untargeted: tuple[str, ...] = ()  # apps in the plan that shipdeck.toml gives no target here
    models: tuple[model_gates.ModelFact, ...] = ()  # the model artifacts of its releases


@dataclass(frozen=True)
class ApprovalFact:
    by: str
    at: datetime
    digest: str
    decision: str  # approve | reject
    roles: tuple[str, ...]  # the approver's roles now


@dataclass(frozen=True)
class TickFact:
    item: str
    by: str
    at: datetime
    ok: bool


@dataclass(frozen=True)
class LockFact:
    holder: str
    plan_id: str | None
    since: datetime | None


@dataclass(frozen=True)
class OverrideFact:
    id: int
    by: str
    reason: str
    until: datetime


@dataclass(frozen=True)
class PromotionFact:
    app: str
    version: str
    previous_env: str
    succeeded: bool


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _either(names: Sequence[str]) -> str:
    names = list(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def _both(names: Sequence[str]) -> str:
    names = list(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def authors(plan: PlanFacts) -> set[str]:
    """Who may not approve: the plan's author, whoever edited or submitted it, and the authors
    of its releases. An editor stays excluded even when the plan is edited back to a digest
    someone else produced: what they changed and reverted is still theirs to have shaped."""
    return {plan.author, *plan.editors, *(a for _, _, a in plan.items)}


def valid_approvers(
    plan: PlanFacts, env: Environment, approvals: Sequence[ApprovalFact]
) -> list[str]:
    """Distinct people whose approval counts now, in the order they approved."""
    banned = authors(plan)
    roles = set(env.approvals.roles)
    out: list[str] = []
    for a in approvals:
        if (
            a.decision == "approve"
            and a.digest == plan.digest
            and a.by not in banned
            and set(a.roles) & roles
            and a.by not in out
        ):
            out.append(a.by)
    return out


def approval_blockers(
    plan: PlanFacts,
    env: Environment,
    approvals: Sequence[ApprovalFact],
    role_members: Mapping[str, Sequence[str]],
) -> list[Blocker]:
    need = env.approvals.required
    if need <= 0:
        return []
    have = valid_approvers(plan, env, approvals)
    missing = need - len(have)
    if missing <= 0:
        return []
    roles = sorted(env.approvals.roles)
    out = [
        Blocker(
            "approvals_missing",
            f"needs {missing} more approval{'s' if missing > 1 else ''} from {_either(roles)}"
            + (f" (has {len(have)} of {need}: {_both(have)})" if have else f" (has 0 of {need})"),
            {"required": need, "have": len(have), "missing": missing, "roles": roles, "by": have},
        )
    ]
    stale = sorted(
        {a.by for a in approvals if a.decision == "approve" and a.digest != plan.digest} - set(have)
    )
    if stale:
        out.append(
            Blocker(
                "stale_approval",
                f"the plan changed after {_both(stale)} approved it (approvals bind to digest "
                f"{plan.digest[:19]}): {'they' if len(stale) > 1 else 'that approval'} no longer "
                "count and must be given again",
                {"by": stale, "digest": plan.digest},
            )
        )
    banned = authors(plan)
    self_given = sorted({a.by for a in approvals if a.by in banned and a.decision == "approve"})
    eligible = sorted({u for r in roles for u in role_members.get(r, ())} - banned - set(have))
    excluded = sorted({u for r in roles for u in role_members.get(r, ())} & banned)
    if self_given or (excluded and len(eligible) < missing):
        why = (
            f"{_both(self_given)} authored this plan or one of its releases and cannot approve it"
            if self_given
            else f"{_both(excluded)} authored this plan or one of its releases and cannot approve it"
        )
        pool = (
            f"; only {_both(eligible)} can still approve"
            if eligible
            else "; nobody else can approve"
        )
        out.append(
            Blocker(
                "self_approval",
                why + (pool if len(eligible) < missing else ""),
                {"authors": sorted(banned), "eligible": eligible},
            )
        )
    return out


def checklist_blockers(plan: PlanFacts, ticks: Mapping[str, TickFact]) -> list[Blocker]:
    open_items: list[ChecklistItem] = []
    failed: list[str] = []
    for item in plan.checklist:
        tick = ticks.get(item.id)
        if tick is None or not tick.ok:
            open_items.append(item)
            if tick is not None:
                failed.append(item.text)
    if not open_items:
        return []
    texts = "; ".join(f"'{i.text}'" for i in open_items)
    msg = f"{len(open_items)} of {_plural(len(plan.checklist), 'checklist item')} open: {texts}"
    if failed:
        msg += f" (command failed for {'; '.join(repr(f) for f in failed)})"
    return [
        Blocker(
            "checklist_incomplete",
            msg,
            {"open": [i.id for i in open_items], "failed": failed},
        )
    ]


def window_blockers(
    env: str, window: WindowState, tz: str, overrides: Sequence[OverrideFact], now: datetime
) -> list[Blocker]:
    if window.open:
        return []
    kind = window.blocker_kind or "window_closed"
    if active_override(overrides, now) is not None:
        return []
    when = describe_next(window, tz, now)
    return [
        Blocker(
            kind,
            f"{env} {when} ({window.reason})",
            {
                "reason": window.reason,
                "next_open": window.next_open.isoformat() if window.next_open else None,
            },
        )
    ]


def active_override(overrides: Sequence[OverrideFact], now: datetime) -> OverrideFact | None:
    live = [o for o in overrides if o.until > now]
    return max(live, key=lambda o: o.until) if live else None


def lock_blockers(plan_id: str, env: str, lock: LockFact | None) -> list[Blocker]:
    if lock is None or lock.plan_id == plan_id:
        return []
    since = f" since {lock.since:%Y-%m-%d %H:%M} UTC" if lock.since else ""
    what = f"plan {lock.plan_id}" if lock.plan_id else "a day-2 task"  # tasks hold it plan-less
    return [
        Blocker(
            "locked",
            f"{env} is locked by {lock.holder} running {what}{since}",
            {"holder": lock.holder, "plan": lock.plan_id},
        )
    ]


def promotion_blockers(facts: Sequence[PromotionFact]) -> list[Blocker]:
    return [
        Blocker(
            "not_promoted",
            f"{f.app} {f.version} has not succeeded in {f.previous_env} yet (ship it there first)",
            {"app": f.app, "version": f.version, "previous_env": f.previous_env},
        )
        for f in facts
        if not f.succeeded
    ]


def target_blockers(plan: PlanFacts, env: str) -> list[Blocker]:
    """A plan can only ship apps the workspace still deploys somewhere in its environment."""
    return [
        Blocker(
            "target_missing",
            f"{app} has no target in {env} in shipdeck.toml"
            f" (add [apps.{app}.targets.{env}] or plan without {app})",
            {"app": app},
        )
        for app in plan.untargeted
    ]


def model_blockers(plan: PlanFacts, env: Environment) -> list[Blocker]:
    """The model gates that stop this plan in `env` (warnings are `model_warnings`)."""
    found = model_gates.gates(env.name, env.models, plan.models)
    return [b for b in found if not model_gates.is_warning(b)]


def model_warnings(plan: PlanFacts, env: Environment) -> list[Blocker]:
    """Scan findings `env` allows (scan = "warn"): shown with the plan, never blocking."""
    return [
        b for b in model_gates.gates(env.name, env.models, plan.models) if model_gates.is_warning(b)
    ]


def evaluate(
    plan: PlanFacts,
    env: Environment,
    *,
    approvals: Sequence[ApprovalFact],
    ticks: Mapping[str, TickFact],
    window: WindowState,
    window_tz: str,
    promotion: Sequence[PromotionFact],
    lock: LockFact | None,
    overrides: Sequence[OverrideFact],
    role_members: Mapping[str, Sequence[str]],
    now: datetime,
) -> list[Blocker]:
    """Every reason the plan may not start now; empty means it may.

    Order is what a person fixes first: the configuration (a target removed after the plan was
    drafted), the releases' model gates (ship another release), lock and window (wait),
    promotion, approvals, checklist.
    An active override lifts window and freeze blockers only.
    """
    return [
        *target_blockers(plan, env.name),
        *model_blockers(plan, env),
        *lock_blockers(plan.id, env.name, lock),
        *window_blockers(env.name, window, window_tz, overrides, now),
        *promotion_blockers(promotion),
        *approval_blockers(plan, env, approvals, role_members),
        *checklist_blockers(plan, ticks),
    ]
