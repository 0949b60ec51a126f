"""Day-2 operations on live targets: pull logs, restart, change token limits.

Each one is audited with its parameters, its result and who ran it; in a protected environment it
needs one of the environment's task roles, and the changing ones need a reason.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shipdeck.core.domain.redact import redact_text, strip_controls
from shipdeck.core.errors import AdapterError, OperationFailed, UsageError
from shipdeck.core.ports import Health, TokenLimits
from shipdeck.core.services.actions import task_roles
from shipdeck.core.services.context import Context
from shipdeck.core.services.plans import lease_live
from shipdeck.core.services.releases import app_config
from shipdeck.core.services.runs import lock_lease
from shipdeck.core.services.runs.lease import _locked
from shipdeck.core.storage import leases


def _guard(
    ctx: Context, permission: str, app: str, env: str, reason: str | None, changes: bool
) -> None:
    app_config(ctx, app)
    if env not in ctx.config.environments:
        raise UsageError(
            f"--env: unknown environment '{env}' (known: {', '.join(ctx.config.env_order())})"
        )
    policy = ctx.config.environments[env]
    ctx.require(permission, app=app, env=env, roles=task_roles(policy))
    if changes and policy.protected and not (reason or "").strip():
        raise UsageError(f"--reason: required for changes in protected environment '{env}'")


def _failed(
    ctx: Context, kind: str, app: str, env: str, params: dict[str, Any], exc: Exception
) -> None:
    with ctx.db.write() as conn:
        ctx.audit(conn, f"{kind}.failed", {**params, "error": str(exc)}, app=app, env=env)


def pull_logs(
    ctx: Context, app: str, env: str, *, lines: int | None = 100, since: datetime | None = None
) -> list[str]:
    """The last lines from the live target, with escape sequences and controls removed."""
    if lines is not None and lines < 1:
        raise UsageError(f"--lines {lines}: must be 1 or more")
    _guard(ctx, "task.logs", app, env, None, changes=False)
    params = {"lines": lines, "since": since.isoformat() if since else None}
    try:
        raw = ctx.log_sources(app, env).tail(lines, since)
    except AdapterError as exc:
        _failed(ctx, "task.logs", app, env, params, exc)
        raise
    with ctx.db.write() as conn:
        ctx.audit(conn, "task.logs", {**params, "returned": len(raw)}, app=app, env=env)
    return [redact_text(strip_controls(line), ctx.secrets) for line in raw]


def follow_logs(ctx: Context, app: str, env: str, stop: threading.Event) -> Iterator[str]:
    """New lines until `stop` is set (Ctrl-C in the CLI, leaving the screen in the TUI)."""
    _guard(ctx, "task.logs", app, env, None, changes=False)
    source = ctx.log_sources(app, env)
    with ctx.db.write() as conn:
        ctx.audit(conn, "task.logs", {"follow": True}, app=app, env=env)
    for line in source.follow(stop):
        yield redact_text(strip_controls(line), ctx.secrets)


TASK_LEASE_SECONDS = (
    600.0  # a crashed task frees it at once (its pid is recorded); a hung one at this
)


@contextmanager
def task_lease(ctx: Context, env: str, what: str) -> Iterator[int]:
    """Hold the environment's lease while a day-2 change acts, so it never overlaps a run.

    Refused with `locked` (exit 3) while a plan or another task holds it; yields the new fencing
    epoch, which the target is given so a stale runner's late commands are refused.
    """
    with ctx.db.write() as conn:
        lease = lock_lease(conn, env)
        if lease_live(lease, ctx.now(), ctx.processes):
            raise _locked(env, lease)  # the sentence a plan is refused with
        epoch = lease.epoch + 1
        now = ctx.now()
        leases.take(
            conn, env, epoch=epoch, holder=ctx.actor.name, plan_id=None, since=now,
            expires_at=now + timedelta(seconds=TASK_LEASE_SECONDS),
            runner=ctx.processes.runner_id(),
        )  # fmt: skip
        ctx.audit(conn, "lease.taken", {"epoch": epoch, "for": what}, env=env)
    try:
        yield epoch
    finally:
        with ctx.db.write() as conn:
            leases.free(conn, env, epoch)
            ctx.audit(conn, "lease.released", {"epoch": epoch, "for": what}, env=env)


def restart(ctx: Context, app: str, env: str, *, reason: str | None = None) -> Health:
    """Restart the live color in place and check it is healthy afterwards.

    The environment lease is held for the whole restart, so no plan can start in between.
    """
    _guard(ctx, "task.restart", app, env, reason, changes=True)
    target_cfg = ctx.config.apps[app].targets.get(env)
    if target_cfg is None:
        raise UsageError(f"{app}/{env}: no target configured")
    target = ctx.targets(app, env, target_cfg.adapter, target_cfg.settings)
    try:
        color = target.live_color()
        if color is None:
            raise UsageError(f"{app}/{env}: nothing is live, nothing to restart")
        with (
            task_lease(ctx, env, f"task.restart {app}") as epoch,
            ctx.effect("task.restart", {"reason": reason, "color": color}, app=app, env=env) as out,
        ):
            out.update(reason=reason, color=color)
            target.restart(epoch)
            health = target.health(color)
            out.update(healthy=health.ok, detail=health.detail)
    finally:
        target.close()
    if not health.ok:
        raise OperationFailed(
            f"{app}/{env}: restarted {color}, but it is not healthy: {health.detail}"
        )
    return health


def read_limits(ctx: Context, app: str, env: str) -> TokenLimits:
    _guard(ctx, "task.logs", app, env, None, changes=False)
    try:
        return ctx.token_limits(app, env).read()
    except AdapterError as exc:
        _failed(ctx, "task.token-limit", app, env, {"read": True}, exc)
        raise


@dataclass(frozen=True)
class LimitChange:
    old: TokenLimits
    new: TokenLimits


def _positive(value: int | None, option: str) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
        raise UsageError(f"{option} {value}: must be a positive integer")


def set_limits(
    ctx: Context,
    app: str,
    env: str,
    *,
    tpm: int | None = None,
    rpm: int | None = None,
    reason: str | None = None,
) -> LimitChange:
    """Apply new tokens/requests per minute (None keeps a value); records old and new."""
    _positive(tpm, "--tpm")
    _positive(rpm, "--rpm")
    if tpm is None and rpm is None:
        raise UsageError("--tpm or --rpm: give at least one new value")
    _guard(ctx, "task.token-limit", app, env, reason, changes=True)
    store = ctx.token_limits(app, env)
    params: dict[str, Any] = {"reason": reason, "tpm": tpm, "rpm": rpm}
    try:
        old = store.read()
    except AdapterError as exc:
        _failed(ctx, "task.token-limit", app, env, params, exc)
        raise
    new = TokenLimits(tpm if tpm is not None else old.tpm, rpm if rpm is not None else old.rpm)
    change = {
        "reason": reason,
        "old": {"tpm": old.tpm, "rpm": old.rpm},
        "new": {"tpm": new.tpm, "rpm": new.rpm},
    }
    with (
        task_lease(ctx, env, f"task.token-limit {app}"),
        ctx.effect("task.token-limit", change, app=app, env=env) as out,
    ):
        store.write(new)
        out.update(change)
    return LimitChange(old, new)
