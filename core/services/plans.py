"""Plans before they run: drafting, approvals, checklist, overrides, and the policy verdict.

Every function here takes a Context, is safe to call from a worker thread, writes its audit event
in the same transaction as its change, and returns plain dataclasses (PlanView, PlanSummary,
ChecklistView, OverrideView), never table rows. Running plans is core.services.runs.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Table, delete, insert, select, update
from sqlalchemy.engine import CursorResult, Row

from shipdeck.core.domain import policy
from shipdeck.core.domain.config import ChecklistItem, Environment
from shipdeck.core.domain.model_gates import ModelFact
from shipdeck.core.domain.plan import (
    PRE_RUN,
    FailurePolicy,
    PlanBody,
    PlanItem,
    PlanKind,
    check_transition,
    checklist,
    extra_items,
    label,
    parse_item_spec,
    plan_digest,
    policy_changes,
    policy_for,
    policy_snapshot,
)
from shipdeck.core.domain.redact import redact_text
from shipdeck.core.domain.release import ReleaseRecord
from shipdeck.core.domain.waves import compute_waves
from shipdeck.core.domain.windows import WindowState, window_state
from shipdeck.core.errors import (
    BlockedError,
    Blocker,
    ConflictError,
    NotFoundError,
    OperationFailed,
    PermissionDenied,
    UsageError,
)
from shipdeck.core.services.context import Context
from shipdeck.core.services.history import (
    ItemChange,
    RollbackInfo,
    Supersession,
    item_changes,
    rollback_info,
    superseded,
)
from shipdeck.core.services.notify import notify
from shipdeck.core.services.releases import (
    app_config,
    find_release,
    latest_release,
    proven_release,
)
from shipdeck.core.storage import binding
from shipdeck.core.storage.tables import (
    APPROVALS,
    AUDIT_EVENTS,
    DEPLOYMENTS,
    LEASES,
    OVERRIDES,
    PLANS,
    RELEASES,
    STEPS,
    TICKS,
)

MAX_OVERRIDE = timedelta(hours=24)
DEFAULT_OVERRIDE = timedelta(hours=1)
CHECK_TIMEOUT = 600.0
OUTPUT_LIMIT = 64 * 1024
_APPROVAL_KINDS = frozenset({"approvals_missing", "stale_approval", "self_approval"})


# --- views -----------------------------------------------------------------------------------


def _plain(view: Any, **rename: str) -> dict[str, Any]:
    """A view's fields in order as JSON values (datetimes as ISO text, tuples as lists), so the
    document keys follow the dataclass and cannot drift from it."""
    out: dict[str, Any] = {}
    for f in fields(view):
        value = getattr(view, f.name)
        if isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, tuple):
            value = [v.as_dict() if hasattr(v, "as_dict") else v for v in value]
        elif hasattr(value, "as_dict"):
            value = value.as_dict()
        out[rename.get(f.name, f.name)] = value
    return out


@dataclass(frozen=True)
class ItemView:
    app: str
    version: str
    commit: str
    digest: str
    release_author: str
    wave: int


@dataclass(frozen=True)
class ApprovalView:
    by: str
    at: datetime
    digest: str
    decision: str  # approve | reject
    comment: str
    current: bool  # bound to the plan's current digest


@dataclass(frozen=True)
class ChecklistView:
    item: str
    text: str
    command: tuple[str, ...] | None
    done: bool
    by: str | None
    at: datetime | None
    ok: bool | None
    output: str


@dataclass(frozen=True)
class OverrideView:
    id: int
    plan_id: str
    env: str
    by: str
    reason: str
    at: datetime
    until: datetime
    active: bool
    acknowledged_by: str | None
    acknowledged_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return _plain(self, plan_id="plan")


@dataclass(frozen=True)
class StepView:
    id: int
    epoch: int
    wave: int
    app: str
    step: str
    state: str  # started | done | failed
    detail: str
    at: datetime

    def as_dict(self) -> dict[str, Any]:
        return _plain(self)


@dataclass(frozen=True)
class LockView:
    holder: str
    plan_id: str | None
    since: datetime | None
    expires_at: datetime | None
    epoch: int


@dataclass(frozen=True)
class PlanSummary:
    id: str
    env: str
    name: str
    kind: str
    state: str
    digest: str
    apps: tuple[str, ...]
    created_by: str
    created_at: datetime
    updated_at: datetime
    result: str
    rollback: RollbackInfo | None = None  # kind rollback: from/to, by, reason, approvals note
    superseded_by: tuple[Supersession, ...] = ()  # later plans that replaced what this one shipped

    def as_dict(self) -> dict[str, Any]:
        return _plain(self)


@dataclass(frozen=True)
class PlanView:
    id: str
    env: str
    name: str
    kind: str
    state: str
    digest: str
    created_by: str
    created_at: datetime
    updated_at: datetime
    failure_policy: str
    items: tuple[ItemView, ...]
    waves: tuple[tuple[str, ...], ...]
    approvals: tuple[ApprovalView, ...]
    approvals_required: int
    approval_roles: tuple[str, ...]
    checklist: tuple[ChecklistView, ...]
    blockers: tuple[Blocker, ...]
    overrides: tuple[OverrideView, ...]
    steps: tuple[StepView, ...]
    window: WindowState
    window_text: str
    lock: LockView | None
    started_at: datetime | None
    finished_at: datetime | None
    run_epoch: int | None
    abort_requested_by: str | None
    result: str
    extra: dict[str, Any] = field(default_factory=dict)
    warnings: tuple[Blocker, ...] = ()  # model scan findings this environment only warns about
    changes: tuple[ItemChange, ...] = ()  # before it runs: each item against what is live now
    rollback: RollbackInfo | None = None
    superseded_by: tuple[Supersession, ...] = ()
    reused: bool = False  # create_plan found an open plan with this digest and returned it

    @property
    def downgrades(self) -> tuple[ItemChange, ...]:
        return tuple(c for c in self.changes if c.downgrade)

    @property
    def runnable(self) -> bool:
        return self.state in ("awaiting_approval", "approved") and not self.blockers

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "env": self.env,
            "name": self.name,
            "kind": self.kind,
            "state": self.state,
            "digest": self.digest,
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
            "failure_policy": self.failure_policy,
            "items": [
                {
                    "app": i.app,
                    "version": i.version,
                    "commit": i.commit,
                    "digest": i.digest,
                    "wave": i.wave,
                    "release_author": i.release_author,
                }
                for i in self.items
            ],
            "waves": [list(w) for w in self.waves],
            "approvals": [_plain(a) for a in self.approvals],
            "approvals_required": self.approvals_required,
            "checklist": [
                {
                    "item": c.item,
                    "text": c.text,
                    "done": c.done,
                    "by": c.by,
                    "at": c.at.isoformat() if c.at else None,
                    "ok": c.ok,
                    "command": list(c.command) if c.command else None,
                    "output": c.output,
                }
                for c in self.checklist
            ],
            "blockers": [b.as_dict() for b in self.blockers],
            "warnings": [w.as_dict() for w in self.warnings],
            "overrides": [o.as_dict() for o in self.overrides],
            "window": {**self.window.as_dict(), "text": self.window_text},
            "lock": None
            if self.lock is None
            else {
                "holder": self.lock.holder,
                "plan": self.lock.plan_id,
                "since": self.lock.since.isoformat() if self.lock.since else None,
            },
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "abort_requested_by": self.abort_requested_by,
            "result": self.result,
            "steps": [s.as_dict() for s in self.steps],
            "changes": [c.as_dict() for c in self.changes],
            "downgrades": [c.sentence for c in self.downgrades],
            "rollback": self.rollback.as_dict() if self.rollback else None,
            "superseded_by": [x.as_dict() for x in self.superseded_by],
            "reused": self.reused,
        }


# --- shared lookups --------------------------------------------------------------------------


def new_row_id(result: CursorResult[Any]) -> int:
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def env_config(ctx: Context, env: str) -> Environment:
    try:
        return ctx.config.environments[env]
    except KeyError:
        known = ", ".join(ctx.config.env_order())
        raise NotFoundError(f"unknown environment '{env}' (known: {known})") from None


def load_plan_row(conn: Connection, plan_id: str, *, for_update: bool = False) -> Row[Any]:
    query = select(PLANS).where(PLANS.c.id == plan_id)
    if for_update:
        query = query.with_for_update()
    row = conn.execute(query).first()
    if row is None:
        raise NotFoundError(f"no plan '{plan_id}' (see 'shipdeck plan list')")
    return row


def untargeted(ctx: Context, env: str, apps: Sequence[str]) -> list[str]:
    """The apps shipdeck.toml no longer deploys to `env` (removed, or their target removed):
    configuration drift after a plan was drafted, which policy and the runner both refuse."""
    return [a for a in apps if a not in ctx.config.apps or env not in ctx.config.apps[a].targets]


def window_tz(ctx: Context, env: str) -> str:
    specs, _ = ctx.config.window_specs(env)
    return specs[0].timezone if specs else "UTC"


def env_window(ctx: Context, env: str, now: datetime) -> WindowState:
    return window_state(*ctx.config.window_specs(env), now)


_HOST = socket.gethostname()


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _start_time(pid: int) -> str | None:
    try:
        data = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    stat = data[data.rindex(b")") + 2 :].split()
    if stat[0] in (b"Z", b"X"):
        return None
    return stat[19].decode()


def runner_id(pid: int | None = None) -> str:
    """host|boot id|pid|start time: identifies one process for the lifetime of the machine."""
    pid = os.getpid() if pid is None else pid
    return f"{_HOST}|{_boot_id()}|{pid}|{_start_time(pid) or '?'}"


def runner_dead(runner: str | None) -> bool:
    """True only when the runner provably is gone: same host and boot, and its process is not."""
    if not runner:
        return False
    parts = runner.split("|")
    if len(parts) != 4 or parts[0] != _HOST or parts[1] != _boot_id():
        return False
    try:
        pid = int(parts[2])
    except ValueError:
        return False
    return _start_time(pid) != parts[3]


def lease_live(row: Row[Any] | None, now: datetime) -> bool:
    """A lease protects its plan while it has not expired and its runner is not known dead."""
    if row is None or row.holder is None:
        return False
    if row.expires_at is not None and row.expires_at <= now:
        return False
    return not runner_dead(row.runner)


def read_lock(conn: Connection, env: str, now: datetime) -> LockView | None:
    row = conn.execute(select(LEASES).where(LEASES.c.env == env)).first()
    if not lease_live(row, now):
        return None
    assert row is not None
    return LockView(row.holder, row.plan_id, row.since, row.expires_at, row.epoch)


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
    return plan_digest(env, body, ctx.config.windows, ctx.config.freezes)


def snapshot_for(ctx: Context, env: Environment) -> dict[str, Any]:
    return policy_snapshot(env, ctx.config.windows, ctx.config.freezes)


def _say_what_changed(
    ctx: Context, conn: Connection, env: Environment, blocker: Blocker, rows: Sequence[Any]
) -> Blocker:
    """A stale approval names the policy definitions that changed since it was given (from the
    snapshot its audit event keeps), so "the plan changed" is never all an approver hears."""
    if blocker.kind != "stale_approval":
        return blocker
    seqs = [r.audit_seq for r in rows if r.digest != blocker.detail.get("digest") and r.audit_seq]
    if not seqs:
        return blocker
    payload = conn.execute(select(AUDIT_EVENTS.c.payload).where(AUDIT_EVENTS.c.seq == max(seqs)))
    given = json.loads(bytes(payload.scalar_one())).get("policy")
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


def _editors(conn: Connection, plan_id: str) -> tuple[str, ...]:
    """Everyone the audit log shows changing or submitting this plan (see policy.authors)."""
    return tuple(
        conn.execute(
            select(AUDIT_EVENTS.c.actor)
            .where(AUDIT_EVENTS.c.plan == plan_id, AUDIT_EVENTS.c.kind.in_(_EDITS))
            .distinct()
        ).scalars()
    )


def verdict(ctx: Context, conn: Connection, row: Row[Any]) -> Verdict:
    body = PlanBody.decode(row.body)
    env = policy_for(env_config(ctx, row.env), body.kind)
    digest = digest_for(ctx, env, body)
    now = ctx.now()
    items = tuple(checklist(env, body))
    facts = policy.PlanFacts(
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
    # Decisions count only rows their audit events vouch for; the others are named as blockers.
    approval_rows, bad = binding.trusted_rows(
        conn,
        APPROVALS,
        conn.execute(
            select(APPROVALS).where(APPROVALS.c.plan_id == row.id).order_by(APPROVALS.c.id)
        ),
    )
    tick_rows, bad_ticks = binding.trusted_rows(
        conn, TICKS, conn.execute(select(TICKS).where(TICKS.c.plan_id == row.id))
    )
    override_rows, bad_overrides = binding.trusted_rows(
        conn, OVERRIDES, conn.execute(select(OVERRIDES).where(OVERRIDES.c.plan_id == row.id))
    )
    _, bad_plan = binding.trusted_rows(conn, PLANS, [row])
    unverified = [*bad_plan, *bad, *bad_ticks, *bad_overrides]
    approvals = tuple(
        policy.ApprovalFact(a.by, a.at, a.digest, a.decision, tuple(ctx.config.roles_of(a.by)))
        for a in approval_rows
    )
    ticks = {t.item: policy.TickFact(t.item, t.by, t.at, bool(t.ok)) for t in tick_rows}
    overrides = tuple(policy.OverrideFact(o.id, o.by, o.reason, o.until) for o in override_rows)
    window = env_window(ctx, row.env, now)
    lock = read_lock(conn, row.env, now)
    promotion: list[policy.PromotionFact] = []
    previous = ctx.config.previous_env(row.env)
    if env.requires_previous and previous is not None and body.kind != "rollback":
        shipped, bad_deployments = binding.trusted_rows(
            conn,
            DEPLOYMENTS,
            conn.execute(
                select(DEPLOYMENTS).where(
                    DEPLOYMENTS.c.env == previous,
                    DEPLOYMENTS.c.outcome == "succeeded",
                    DEPLOYMENTS.c.kind == "deploy",
                    DEPLOYMENTS.c.release_id.in_([i.release_id for i in body.items]),
                )
            ),
        )
        unverified.extend(bad_deployments)
        done = {r.release_id for r in shipped}
        promotion = [
            policy.PromotionFact(i.app, i.version, previous, i.release_id in done)
            for i in body.items
        ]
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


def model_facts(conn: Connection, body: PlanBody) -> list[ModelFact]:
    """The model reports the plan's releases recorded at release time (their manifests)."""
    ids = [i.release_id for i in body.items]
    rows = list(conn.execute(select(RELEASES).where(RELEASES.c.id.in_(ids)))) if ids else []
    return [
        ModelFact(rec.app, rec.version, a.name, a.model)
        for rec in sorted((proven_release(conn, r) for r in rows), key=lambda r: r.app)
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


# --- reading ---------------------------------------------------------------------------------


def _summary(
    ctx: Context, conn: Connection, row: Row[Any], later: tuple[Supersession, ...]
) -> PlanSummary:
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
    query = select(PLANS).order_by(PLANS.c.created_at.desc(), PLANS.c.id).limit(limit)
    if env is not None:
        env_config(ctx, env)
        query = query.where(PLANS.c.env == env)
    if state is not None:
        query = query.where(PLANS.c.state == state)
    with ctx.db.read() as conn:
        rows = conn.execute(query).all()
        later = superseded(conn, [r.id for r in rows])
        return [_summary(ctx, conn, r, later.get(r.id, ())) for r in rows]


def _override_view(o: Row[Any], env: str, now: datetime) -> OverrideView:
    return OverrideView(
        o.id, o.plan_id, env, o.by, o.reason, o.at, o.until, o.until > now,
        o.acknowledged_by, o.acknowledged_at,
    )  # fmt: skip


def steps_of(conn: Connection, plan_id: str, after_id: int = 0) -> list[StepView]:
    rows = conn.execute(
        select(STEPS).where(STEPS.c.plan_id == plan_id, STEPS.c.id > after_id).order_by(STEPS.c.id)
    )
    return [StepView(r.id, r.epoch, r.wave, r.app, r.step, r.state, r.detail, r.at) for r in rows]


def get_plan(ctx: Context, plan_id: str) -> PlanView:
    """The whole plan: items, waves, approvals, checklist, blockers, overrides and run journal."""
    with ctx.db.read() as conn:
        row = load_plan_row(conn, plan_id)
        return _view(ctx, conn, row)


def _view(ctx: Context, conn: Connection, row: Row[Any]) -> PlanView:
    v = verdict(ctx, conn, row)
    now = ctx.now()
    wave_of = {app: n for n, wave in enumerate(v.body.waves) for app in wave}
    ticks = {t.item: t for t in conn.execute(select(TICKS).where(TICKS.c.plan_id == row.id))}
    checklist_views = []
    for item in v.facts.checklist:
        t = ticks.get(item.id)
        checklist_views.append(
            ChecklistView(
                item.id,
                item.text,
                item.command,
                bool(t is not None and t.ok),
                t.by if t else None,
                t.at if t else None,
                bool(t.ok) if t else None,
                t.output if t else "",
            )
        )
    approvals = tuple(
        ApprovalView(a.by, a.at, a.digest, a.decision, a.comment, a.digest == v.digest)
        for a in conn.execute(
            select(APPROVALS).where(APPROVALS.c.plan_id == row.id).order_by(APPROVALS.c.id)
        )
    )
    overrides = tuple(
        _override_view(o, row.env, now)
        for o in conn.execute(
            select(OVERRIDES).where(OVERRIDES.c.plan_id == row.id).order_by(OVERRIDES.c.id)
        )
    )
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
    )


