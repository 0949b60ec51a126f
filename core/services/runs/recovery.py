"""Abort and reconcile: stopping a plan, and taking over runs whose lease expired or whose
runner died, so recorded state equals real state.
"""

from __future__ import annotations

from shipdeck.core.domain.plan import PRE_RUN, label
from shipdeck.core.errors import ConflictError
from shipdeck.core.services.context import Context
from shipdeck.core.services.plans import env_config, lease_live, load_plan_row, steps_of
from shipdeck.core.services.runs.engine import _Engine
from shipdeck.core.services.runs.lease import Fenced, RunTicket, _take_lease, lock_lease
from shipdeck.core.services.runs.views import ReconcileResult, RunResult
from shipdeck.core.storage import runs

# --- abort, reconcile ------------------------------------------------------------------------


def abort(ctx: Context, plan_id: str) -> RunResult:
    """Stop a plan. Before it runs: aborted at once. Running: the runner stops at its next step
    boundary and rolls back (this returns at once; follow with wait_run). A run whose runner
    is gone is rolled back here and now."""
    with ctx.db.read() as conn:
        row = load_plan_row(conn, plan_id)
    ctx.require("plan.abort", env=row.env, plan=plan_id)
    orphaned = False
    with ctx.db.write() as conn:
        lease = lock_lease(conn, row.env)
        row = load_plan_row(conn, plan_id, for_update=True)
        now = ctx.now()
        if row.state in PRE_RUN:
            aborted = runs.end(
                conn, plan_id, "aborted", now, f"aborted by {ctx.actor.name} before it ran"
            )
            ctx.audit(conn, "plan.aborted", {"from": row.state, "state": "aborted"},
                      env=row.env, plan=plan_id, binds=[aborted])  # fmt: skip
        elif row.state == "running":
            asked = runs.ask_abort(conn, plan_id, ctx.actor.name, now)
            ctx.audit(conn, "run.abort_requested", {"epoch": row.run_epoch},
                      env=row.env, plan=plan_id, binds=[asked])  # fmt: skip
            orphaned = not (lease_live(lease, now, ctx.processes) and lease.plan_id == plan_id)
        else:
            raise ConflictError(f"plan {plan_id} is {label(row.state)}: nothing to abort")
    if orphaned:
        reconcile(ctx, env=row.env, auto=True)
    with ctx.db.read() as conn:
        row = load_plan_row(conn, plan_id)
        steps = tuple(steps_of(conn, plan_id))
    return RunResult(plan_id, row.env, row.state, row.result, row.run_epoch, steps)


def reconcile(ctx: Context, env: str | None = None, *, auto: bool = False) -> list[ReconcileResult]:
    """Take over every running plan whose lease expired or whose runner died, and finish or roll
    it back so recorded state equals real state. `auto` is for commands that reconcile on the
    way (no reconcile permission needed: they recover, they do not start anything new)."""
    if not auto:
        ctx.require("reconcile", env=env)
    if env is not None:
        env_config(ctx, env)
    out: list[ReconcileResult] = []
    with ctx.db.read() as conn:
        running = runs.running(conn, env)
    for plan_id, plan_env in running:
        with ctx.db.write() as conn:
            lease = lock_lease(conn, plan_env)
            row = load_plan_row(conn, plan_id, for_update=True)
            if row.state != "running" or (
                lease_live(lease, ctx.now(), ctx.processes) and lease.plan_id == plan_id
            ):
                continue  # finished meanwhile, or its runner is alive and well
            if lease_live(lease, ctx.now(), ctx.processes):
                continue  # another live run holds the env; it will not touch this plan's apps
            old_epoch = lease.epoch
            epoch = _take_lease(ctx, conn, lease, plan_id)
            taken = runs.take_over(conn, plan_id, epoch)
            ctx.audit(
                conn, "run.reconciling", {"old_epoch": old_epoch, "epoch": epoch, "holder": lease.holder},
                env=plan_env, plan=plan_id, binds=[taken],
            )  # fmt: skip
        try:
            decision, res = _Engine(ctx, RunTicket(plan_id, epoch)).recover()
        except Fenced:
            continue  # yet another reconciler took over: its result stands
        out.append(ReconcileResult(plan_id, plan_env, decision, res.state, res.result))
    return out
