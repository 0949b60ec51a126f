"""`rollback`: one app back to the release live before the current one, as a rollback plan."""

from __future__ import annotations

from collections.abc import Callable

from shipdeck.core.domain.plan import PlanItem
from shipdeck.core.errors import BlockedError, Blocker
from shipdeck.core.services.context import Context
from shipdeck.core.services.history import approvals_note
from shipdeck.core.services.notify import notify
from shipdeck.core.services.plans import StepView, build_body, env_config, insert_plan, lease_live
from shipdeck.core.services.rollbacks import check_reason, check_target, choose
from shipdeck.core.services.runs.engine import _Engine
from shipdeck.core.services.runs.lease import RunTicket, _locked, _take_lease, lock_lease
from shipdeck.core.services.runs.recovery import reconcile
from shipdeck.core.services.runs.views import RunResult
from shipdeck.core.storage import runs

# --- rollback --------------------------------------------------------------------------------


def rollback(
    ctx: Context,
    app: str,
    env: str,
    reason: str = "",
    progress: Callable[[StepView], None] | None = None,
) -> RunResult:
    """Switch `app` in `env` back to the release live before the current one: instant while the
    old color is still warm (staging it again is a no-op), a redeploy otherwise. Runs as a
    one-app rollback plan under the environment lease; needs the 'rollback' permission, and a
    reason in a protected environment; no window holds it (it is how incidents end). Where the
    environment sets `rollback_approvals`, the plan waits for them instead: BlockedError (exit 3)
    names it, and `plan run` runs it once approved."""
    check_target(ctx, app, env)
    ctx.require("rollback", app=app, env=env)
    check_reason(ctx, env, reason)
    reconcile(ctx, env=env, auto=True)
    needs = env_config(ctx, env).rollback_approvals
    with ctx.db.write() as conn:
        lease = lock_lease(conn, env)
        if lease_live(lease, ctx.now(), ctx.processes):
            raise _locked(env, lease)
        choice = choose(conn, app, env)
        current, rel = choice.current, choice.release
        item = PlanItem(app, rel.version, rel.id, rel.digest, rel.commit, rel.created_by)
        body = build_body(ctx, env, [item], kind="rollback", failure_policy="halt",
                          replaces={app: current.id}, reason=reason)  # fmt: skip
        name = f"rollback {app} {current.version} -> {rel.version}"
        plan_id = insert_plan(ctx, conn, body, name, "awaiting_approval" if needs else "running")
        if needs:
            note = approvals_note(env_config(ctx, env))
            blocker = Blocker("approvals_missing", f"rollback plan {plan_id} {note}")
            pending = BlockedError(
                f"{blocker.message}; once approved: shipdeck plan run {plan_id}",
                blockers=[blocker],
            )
        else:
            pending = None
            epoch = _take_lease(ctx, conn, lease, plan_id)
            now = ctx.now()
            started = runs.start_rollback(conn, plan_id, epoch, now, reason)
            ctx.audit(
                conn, "run.started",
                {"epoch": epoch, "kind": "rollback", "from_version": current.version,
                 "version": rel.version, "reason": reason},
                app=app, env=env, plan=plan_id, binds=[started],
            )  # fmt: skip
    if pending is not None:
        notify(ctx, "plan.awaiting_approval", {"plan": plan_id, "env": env}, env=env, plan=plan_id)
        raise pending
    return _Engine(ctx, RunTicket(plan_id, epoch), progress).run()