def _window_text(ctx: Context, env: str, window: WindowState, now: datetime) -> str:
    from shipdeck.core.domain.windows import describe_next

    return describe_next(window, window_tz(ctx, env), now)


# --- drafting ----------------------------------------------------------------------------------


def _release_for(
    conn: Connection, ctx: Context, env: str, app: str, version: str | None
) -> ReleaseRecord:
    spec = app_config(ctx, app)
    if env not in spec.targets:
        raise UsageError(f"{app} has no target in {env} (add [apps.{app}.targets.{env}])")
    rec = find_release(conn, app, version) if version else latest_release(conn, app)
    if rec is None:
        what = f"release {app} {version}" if version else f"release of {app}"
        raise NotFoundError(f"no {what} (see 'shipdeck release list {app}')")
    return rec


def _live_digests(conn: Connection, env: str) -> dict[str, str]:
    from shipdeck.core.services.status import live_deployments

    return {app: r.digest for (app, e), r in live_deployments(conn).items() if e == env}


def _items(ctx: Context, conn: Connection, env: str, specs: Sequence[str]) -> list[PlanItem]:
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


def insert_plan(ctx: Context, conn: Connection, body: PlanBody, name: str, state: str) -> str:
    plan_id = new_plan_id()
    now = ctx.now()
    env = policy_for(env_config(ctx, body.env), body.kind)
    digest = digest_for(ctx, env, body)
    conn.execute(
        insert(PLANS).values(
            id=plan_id,
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
        binds=[(PLANS, {"id": plan_id})],
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


def open_twin(ctx: Context, conn: Connection, body: PlanBody) -> Row[Any] | None:
    """An open plan (draft, awaiting approval, approved) in the same environment whose digest
    equals what `body` would get now: creating the same plan twice points to the first."""
    digest = plan_digest(policy_for(env_config(ctx, body.env), body.kind), body)
    rows = conn.execute(
        select(PLANS)
        .where(PLANS.c.env == body.env, PLANS.c.state.in_(sorted(PRE_RUN)))
        .order_by(PLANS.c.created_at)
    ).all()
    for row in rows:
        theirs = PlanBody.decode(row.body)
        if plan_digest(policy_for(env_config(ctx, row.env), theirs.kind), theirs) == digest:
            return row
    return None


def _default_name(body: PlanBody) -> str:
    items = ", ".join(f"{i.app} {i.version}" for i in body.items)
    return f"{body.kind} {items}" if body.kind != "plan" else items


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
        items = {i.app: i for i in body.items}
        for app in remove:
            if app not in items:
                raise UsageError(f"--remove {app}: not in plan {plan_id}")
            del items[app]
        for it in _items(ctx, conn, row.env, add) if add else []:
            items[it.app] = it
        if not items:
            raise UsageError(f"plan {plan_id} would ship nothing (abort it instead)")
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
        changed = binding.change(
            conn, PLANS, {"id": plan_id}, body=new_body.encode(), digest=digest, state=new_state,
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
    conn: Connection,
    row: Row[Any],
    new: str,
    kind: str,
    payload: dict[str, Any],
    binds: Sequence[tuple[Table, Mapping[str, Any]]] = (),
    **values: Any,
) -> None:
    """Move the plan to `new` (with any other `values` of its row) under one rebinding event."""
    if new != row.state:
        check_transition(row.id, row.state, new)
    changed = binding.change(conn, PLANS, {"id": row.id}, state=new, updated_at=ctx.now(), **values)
    ctx.audit(
        conn,
        kind,
        {**payload, "from": row.state, "state": new},
        env=row.env,
        plan=row.id,
        binds=[*binds, changed],
    )


# --- approvals ---------------------------------------------------------------------------------


def _pre_run_row(conn: Connection, plan_id: str, what: str) -> Row[Any]:
    row = load_plan_row(conn, plan_id, for_update=True)
    if row.state == "draft":
        raise ConflictError(f"plan {plan_id} is a draft: submit it before it can be {what}")
    if row.state not in PRE_RUN:
        raise ConflictError(f"plan {plan_id} is {label(row.state)}: it can no longer be {what}")
    return row


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
            what = (
                "drafted this plan"
                if ctx.actor.name == row.created_by
                else "edited or submitted this plan"
                if ctx.actor.name in v.facts.editors
                else "authored a release in it"
            )
            refused = Blocker(
                "self_approval",
                f"{ctx.actor.name} {what} and cannot approve it: approvals must come from someone else",
                {"by": ctx.actor.name},
            )
            ctx.audit(
                conn, "plan.approval_refused", {"reason": refused.message, "digest": v.digest},
                env=row.env, plan=plan_id,
            )  # fmt: skip
        elif not any(
            a.by == ctx.actor.name and a.digest == v.digest and a.decision == "approve"
            for a in v.approvals
        ):
            now = ctx.now()
            approval_id = new_row_id(
                conn.execute(
                    insert(APPROVALS).values(
                        plan_id=plan_id, by=ctx.actor.name, at=now, digest=v.digest,
                        decision="approve", comment=comment,
                    )
                )
            )  # fmt: skip
            mine = policy.ApprovalFact(
                ctx.actor.name, now, v.digest, "approve", tuple(ctx.actor.roles)
            )
            approved_now = _approved_now(replace(v, approvals=(*v.approvals, mine)))
            new_state = "approved" if approved_now else "awaiting_approval"
            changed = binding.change(
                conn, PLANS, {"id": plan_id}, state=new_state, digest=v.digest, updated_at=now
            )
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
                binds=[(APPROVALS, {"id": approval_id}), changed],
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
        rejection_id = new_row_id(
            conn.execute(
                insert(APPROVALS).values(
                    plan_id=plan_id, by=ctx.actor.name, at=ctx.now(), digest=digest,
                    decision="reject", comment=reason,
                )
            )
        )  # fmt: skip
        _set_state(
            ctx, conn, row, "aborted", "plan.rejected", {"reason": reason, "digest": digest},
            binds=[(APPROVALS, {"id": rejection_id})],
            result=f"rejected by {ctx.actor.name}: {reason}",
        )  # fmt: skip
    return get_plan(ctx, plan_id)


# --- checklist ---------------------------------------------------------------------------------


def _run_check(
    ctx: Context, plan_id: str, env: str, apps: list[str], argv: tuple[str, ...]
) -> tuple[bool, str, int | None]:
    child_env = {
        **os.environ,
        "SHIPDECK_PLAN": plan_id,
        "SHIPDECK_ENV": env,
        "SHIPDECK_APPS": ",".join(apps),
        "SHIPDECK_WORKSPACE": str(ctx.workspace),
    }
    try:
        done = subprocess.run(
            list(argv), cwd=ctx.workspace, env=child_env, capture_output=True,
            timeout=CHECK_TIMEOUT, shell=False, stdin=subprocess.DEVNULL, check=False,
        )  # fmt: skip
    except FileNotFoundError:
        return False, f"command not found: {argv[0]}", None
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"") + (exc.stderr or b"")
        return False, _tail(out) + f"\n(timed out after {CHECK_TIMEOUT:g}s)", None
    except OSError as exc:
        return False, f"cannot run {argv[0]}: {exc.strerror or exc}", None
    return done.returncode == 0, _tail(done.stdout + done.stderr), done.returncode


def _tail(raw: bytes) -> str:
    text = raw.decode("utf-8", "replace")
    return text if len(text) <= OUTPUT_LIMIT else "…" + text[-OUTPUT_LIMIT:]


def check_item(ctx: Context, plan_id: str, item: str, note: str = "") -> ChecklistView:
    """Tick a checklist item as the acting person, or, for an item that names a command, run
    that command (argv, no shell) and tick it only if it succeeds. The output is kept with the
    plan either way; a failed command raises OperationFailed (exit 5) after recording it."""
    with ctx.db.read() as conn:
        row = load_plan_row(conn, plan_id)
        v = verdict(ctx, conn, row)
    ctx.require("plan.check", env=row.env, plan=plan_id)
    entry = next((c for c in v.facts.checklist if c.id == item or c.text == item), None)
    if entry is None:
        known = ", ".join(f"'{c.id}'" for c in v.facts.checklist) or "none"
        raise NotFoundError(f"plan {plan_id} has no checklist item '{item}' (items: {known})")
    if row.state not in PRE_RUN:
        raise ConflictError(f"plan {plan_id} is {label(row.state)}: its checklist is closed")
    ok, output, code = True, note, None
    if entry.command:
        ok, output, code = _run_check(ctx, plan_id, row.env, v.body.apps, entry.command)
    output = redact_text(output, ctx.secrets)  # a check may print a token: never stored as is
    now = ctx.now()
    with ctx.db.write() as conn:
        conn.execute(delete(TICKS).where(TICKS.c.plan_id == plan_id, TICKS.c.item == entry.id))
        conn.execute(
            insert(TICKS).values(
                plan_id=plan_id, item=entry.id, by=ctx.actor.name, at=now, output=output, ok=ok
            )
        )
        ctx.audit(
            conn,
            "plan.checked",
            {"item": entry.id, "ok": ok, "command": list(entry.command) if entry.command else None,
             "exit_code": code},
            env=row.env,
            plan=plan_id,
            binds=[(TICKS, {"plan_id": plan_id, "item": entry.id})],
        )  # fmt: skip
    if not ok:
        last = next((ln for ln in reversed(output.splitlines()) if ln.strip()), "no output")
        raise OperationFailed(
            f"checklist item '{entry.id}': command {entry.command[0] if entry.command else ''} "
            f"failed ({'exit ' + str(code) if code is not None else 'did not finish'}): {last[:200]}"
        )
    return ChecklistView(
        entry.id, entry.text, entry.command, True, ctx.actor.name, now, True, output
    )


# --- overrides -----------------------------------------------------------------------------------


def override(
    ctx: Context, plan_id: str, reason: str, until: timedelta | datetime | None = None
) -> OverrideView:
    """Break-glass past a window or freeze: only the environment's override roles, for at most
    MAX_OVERRIDE, recorded as its own audit event, and open for review until someone else
    acknowledges it."""
    if not reason.strip():
        raise UsageError("--reason is required for an override")
    with ctx.db.read() as conn:
        row = load_plan_row(conn, plan_id)
    env = env_config(ctx, row.env)
    if not env.override_roles:
        why = f"environment {env.name} allows no overrides (no override_roles)"
        with ctx.db.write() as conn:
            ctx.audit(conn, "access.denied", {"permission": "override", "reason": why},
                      env=env.name, plan=plan_id)  # fmt: skip
        raise PermissionDenied(f"not permitted: {why}")
    ctx.require("override", env=env.name, plan=plan_id, roles=env.override_roles)
    now = ctx.now()
    end = until if isinstance(until, datetime) else now + (until or DEFAULT_OVERRIDE)
    if end <= now:
        raise UsageError("--until must be in the future")
    if end - now > MAX_OVERRIDE:
        raise UsageError(
            f"--until: an override lasts at most {MAX_OVERRIDE.total_seconds() / 3600:g}h"
        )
    with ctx.db.write() as conn:
        row = load_plan_row(conn, plan_id, for_update=True)
        if row.state not in (*PRE_RUN, "running"):
            raise ConflictError(f"plan {plan_id} is {label(row.state)}: nothing to override")
        window = env_window(ctx, row.env, now)
        new_id = new_row_id(
            conn.execute(
                insert(OVERRIDES).values(
                    plan_id=plan_id, by=ctx.actor.name, reason=reason, at=now, until=end
                )
            )
        )
        ctx.audit(
            conn,
            "override.used",
            {"override": new_id, "reason": reason, "until": end.isoformat(),
             "window_open": window.open, "window_reason": window.reason},
            env=row.env,
            plan=plan_id,
            binds=[(OVERRIDES, {"id": new_id})],
        )  # fmt: skip
        o = conn.execute(select(OVERRIDES).where(OVERRIDES.c.id == new_id)).one()
    notify(ctx, "override.used", {"plan": plan_id, "reason": reason, "until": end.isoformat()},
           env=row.env, plan=plan_id)  # fmt: skip
    return _override_view(o, row.env, now)


def open_reviews(ctx: Context) -> list[OverrideView]:
    """Overrides nobody else has acknowledged yet, oldest first."""
    now = ctx.now()
    with ctx.db.read() as conn:
        rows = conn.execute(
            select(OVERRIDES, PLANS.c.env)
            .join(PLANS, PLANS.c.id == OVERRIDES.c.plan_id)
            .where(OVERRIDES.c.acknowledged_by.is_(None))
            .order_by(OVERRIDES.c.id)
        ).all()
    return [_override_view(r, r.env, now) for r in rows]


def acknowledge_override(ctx: Context, override_id: int, note: str = "") -> OverrideView:
    """Close an override's review. Its own author cannot: review means a second person."""
    with ctx.db.read() as conn:
        found = conn.execute(
            select(OVERRIDES, PLANS.c.env)
            .join(PLANS, PLANS.c.id == OVERRIDES.c.plan_id)
            .where(OVERRIDES.c.id == override_id)
        ).first()
    if found is None:
        raise NotFoundError(f"no override {override_id} (see 'shipdeck review list')")
    ctx.require(("plan.approve", "override"), env=found.env, plan=found.plan_id)
    if found.by == ctx.actor.name:
        raise ConflictError(
            f"override {override_id} was used by {ctx.actor.name}: someone else must acknowledge it"
        )
    now = ctx.now()
    with ctx.db.write() as conn:
        current = conn.execute(
            select(OVERRIDES).where(OVERRIDES.c.id == override_id).with_for_update()
        ).one()
        if current.acknowledged_by is None:
            conn.execute(
                update(OVERRIDES)
                .where(OVERRIDES.c.id == override_id)
                .values(acknowledged_by=ctx.actor.name, acknowledged_at=now)
            )
            ctx.audit(
                conn, "override.acknowledged", {"override": override_id, "by_user": found.by, "note": note},
                env=found.env, plan=found.plan_id, binds=[(OVERRIDES, {"id": override_id})],
            )  # fmt: skip
        o = conn.execute(select(OVERRIDES).where(OVERRIDES.c.id == override_id)).one()
    return _override_view(o, found.env, now)
