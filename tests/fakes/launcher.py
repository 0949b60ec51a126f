"""A RunLauncher (core.ports) that starts no process: it records each launch as a process of a
FakeProcesses table, and the test then runs the run in-process (`run`, what core.runner does),
or lets the runner die without running it (`die`), or part way (raise `Killed` from a target).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

from shipdeck.core.ports import RunnerLaunch, WaiterLaunch
from shipdeck.core.services import runner_token
from shipdeck.core.services.context import Context
from shipdeck.core.services.runs import RunResult, RunTicket, execute_run
from tests.fakes.processes import FakeProcesses


class Killed(BaseException):
    """Raise it (from a RecordingTarget's before_call) to end an in-process runner right there,
    as SIGKILL would: nothing after it runs, not the engine's failure handling nor its journal
    writes, and the target call it interrupts never happens. BaseException, so no handler of the
    engine's (they catch Exception subclasses) mistakes it for a failure."""


Request = TypeVar("Request", RunnerLaunch, WaiterLaunch)


@dataclass
class FakeProcess(Generic[Request]):
    """A launched runner or waiter: an entry of the fake process table, nothing running."""

    request: Request
    pid: int
    processes: FakeProcesses = field(repr=False)

    def alive(self) -> bool:
        return self.processes.alive(self.pid)


FakeRunner = FakeProcess[RunnerLaunch]
FakeWaiter = FakeProcess[WaiterLaunch]  # the test calls wait_for_window itself


@dataclass
class FakeLauncher:
    processes: FakeProcesses
    launched: list[FakeRunner] = field(default_factory=list)
    waiters: list[FakeWaiter] = field(default_factory=list)  # a test runs wait_for_window itself

    def launch(self, request: RunnerLaunch) -> FakeRunner:
        runner = FakeRunner(request, self.processes.spawn(), self.processes)
        self.launched.append(runner)
        return runner

    def launch_waiter(self, request: WaiterLaunch) -> FakeWaiter:
        waiter = FakeWaiter(request, self.processes.spawn(), self.processes)
        self.waiters.append(waiter)
        return waiter

    def run(self, ctx: Context, runner: FakeRunner | None = None) -> RunResult | None:
        """Be the runner (the last one launched by default) in this thread: redeem its token and
        execute its run; the process has exited afterwards. None if it was Killed on the way."""
        runner = runner or self.launched[-1]
        req = runner.request
        assert ctx.actor.name == req.actor, f"the runner acts as {req.actor}"
        try:
            runner_token.redeem(ctx, req.plan_id, req.epoch, req.token)
            return execute_run(ctx, RunTicket(req.plan_id, req.epoch))
        except Killed:
            return None
        finally:
            self.die(runner)

    def die(self, runner: FakeRunner | None = None) -> None:
        """The runner (the last one by default) exits, whatever it had done by then."""
        self.processes.kill((runner or self.launched[-1]).pid)
