"""The policy verdict: every fact about a plan that policy.evaluate weighs, read in one place so
views and the run engine share one reading, and the blockers it gives.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shipdeck.core.domain import policy
from shipdeck.core.domain.config import Environment
from shipdeck.core.domain.model_gates import ModelFact
from shipdeck.core.domain.plan import (
    PRE_RUN,
    PlanBody,
    checklist,
    plan_digest,
    policy_changes,
    policy_for,
    policy_snapshot,
)
from shipdeck.core.domain.windows import WindowState
from shipdeck.core.errors import Blocker
from shipdeck.core.services.context import Context
from shipdeck.core.services.plans.liveness import read_lock
from shipdeck.core.services.plans.lookups import env_config, env_window, untargeted, window_tz
from shipdeck.core.services.plans.views import LockView
from shipdeck.core.services.releases import proven_releases
from shipdeck.core.storage import approvals as stored_approvals
from shipdeck.core.storage import audit_reads, binding, deployments, plans
from shipdeck.core.storage import overrides as stored_overrides
from shipdeck.core.storage.approvals import ApprovalRow
from shipdeck.core.storage.db import Tx
from shipdeck.core.storage.plans import PlanRow

_APPROVAL_KINDS = frozenset({"approvals_missing", "stale_approval", "self_approval"})


# --- the policy verdict ------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """Everything evaluate() looked at, so views and the run engine share one reading."""

    body: PlanBody
    env: Environment
    digest: str
    facts: policy.PlanFacts
    approvals: tuple[policy.ApprovalFact, ...]
    ticks: dict[str, policy.TickFact]
    window: WindowState
    lock: LockView | None
    overrides: tuple[policy.OverrideFact, ...]
    blockers: tuple[Blocker, ...]


def digest_for(ctx: Context, env: Environment, body: PlanBody) -> str:
    """The plan's digest under the workspace's current policy definitions."""
    cfg = ctx.config
    gates = {a: g for a in body.apps if (g := cfg.eval_gate(a, env.name, body.kind)) is not None}
    canaries = {a: c for a in body.apps if (c := cfg.canary(a, env.name, body.kind)) is not None}
    return plan_digest(env, body, cfg.windows, cfg.freezes, gates, canaries)


def snapshot_for(ctx: Context, env: Environment) -> dict[str, Any]:
    return policy_snapshot(env, ctx.config.windows, ctx.config.freezes)


def _say_what_changed(
    ctx: Context, conn: Tx, env: Environment, blocker: Blocker, rows: Sequence[ApprovalRow]
) -> Blocker:
    """A stale approval names the policy definitions that changed since it was given (from the
    snapshot its audit event keeps), so "the plan changed" is never all an approver hears."""
    if blocker.kind != "stale_approval":
        return blocker
    seqs = [r.audit_seq for r in rows if r.digest != blocker.detail.get("digest") and r.audit_seq]
    if not seqs:
        return blocker
    given = audit_reads.payload_at(conn, max(seqs)).get("policy")
    if not isinstance(given, dict):
        return blocker
    changed = policy_changes(given, snapshot_for(ctx, env))
    if not changed:
        return blocker
    return Blocker(
        blocker.kind,
        f"{blocker.message}; changed since: {', '.join(changed)}",
        {**blocker.detail, "policy_changed": changed},
    )


_EDITS = ("plan.changed", "plan.submitted")


def _editors(conn: Tx, plan_id: str) -> tuple[str, ...]:
    """Everyone the audit log shows changing or submitting this plan (see policy.authors)."""
    return audit_reads.actors_of(conn, plan_id, _EDITS)


def _plan_facts(
    ctx: Context, conn: Tx, row: PlanRow, env: Environment, body: PlanBody, digest: str
) -> policy.PlanFacts:
    """The plan as policy sees it: items, checklist, editors, untargeted apps, model reports."""
    items = tuple(checklist(env, body))
    return policy.PlanFacts(
        id=row.id,
        env=row.env,
        digest=digest,
        author=row.created_by,
        items=tuple((i.app, i.version, i.author) for i in body.items),
        checklist=items,
        editors=_editors(conn, row.id),
        untargeted=tuple(untargeted(ctx, row.env, [i.app for i in body.items])),
        models=tuple(model_facts(conn, body)),
    )


def _promotion(
    ctx: Context, conn: Tx, env: Environment, row: PlanRow, body: PlanBody
) -> tuple[list[policy.PromotionFact], list[binding.Problem]]:
    """Where `env` requires the previous environment first: whether each release shipped there
    (only deployments their audit events vouch for count), and the problems of the others."""
    unverified: list[binding.Problem] = []
    promotion: list[policy.PromotionFact] = []
    previous = ctx.config.previous_env(row.env)
    if env.requires_previous and previous is not None and body.kind != "rollback":
        done, bad_deployments = deployments.shipped_to(
            conn, previous, [i.release_id for i in body.items]
        )
        unverified.extend(bad_deployments)
        promotion = [
            policy.PromotionFact(i.app, i.version, previous, i.release_id in done)
            for i in body.items
        ]
    return promotion, unverified


def verdict(ctx: Context, conn: Tx, row: PlanRow) -> Verdict:
    body = PlanBody.decode(row.body)
    env = policy_for(env_config(ctx, row.env), body.kind)
    digest = digest_for(ctx, env, body)
    now = ctx.now()
    facts = _plan_facts(ctx, conn, row, env, body, digest)
    # Decisions count only rows their audit events vouch for; the others are named as blockers.
    approval_rows, bad = stored_approvals.proven_of_plan(conn, row.id)
    tick_rows, bad_ticks = plans.proven_ticks_of(conn, row.id)
    override_rows, bad_overrides = stored_overrides.proven_of_plan(conn, row.id)
    bad_plan = plans.problems(conn, row)
    unverified = [*bad_plan, *bad, *bad_ticks, *bad_overrides]
    approvals = tuple(
        policy.ApprovalFact(a.by, a.at, a.digest, a.decision, tuple(ctx.config.roles_of(a.by)))
        for a in approval_rows
    )
    ticks = {t.item: policy.TickFact(t.item, t.by, t.at, t.ok) for t in tick_rows}
    overrides = tuple(policy.OverrideFact(o.id, o.by, o.reason, o.until) for o in override_rows)
    window = env_window(ctx, row.env, now)
    lock = read_lock(conn, row.env, now, ctx.processes)
    promotion, bad_deployments = _promotion(ctx, conn, env, row, body)
    unverified.extend(bad_deployments)
    role_members = {name: role.users for name, role in ctx.config.roles.items()}
    blockers: tuple[Blocker, ...] = ()
    if row.state in PRE_RUN:
        blockers = tuple(
            policy.evaluate(
                facts,
                env,
                approvals=approvals,
                ticks=ticks,
                window=window,
                window_tz=window_tz(ctx, row.env),
                promotion=promotion,
                lock=None
                if lock is None
                else policy.LockFact(lock.holder, lock.plan_id, lock.since),
                overrides=overrides,
                role_members=role_members,
                now=now,
            )
        )
        blockers = tuple(
            _say_what_changed(ctx, conn, env, b, approval_rows) for b in blockers
        ) + tuple(unverified_blocker(p) for p in unverified)
    return Verdict(body, env, digest, facts, approvals, ticks, window, lock, overrides, blockers)


def model_facts(conn: Tx, body: PlanBody) -> list[ModelFact]:
    """The model reports the plan's releases recorded at release time (their manifests)."""
    proven = proven_releases(conn, [i.release_id for i in body.items])
    return [
        ModelFact(rec.app, rec.version, a.name, a.model)
        for rec in sorted(proven, key=lambda r: r.app)
        for a in rec.manifest.artifacts
        if a.model is not None
    ]


def unverified_blocker(problem: binding.Problem) -> Blocker:
    """A state row that its audit event does not vouch for: it does not count, and it is named."""
    return Blocker(
        "unverified",
        f"{problem.sentence}: it does not count (run 'shipdeck audit verify')",
        {"table": problem.table, "key": problem.key, "seq": problem.seq},
    )


def effective_state(stored: str, blockers: Sequence[Blocker]) -> str:
    """Approval state follows the facts: a policy change can void approvals without a write."""
    if stored not in ("awaiting_approval", "approved"):
        return stored
    return "awaiting_approval" if any(b.kind in _APPROVAL_KINDS for b in blockers) else "approved"


def _approved_now(v: Verdict) -> bool:
    need = v.env.approvals.required
    return len(policy.valid_approvers(v.facts, v.env, v.approvals)) >= need


def _waiting_state(env: Environment) -> str:
    return "awaiting_approval" if env.approvals.required > 0 else "approved"
