"""Detached runs: starting one and handing it to a runner process (ctx.launcher), and following
a run's journal."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from shipdeck.core.errors import OperationFailed, TimedOut
from shipdeck.core.ports import RunnerLaunch, RunnerProcess
from shipdeck.core.services import runner_token
from shipdeck.core.services.context import Context
from shipdeck.core.services.plans import StepView
from shipdeck.core.services.run_watch import RunProgress, watch
from shipdeck.core.services.runs.lease import claim_runner
from shipdeck.core.services.runs.starting import start_run
from shipdeck.core.services.runs.views import RunResult

# --- detached runs ---------------------------------------------------------------------------


@dataclass
class LaunchedRun:
    plan_id: str
    epoch: int
    pid: int
    log_path: Path
    process: RunnerProcess = field(repr=False)

    def alive(self) -> bool:
        return self.process.alive()


def launch_run(ctx: Context, plan_id: str) -> LaunchedRun:
    """Start the run (policy + lease, here and now), then hand its execution to a detached
    runner (ctx.launcher: `python -m shipdeck.core.runner`) so the caller can return. The runner
    acts as the same person, admitted by the one-time token issued for this lease, and the
    lease follows it (dead-runner detection watches its process, not this one)."""
    ticket = start_run(ctx, plan_id)
    token = runner_token.issue(ctx, plan_id, ticket.epoch)
    log_path = ctx.state_dir / "runs" / f"{plan_id}.log"
    process = ctx.launcher.launch(
        RunnerLaunch(
            ctx.workspace, ctx.actor.name, plan_id, ticket.epoch, log_path, ctx.db.url, token
        )
    )
    claim_runner(ctx, ticket, process.pid)
    return LaunchedRun(plan_id, ticket.epoch, process.pid, log_path, process)


def wait_run(
    ctx: Context,
    plan_id: str,
    *,
    timeout: float | None = None,
    on_step: Callable[[StepView], None] | None = None,
    launched: LaunchedRun | None = None,
    poll: float = 0.2,
) -> RunResult:
    """Follow a run through its journal until it ends (any process may do this).

    Raises TimedOut (exit 6) after `timeout` seconds (the run goes on), and OperationFailed if
    the runner process we launched died while the plan is still running.
    """
    clock = ctx.clock
    deadline = None if timeout is None else clock.monotonic() + timeout
    runner_gone = False

    def pause() -> bool:
        nonlocal runner_gone
        if launched is not None and not launched.alive():
            if runner_gone:  # looked again after it died: the plan is still running
                raise OperationFailed(
                    f"plan {plan_id}: the runner (pid {launched.pid}) exited while the plan "
                    f"was running; see {launched.log_path} and run 'shipdeck reconcile'"
                )
            runner_gone = True
            clock.sleep(poll)  # its last journal write may have just committed
            return True
        if deadline is not None and clock.monotonic() >= deadline:
            raise TimedOut(
                f"plan {plan_id} still running after {timeout:g}s; it goes on in the background "
                f"(follow it with 'shipdeck plan show {plan_id}')"
            )
        clock.sleep(poll)
        return True

    steps: list[StepView] = []
    last: RunProgress | None = None
    for last in watch(ctx, plan_id, wait=pause, done=lambda state: state != "running"):
        steps += last.fresh
        if on_step is not None:
            for s in last.fresh:
                on_step(s)
    assert last is not None  # watch always yields its first look
    return RunResult(plan_id, last.env, last.state, last.result, last.run_epoch, tuple(steps))
