"""Running plans: the environment lease, the blue/green engine, its journal, and recovery.

The shape of a run
- `start_run` checks policy and takes the environment's lease in ONE transaction: the lease row
  carries a fencing epoch that only ever increases, and every target call carries it, so a runner
  that stalled past its lease is refused by the targets themselves (StaleEpoch).
- The engine then ships wave after wave; apps of one wave run in parallel threads. Per app:
  stage the release on the idle color, pre-switch health check (a failure never switches),
  switch, post-switch verify. After the last wave the old colors stay warm for the environment's
  `warm` delay while the new ones keep being health-checked (a release that goes bad now is still
  rolled back instantly), then finalize stops the old colors.
- Every step is journaled (run_step rows) before and after it runs, in transactions that first
  check the lease epoch, so a fenced runner cannot write either. Viewers in other processes follow
  a run by polling those rows. Replaying a journal skips steps already done; every target call is
  idempotent, so a step that was in flight is simply done again.
- A failure rolls back (switch back every app this run switched, in reverse order) or halts,
  per the plan's failure policy. `abort` asks the runner to stop at the next step boundary and
  roll back.
- `reconcile` takes over runs whose lease expired (or whose runner process is provably dead),
  asks each target what is really live, records any switch the journal missed, and then finishes
  the run if every app already serves its new release and is healthy, or rolls it back.

Failpoints for crash tests: SHIPDECK_FAILPOINT="before:switch:chat-api" (phase:step:app[:action],
comma-separated, app may be "*") SIGKILLs this process at that point; action "stop" SIGSTOPs it
once instead (a stalled runner).
"""

from __future__ import annotations

from shipdeck.core.services.runs.deploy import deploy, deploy_plan
from shipdeck.core.services.runs.detached import LaunchedRun, launch_run, wait_run
from shipdeck.core.services.runs.engine import execute_run
from shipdeck.core.services.runs.failpoints import failpoint
from shipdeck.core.services.runs.lease import (
    Fenced,
    RunTicket,
    claim_runner,
    lease_seconds,
    lock_lease,
)
from shipdeck.core.services.runs.promote import promote
from shipdeck.core.services.runs.queue import queue_run, unqueue, wait_for_window
from shipdeck.core.services.runs.recovery import abort, reconcile
from shipdeck.core.services.runs.rollback import rollback
from shipdeck.core.services.runs.starting import run_plan, start_run
from shipdeck.core.services.runs.state import (
    HEALTH_ATTEMPTS,
    HEALTH_PAUSE,
    HOLD_POLL,
    MAX_PARALLEL,
    PLAN_LEVEL,
)
from shipdeck.core.services.runs.views import ReconcileResult, RunResult

__all__ = [
    "HEALTH_ATTEMPTS",
    "HEALTH_PAUSE",
    "HOLD_POLL",
    "MAX_PARALLEL",
    "PLAN_LEVEL",
    "Fenced",
    "LaunchedRun",
    "ReconcileResult",
    "RunResult",
    "RunTicket",
    "abort",
    "claim_runner",
    "deploy",
    "deploy_plan",
    "execute_run",
    "failpoint",
    "launch_run",
    "lease_seconds",
    "lock_lease",
    "promote",
    "queue_run",
    "reconcile",
    "rollback",
    "run_plan",
    "start_run",
    "unqueue",
    "wait_for_window",
    "wait_run",
]
