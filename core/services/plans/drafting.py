"""Drafting plans: choosing releases, building a plan's body, creating it (or finding its open
twin) and editing it before it runs.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import replace

from shipdeck.core.domain.config import ChecklistItem
from shipdeck.core.domain.plan import (
    PRE_RUN,
    FailurePolicy,
    PlanBody,
    PlanItem,
    PlanKind,
    check_transition,
    extra_items,
    parse_item_spec,
    plan_digest,
    policy_for,
)
from shipdeck.core.domain.release import ReleaseRecord
from shipdeck.core.domain.waves import compute_waves
from shipdeck.core.errors import BlockedError, NotFoundError, UsageError
from shipdeck.core.services.context import Context
from shipdeck.core.services.notify import notify
from shipdeck.core.services.plans.lookups import env_config, load_plan_row
from shipdeck.core.services.plans.reading import _view, get_plan
from shipdeck.core.services.plans.verdicts import _waiting_state, digest_for, verdict
from shipdeck.core.services.plans.views import PlanView
from shipdeck.core.services.releases import app_config, find_release, latest_release
from shipdeck.core.storage import plans
from shipdeck.core.storage.db import Tx
from shipdeck.core.storage.plans import PlanRow

# --- drafting ----------------------------------------------------------------------------------


def _release_for(conn: Tx, ctx: Context, env: str, app: str, version: str | None) -> ReleaseRecord:
    spec = app_config(ctx, app)
    if env not in spec.targets:
        raise UsageError(f"{app} has no target in {env} (add [apps.{app}.targets.{env}])")
    rec = find_release(conn, app, version) if version else latest_release(conn, app)
    if rec is None:
        what = f"release {app} {version}" if version else f"release of {app}"
        raise NotFoundError(f"no {what} (see 'shipdeck release list {app}')")
    return rec


def _live_digests(conn: Tx, env: str) -> dict[str, str]:
    from shipdeck.core.services.status import live_deployments

    return {app: r.digest for (app, e), r in live_deployments(conn).items() if e == env}


def _items(ctx: Context, conn: Tx, env: str, specs: Sequence[str]) -> list[PlanItem]:
    chosen: list[ReleaseRecord] = []
    if specs:
        seen: set[str] = set()
        for spec in specs:
            try:
                app, version = parse_item_spec(spec)
            except ValueError as exc:
                raise UsageError(str(exc)) from None
            if app in seen:
                raise UsageError(f"{app} is listed more than once")
            seen.add(app)
            chosen.append(_release_for(conn, ctx, env, app, version))
    else:
        live = _live_digests(conn, env)
        for app, app_cfg in ctx.config.apps.items():
            if env not in app_cfg.targets:
                continue
            rec = latest_release(conn, app)
            if rec is not None and live.get(app) != rec.digest:
                chosen.append(rec)
        if not chosen:
            raise UsageError(f"nothing to ship: every app in {env} runs its latest release")
    return [PlanItem(r.app, r.version, r.id, r.digest, r.commit, r.created_by) for r in chosen]


def build_body(
    ctx: Context,
    env: str,
    items: Sequence[PlanItem],
    *,
    kind: PlanKind = "plan",
    extra_checklist: tuple[ChecklistItem, ...] = (),
    failure_policy: FailurePolicy | None = None,
    replaces: dict[str, int] | None = None,
    reason: str = "",
) -> PlanBody:
    deps = {n: a.depends_on for n, a in ctx.config.apps.items()}
    try:
        waves = compute_waves([i.app for i in items], deps)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    policy_default = env_config(ctx, env).failure_policy
    return PlanBody(
        env=env,
        kind=kind,
        items=tuple(sorted(items, key=lambda i: i.app)),
        waves=tuple(tuple(w) for w in waves),
        extra_checklist=extra_checklist,
        failure_policy=failure_policy or policy_default,
        replaces=replaces or {},
        reason=reason,
    )


def new_plan_id() -> str:
    return "p-" + secrets.token_hex(4)


def insert_plan(ctx: Context, conn: Tx, body: PlanBody, name: str, state: str) -> str:
    plan_id = new_plan_id()
    now = ctx.now()
    env = policy_for(env_config(ctx, body.env), body.kind)
    digest = digest_for(ctx, env, body)
    created = plans.add(
        conn,
        plan_id,
        env=body.env,
        name=name,
        state=state,
        digest=digest,
        body=body.encode(),
        failure_policy=body.failure_policy,
        created_at=now,
        created_by=ctx.actor.name,
        updated_at=now,
        kind=body.kind,
        result="",
    )
    ctx.audit(
        conn,
        "plan.created",
        {
            "name": name,
            "kind": body.kind,
            "state": state,
            "digest": digest,
            "items": [f"{i.app}@{i.version}" for i in body.items],
            "waves": [list(w) for w in body.waves],
            "failure_policy": body.failure_policy,
        },
        env=body.env,
        plan=plan_id,
        binds=[created],
    )
    return plan_id


def create_plan(
    ctx: Context,
    env: str,
    items: Sequence[str] = (),
    *,
    name: str = "",
    extra_checklist: Sequence[str] = (),
    failure_policy: FailurePolicy | None = None,
    draft: bool = False,
    kind: PlanKind = "plan",
    only_if_runnable: bool = False,
) -> PlanView:
    """Draft a plan shipping `items` ("APP@VERSION" or "APP" for its latest release; none means
    every app whose latest release is not live in `env`). It awaits approval when the
    environment requires any, else it is approved at once; `draft=True` keeps it a draft.

    An open plan with the same digest is returned instead of a twin (`reused=True`).
    `only_if_runnable` (deploy) keeps nothing when policy would block the new plan: the
    BlockedError names every blocker and no plan or event is committed."""
    environment = env_config(ctx, env)
    ctx.require("deploy" if kind == "deploy" else "plan.create", env=env)
    if failure_policy not in (None, "rollback", "halt"):
        raise UsageError(f"failure policy '{failure_policy}': expected rollback or halt")
    state = "draft" if draft else _waiting_state(environment)
    with ctx.db.write() as conn:
        chosen = _items(ctx, conn, env, items)
        body = build_body(
            ctx, env, chosen, kind=kind, extra_checklist=extra_items(extra_checklist),
            failure_policy=failure_policy,
        )  # fmt: skip
        twin = open_twin(ctx, conn, body)
        if twin is not None:
            return replace(_view(ctx, conn, twin), reused=True)
        plan_id = insert_plan(ctx, conn, body, name or _default_name(body), state)
        if only_if_runnable:
            blockers = verdict(ctx, conn, load_plan_row(conn, plan_id)).blockers
            if blockers:
                raise BlockedError(
                    f"{kind} not started, no plan kept: {blockers[0].message}",
                    blockers=list(blockers),
                )
    if state == "awaiting_approval":
        notify(ctx, "plan.awaiting_approval", {"plan": plan_id, "env": env}, env=env, plan=plan_id)
    return get_plan(ctx, plan_id)


def open_twin(ctx: Context, conn: Tx, body: PlanBody) -> PlanRow | None:
    """An open plan (draft, awaiting approval, approved) in the same environment whose digest
    equals what `body` would get now: creating the same plan twice points to the first."""
    digest = plan_digest(policy_for(env_config(ctx, body.env), body.kind), body)
    for row in plans.in_states(conn, body.env, PRE_RUN):
        theirs = PlanBody.decode(row.body)
        if plan_digest(policy_for(env_config(ctx, row.env), theirs.kind), theirs) == digest:
            return row
    return None


def _default_name(body: PlanBody) -> str:
    items = ", ".join(f"{i.app} {i.version}" for i in body.items)
    return f"{body.kind} {items}" if body.kind != "plan" else items


def _edited_items(
    ctx: Context,
    conn: Tx,
    plan_id: str,
    env: str,
    body: PlanBody,
    *,
    add: Sequence[str],
    remove: Sequence[str],
) -> dict[str, PlanItem]:
    """The plan's items by app once `remove` are gone and `add` are in (never none)."""
    items = {i.app: i for i in body.items}
    for app in remove:
        if app not in items:
            raise UsageError(f"--remove {app}: not in plan {plan_id}")
        del items[app]
    for it in _items(ctx, conn, env, add) if add else []:
        items[it.app] = it
    if not items:
        raise UsageError(f"plan {plan_id} would ship nothing (abort it instead)")
    return items


