"""Runs that wait for their window: `plan run --when-open`, the waiter's loop, and cancelling.

Queueing checks now what cannot pass by itself (approvals, checklist, gates: core.domain.queue)
and records `run.queued` with the expected start before anything else happens; a detached waiter
(core.waiter, its own session, so it outlives the SSH connection) then looks again every few
seconds and at the opening. At the start it goes through `start_run` like any run, so policy is
decided afresh; what was voided meanwhile ends the queue with `run.queue_refused` naming it.
"""

from __future__ import annotations

from shipdeck.core.domain.plan import label
from shipdeck.core.domain.queue import decide, pause, refusals, starts_at
from shipdeck.core.errors import (
    BlockedError,
    Blocker,
    ConflictError,
    OperationFailed,
    PermissionDenied,
    first_blocker,
)
from shipdeck.core.ports import WaiterLaunch
from shipdeck.core.services.context import Context
from shipdeck.core.services.notify import notify
from shipdeck.core.services.plans import load_plan_row, verdict
from shipdeck.core.services.plans.queued import QueuedView, queued_of
from shipdeck.core.services.runs.engine import execute_run
from shipdeck.core.services.runs.starting import start_run
from shipdeck.core.services.runs.views import RunResult
from shipdeck.core.storage import queued_runs

QUEUEABLE = ("awaiting_approval", "approved")


def queue_run(ctx: Context, plan_id: str) -> QueuedView:
    """Queue the plan to start at the next opening of its window, and start its waiter."""
    with ctx.db.read() as conn:
        row = load_plan_row(conn, plan_id)
    ctx.require("deploy" if row.kind == "deploy" else "plan.run", env=row.env, plan=plan_id)
    now = ctx.now()
    with ctx.db.write() as conn:
        row = load_plan_row(conn, plan_id, for_update=True)
        if row.state not in QUEUEABLE:
            raise ConflictError(
                f"plan {plan_id} is {label(row.state)}: only a plan that may run can be queued"
            )
        v = verdict(ctx, conn, row)
        if blocking := refusals(v.blockers):
            raise BlockedError(
                f"plan {plan_id} cannot be queued: {first_blocker(blocking)}", blockers=blocking
            )
        old = queued_of(conn, plan_id, ctx.processes)
        if old is not None and old.waiting and not old.waiter_gone:
            raise ConflictError(
                f"plan {plan_id} is already queued by {old.by}; cancel it with "
                f"'shipdeck plan unqueue {plan_id}'"
            )
        when = starts_at(v.window, now)
        bind = queued_runs.put(conn, plan_id, row.env, ctx.actor.name, now, when)
        ctx.audit(
            conn, "run.queued",
            {"starts_at": when.isoformat() if when else None,
             "waiting_for": [b.kind for b in v.blockers]},
            env=row.env, plan=plan_id, binds=[bind],
        )  # fmt: skip
    _start_waiter(ctx, plan_id)
    notify(ctx, "run.queued", {"plan": plan_id, "env": row.env}, env=row.env, plan=plan_id)
    with ctx.db.read() as conn:
        found = queued_of(conn, plan_id, ctx.processes)
    assert found is not None  # inserted above; queue rows are never deleted
    return found


def _start_waiter(ctx: Context, plan_id: str) -> None:
    log_path = ctx.state_dir / "runs" / f"{plan_id}.queue.log"
    try:
        proc = ctx.launcher.launch_waiter(
            WaiterLaunch(ctx.workspace, plan_id, log_path, ctx.db.url)
        )
    except OSError as exc:
        why = f"its waiter could not start: {exc.strerror or exc}"
        _end(ctx, plan_id, "cancelled", why, "run.unqueued")
        raise OperationFailed(f"plan {plan_id} was not queued: {why}") from exc
    with ctx.db.write() as conn:
        queued_runs.set_waiter(conn, plan_id, ctx.processes.runner_id(proc.pid))


def _end(ctx: Context, plan_id: str, state: str, note: str, event: str, **extra: object) -> str:
    with ctx.db.write() as conn:
        env = load_plan_row(conn, plan_id).env
        bind = queued_runs.end(conn, plan_id, state, ctx.now(), note)
        ctx.audit(conn, event, {"note": note, **extra}, env=env, plan=plan_id, binds=[bind])
    return env


def unqueue(ctx: Context, plan_id: str, reason: str = "") -> QueuedView:
    """Take a waiting plan off the queue; its waiter sees it at its next look and exits."""
    with ctx.db.read() as conn:
        env = load_plan_row(conn, plan_id).env
    ctx.require(("plan.run", "plan.abort"), env=env, plan=plan_id)
    note = f"cancelled by {ctx.actor.name}" + (f": {reason}" if reason else "")
    _end(ctx, plan_id, "cancelled", note, "run.unqueued")
    with ctx.db.read() as conn:
        found = queued_of(conn, plan_id, ctx.processes)
    assert found is not None
    return found


def _refuse(ctx: Context, plan_id: str, blockers: list[Blocker]) -> BlockedError:
    note = f"not started: {first_blocker(blockers)}"
    env = _end(ctx, plan_id, "refused", note, "run.queue_refused",
               blockers=[b.as_dict() for b in blockers])  # fmt: skip
    notify(
        ctx, "run.queue_refused", {"plan": plan_id, "env": env, "note": note}, env=env, plan=plan_id
    )
    return BlockedError(
        f"plan {plan_id} was not started from the queue: {first_blocker(blockers)}",
        blockers=blockers,
    )


def wait_for_window(ctx: Context, plan_id: str) -> RunResult | None:
    """The waiter's loop: look, then start, give up or wait (core.domain.queue decides). Returns
    the run's result, or None when the queue entry was cancelled."""
    while True:
        with ctx.db.read() as conn:
            queued = queued_of(conn, plan_id, ctx.processes)
            if queued is None or not queued.waiting:
                return None
            if queued.by != ctx.actor.name:
                raise PermissionDenied(
                    f"plan {plan_id} was queued by {queued.by}: its waiter acts only for them"
                )
            row = load_plan_row(conn, plan_id)
            v = verdict(ctx, conn, row)
        if row.state not in QUEUEABLE:
            gone = Blocker("plan_state", f"plan {plan_id} is {label(row.state)} now")
            raise _refuse(ctx, plan_id, [gone])
        decision = decide(v.blockers)
        if decision == "refuse":
            raise _refuse(ctx, plan_id, refusals(v.blockers))
        if decision == "start":
            try:
                ticket = start_run(ctx, plan_id, queued=True)
            except BlockedError as exc:  # decided again at the start: it may have changed
                if decide(exc.blockers) == "refuse":
                    raise _refuse(ctx, plan_id, refusals(exc.blockers)) from exc
                continue
            return execute_run(ctx, ticket)
        ctx.clock.sleep(pause(v.window, ctx.now()))
