"""Break-glass overrides past a window or freeze, and their review by someone else."""

from __future__ import annotations

from datetime import datetime, timedelta

from shipdeck.core.domain.plan import PRE_RUN, label
from shipdeck.core.errors import ConflictError, NotFoundError, PermissionDenied, UsageError
from shipdeck.core.services.context import Context
from shipdeck.core.services.notify import notify
from shipdeck.core.services.plans.lookups import env_config, env_window, load_plan_row
from shipdeck.core.services.plans.views import OverrideView, _override_view
from shipdeck.core.storage import audit, overrides

MAX_OVERRIDE = timedelta(hours=24)
DEFAULT_OVERRIDE = timedelta(hours=1)


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
        new_id, bind = overrides.add(conn, plan_id, ctx.actor.name, reason, now, end)
        ctx.audit(
            conn,
            "override.used",
            {"override": new_id, "reason": reason, "until": end.isoformat(),
             "window_open": window.open, "window_reason": window.reason},
            env=row.env,
            plan=plan_id,
            binds=[bind],
        )  # fmt: skip
        o = overrides.get(conn, new_id)
    assert o is not None
    notify(ctx, "override.used", {"plan": plan_id, "reason": reason, "until": end.isoformat()},
           env=row.env, plan=plan_id)  # fmt: skip
    return _override_view(o, now)


def open_reviews(ctx: Context) -> list[OverrideView]:
    """Overrides nobody else has acknowledged yet, oldest first."""
    now = ctx.now()
    with ctx.db.read() as conn:
        rows = overrides.unacknowledged(conn)
    return [_override_view(r, now) for r in rows]


def acknowledge_override(ctx: Context, override_id: int, note: str = "") -> OverrideView:
    """Close an override's review. Its own author cannot: review means a second person."""
    with ctx.db.read() as conn:
        found = overrides.get(conn, override_id)
    if found is None:
        raise NotFoundError(f"no override {override_id} (see 'shipdeck review list')")
    ctx.require(("plan.approve", "override"), env=found.env, plan=found.plan_id)
    if found.by == ctx.actor.name:
        raise ConflictError(
            f"override {override_id} was used by {ctx.actor.name}: someone else must acknowledge it"
        )
    now = ctx.now()
    with ctx.db.write() as conn:
        audit.lock(conn)  # two acknowledgers racing: the second sees the first's
        current = overrides.get(conn, override_id)
        if current is not None and current.acknowledged_by is None:
            bind = overrides.acknowledge(conn, override_id, ctx.actor.name, now)
            ctx.audit(
                conn, "override.acknowledged", {"override": override_id, "by_user": found.by, "note": note},
                env=found.env, plan=found.plan_id, binds=[bind],
            )  # fmt: skip
        o = overrides.get(conn, override_id)
    assert o is not None
    return _override_view(o, now)