def update_plan(
    ctx: Context,
    plan_id: str,
    *,
    add: Sequence[str] = (),
    remove: Sequence[str] = (),
    extra_checklist: Sequence[str] | None = None,
    failure_policy: FailurePolicy | None = None,
) -> PlanView:
    """Change a plan before it runs. Its digest changes, so earlier approvals stop counting."""
    with ctx.db.read() as conn:
        env = load_plan_row(conn, plan_id).env
    ctx.require("plan.create", env=env, plan=plan_id)
    with ctx.db.write() as conn:
        row = load_plan_row(conn, plan_id, for_update=True)
        if row.state not in PRE_RUN:
            check_transition(plan_id, row.state, "awaiting_approval")
        body = PlanBody.decode(row.body)
        items = _edited_items(ctx, conn, plan_id, row.env, body, add=add, remove=remove)
        new_body = build_body(
            ctx,
            row.env,
            list(items.values()),
            kind=body.kind,
            extra_checklist=body.extra_checklist
            if extra_checklist is None
            else extra_items(extra_checklist),
            failure_policy=failure_policy or body.failure_policy,
            replaces=dict(body.replaces),
        )
        environment = env_config(ctx, row.env)
        digest = digest_for(ctx, environment, new_body)
        new_state = "draft" if row.state == "draft" else _waiting_state(environment)
        if new_state != row.state:
            check_transition(plan_id, row.state, new_state)
        changed = plans.change(
            conn, plan_id, body=new_body.encode(), digest=digest, state=new_state,
            failure_policy=new_body.failure_policy, updated_at=ctx.now(),
        )  # fmt: skip
        ctx.audit(
            conn,
            "plan.changed",
            {
                "old_digest": row.digest,
                "digest": digest,
                "items": [f"{i.app}@{i.version}" for i in new_body.items],
                "state": new_state,
            },
            env=row.env,
            plan=plan_id,
            binds=[changed],
        )
    return get_plan(ctx, plan_id)
