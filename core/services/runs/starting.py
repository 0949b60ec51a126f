"""Starting a run: policy and the environment lease, in one transaction."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from shipdeck.core.domain.plan import PlanBody, check_transition
from shipdeck.core.domain.policy import active_override
from shipdeck.core.errors import BlockedError, Blocker, first_blocker
from shipdeck.core.services.canary_targets import check_canaries
from shipdeck.core.services.context import Context
from shipdeck.core.services.notify import notify
from shipdeck.core.services.plans import StepView, lease_live, load_plan_row, verdict
from shipdeck.core.services.runs.engine import execute_run
from shipdeck.core.services.runs.lease import RunTicket, _locked, _take_lease, lock_lease
from shipdeck.core.services.runs.recovery import reconcile
from shipdeck.core.services.runs.views import RunResult
from shipdeck.core.storage import queued_runs, runs

# --- starting --------------------------------------------------------------------------------


def start_run(ctx: Context, plan_id: str, *, queued: bool = False) -> RunTicket:
    """Check policy and take the environment's lease, atomically; the plan becomes running.
    `queued`: the queue's waiter starts it, and its queue entry ends in the same transaction.

    Raises BlockedError (exit 3) with every blocker, including `locked` naming the holder when
    another run holds the environment. Interrupted runs found on the way are reconciled first.
    """
    with ctx.db.read() as conn:
        row = load_plan_row(conn, plan_id)
    ctx.require("deploy" if row.kind == "deploy" else "plan.run", env=row.env, plan=plan_id)
    _can_split(ctx, row.env, PlanBody.decode(row.body).apps)
    reconcile(ctx, env=row.env, auto=True)
    with ctx.db.write() as conn:
        lease = lock_lease(conn, row.env)
        row = load_plan_row(conn, plan_id, for_update=True)
        if lease_live(lease, ctx.now(), ctx.processes):
            raise _locked(row.env, lease)
        if row.state not in ("awaiting_approval", "approved"):
            check_transition(plan_id, row.state, "running")
        v = verdict(ctx, conn, row)
        if v.blockers:
            raise _blocked(plan_id, v.blockers)
        now = ctx.now()
        dequeued = [queued_runs.end(conn, plan_id, "started", now)] if queued else []
        epoch = _take_lease(ctx, conn, lease, plan_id)
        started = runs.start(conn, plan_id, epoch, v.digest, now)
        used = active_override(v.overrides, now)
        ctx.audit(
            conn,
            "run.started",
            {
                "epoch": epoch,
                "digest": v.digest,
                "from": row.state,
                "state": "running",
                "waves": [list(w) for w in v.body.waves],
                "override": used.id if used else None,
                "window_open": v.window.open,
                **({"queued": True} if queued else {}),
            },
            env=row.env,
            plan=plan_id,
            binds=[started, *dequeued],
        )
    notify(ctx, "run.started", {"plan": plan_id, "env": row.env}, env=row.env, plan=plan_id)
    return RunTicket(plan_id, epoch)


def _blocked(plan_id: str, blockers: tuple[Blocker, ...]) -> BlockedError:
    return BlockedError(
        f"plan {plan_id} may not run: {first_blocker(blockers)}", blockers=list(blockers)
    )


def _can_split(ctx: Context, env: str, apps: Sequence[str]) -> None:
    """A canary on a target that cannot split traffic is refused (exit 4) before anything is
    staged; an app with no target here is policy's `target_missing`, not this."""
    apps = [a for a in apps if a in ctx.config.apps and env in ctx.config.apps[a].targets]
    check_canaries(ctx.config, ctx.targets, [(a, env) for a in apps])


def run_plan(
    ctx: Context, plan_id: str, progress: Callable[[StepView], None] | None = None
) -> RunResult:
    """Start and execute the plan in the calling thread (a TUI worker, a test, the runner)."""
    return execute_run(ctx, start_run(ctx, plan_id), progress)
