"""Starting a run from the CLI and following it to its end: `plan run`, `deploy`, `rollback`.

The run itself happens in a detached runner process (`python -m shipdeck.core.runner`), so these
return at once unless --wait asks to follow the run's journal like any other viewer would; a run
that does not succeed exits 5, one that outlasts --timeout exits 6 (CONTRACT.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shipdeck.core.errors import OperationFailed
from shipdeck.tui import output
from shipdeck.tui.commands.common import parse_span

if TYPE_CHECKING:
    from datetime import timedelta

    from shipdeck.core.services.context import Context
    from shipdeck.core.services.plans import PlanView, QueuedView, StepView
    from shipdeck.core.services.runs import LaunchedRun, RunResult


def step_line(s: StepView) -> None:
    where = "plan" if s.app == "*" else s.app
    output.info(
        f"  {s.at:%H:%M:%S} wave {s.wave + 1} {where}: {s.step} {s.state} {s.detail}".rstrip()
    )


def run_plan(ctx: Context, plan_id: str, wait: bool, timeout: str | None) -> None:
    """Launch the plan in a detached runner; with --wait follow it to the end."""
    from shipdeck.core.services.plans import get_plan
    from shipdeck.core.services.runs import launch_run

    limit = parse_span(timeout, "--timeout")
    launched = launch_run(ctx, plan_id)
    for w in get_plan(ctx, plan_id).warnings:
        output.info(f"warning: {w.message}")
    if not wait:
        if output.OPTIONS.machine:
            output.emit({"plan": get_plan(ctx, plan_id).as_dict(), "run": _launched(launched)})
        else:
            output.say(f"plan {plan_id} is running in the background (runner pid {launched.pid})")
            output.info(f"follow it: shipdeck plan show {plan_id}   log: {launched.log_path}")
        return
    _follow(ctx, plan_id, limit, launched)


def queue_plan(ctx: Context, plan_id: str) -> None:
    """`plan run --when-open`: queue the plan for its window; a detached waiter starts it."""
    from shipdeck.core.services.runs import queue_run

    emit_queued(queue_run(ctx, plan_id))
    if not output.OPTIONS.machine:
        output.info(f"cancel it: shipdeck plan unqueue {plan_id}   log: {ctx.state_dir / 'runs'}")


def emit_queued(queued: QueuedView) -> None:
    if output.OPTIONS.machine:
        output.emit({"queued": queued.as_dict()})
    else:
        output.say(f"plan {queued.plan_id}: {queued.sentence}")


def _launched(launched: LaunchedRun) -> dict[str, object]:
    return {"pid": launched.pid, "epoch": launched.epoch, "log": str(launched.log_path)}


def _follow(
    ctx: Context, plan_id: str, limit: timedelta | None, launched: LaunchedRun | None
) -> None:
    from shipdeck.core.services.plans import get_plan
    from shipdeck.core.services.runs import wait_run

    result = wait_run(
        ctx,
        plan_id,
        timeout=limit.total_seconds() if limit else None,
        on_step=None if output.OPTIONS.machine else step_line,
        launched=launched,
    )
    finished(ctx, result, get_plan(ctx, plan_id))


def finished(ctx: Context, result: RunResult, view: PlanView) -> None:
    if not result.ok:
        raise OperationFailed(
            f"plan {result.plan_id} {result.state.replace('_', ' ')}: {result.result}"
        )
    if output.OPTIONS.machine:
        output.emit({"plan": view.as_dict(), "run": result.as_dict()})
    else:
        output.say(f"plan {result.plan_id} succeeded: {result.result}")
