"""Following a run through its journal: one loop for every follower (the TUI's run view, the
CLI's `--wait`), so they cannot disagree on what a run did or when it ended.

Any process may follow any run: the journal and the plan row are the truth, not the runner.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from shipdeck.core.domain.plan import TERMINAL
from shipdeck.core.services.context import Context
from shipdeck.core.services.plans import StepView, load_plan_row, steps_of


@dataclass(frozen=True)
class RunProgress:
    """Where a run stands: the journal steps new since the previous snapshot, and its plan's
    state, result and pending abort."""

    plan_id: str
    env: str
    fresh: tuple[StepView, ...]
    state: str
    result: str
    abort_requested_by: str | None
    run_epoch: int | None

    @property
    def ended(self) -> bool:
        return self.state in TERMINAL


def watch(
    ctx: Context,
    plan_id: str,
    *,
    wait: Callable[[], bool],
    done: Callable[[str], bool] = TERMINAL.__contains__,
) -> Iterator[RunProgress]:
    """Yield the run's progress once at first (every step so far), then whenever its journal
    or state moves, until `done(state)` (by default: the run has ended; a follower of a run it
    just started stops once the plan is no longer running) or `wait()` (the pause between
    looks, which the caller owns: a stop event, a deadline, a fake clock) returns False."""
    last = 0
    seen: tuple[str, str, str | None] | None = None
    while True:
        with ctx.db.read() as conn:
            row = load_plan_row(conn, plan_id)
            fresh = tuple(steps_of(conn, plan_id, after_id=last))
        now = (row.state, row.result, row.abort_requested_by)
        if fresh:
            last = fresh[-1].id
        if fresh or now != seen:
            seen = now
            yield RunProgress(plan_id, row.env, fresh, *now, row.run_epoch)
        if done(row.state) or not wait():
            return
