"""The environment lease: taking it (with its fencing epoch), handing it to a runner, and, inside
the engine, checking it in every journal transaction and renewing it (the heartbeat).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from datetime import timedelta

from shipdeck.core.domain.policy import LockFact as _LockFact
from shipdeck.core.domain.policy import lock_blockers
from shipdeck.core.errors import BlockedError, OperationFailed, ShipdeckError
from shipdeck.core.services.context import Context
from shipdeck.core.services.runs.state import _EngineState
from shipdeck.core.storage import leases
from shipdeck.core.storage.db import Tx
from shipdeck.core.storage.leases import LeaseRow


def lease_seconds() -> float:
    """How long a lease lasts without renewal (SHIPDECK_LEASE_SECONDS, default 15)."""
    try:
        return max(float(os.environ.get("SHIPDECK_LEASE_SECONDS", "15")), 0.5)
    except ValueError:
        return 15.0


class Fenced(OperationFailed):
    """This runner lost its lease (it stalled, and another took over): it must stop touching
    anything. Not a failure of the plan: the new lease holder decides how the plan ends."""

    kind = "fenced"


@dataclass(frozen=True)
class RunTicket:
    plan_id: str
    epoch: int


# --- the lease -------------------------------------------------------------------------------


def lock_lease(conn: Tx, env: str) -> LeaseRow:
    """The env's lease row, created if missing, locked until the transaction ends."""
    return leases.lock(conn, env)


def _take_lease(ctx: Context, conn: Tx, lease: LeaseRow, plan_id: str) -> int:
    epoch = lease.epoch + 1
    now = ctx.now()
    leases.take(
        conn, lease.env, epoch=epoch, holder=ctx.actor.name, plan_id=plan_id, since=now,
        expires_at=now + timedelta(seconds=lease_seconds()), runner=ctx.processes.runner_id(),
    )  # fmt: skip
    return epoch


def _locked(env: str, lease: LeaseRow) -> BlockedError:
    """The refusal while `lease` (live: held) protects another plan or task."""
    assert lease.holder is not None
    blockers = lock_blockers("", env, _LockFact(lease.holder, lease.plan_id, lease.since))
    return BlockedError(blockers[0].message, blockers=blockers)


def claim_runner(ctx: Context, ticket: RunTicket, pid: int) -> None:
    """Hand the lease to the detached runner process `pid` (dead-runner detection follows it)."""
    with ctx.db.write() as conn:
        leases.set_runner(conn, ticket.plan_id, ticket.epoch, ctx.processes.runner_id(pid))


class _LeaseHolder(_EngineState):
    def _fence(self, conn: Tx, exclusive: bool = False) -> None:
        """Refuse (Fenced) unless this run still holds the lease at its epoch, and keep it so
        until the transaction ends: a shared row lock (journal writes of parallel apps do not
        queue behind each other), which a takeover's exclusive lock has to wait for."""
        lease = leases.fence(conn, self.env, exclusive=exclusive)
        if lease is None or lease.epoch != self.epoch or lease.plan_id != self.plan_id:
            self.lost.set()
            raise Fenced(
                f"plan {self.plan_id}: lost the {self.env} lease (epoch {self.epoch} is stale); "
                "another runner took over"
            )

    # --- heartbeat -------------------------------------------------------------------------

    def _heartbeat(self) -> None:
        """Renew the lease every third of its life. A storage error is said on the run log and
        retried while the lease still has slack; once it cannot be renewed in time the run is
        treated as fenced (it stops touching anything), never left acting on an expired lease."""
        ttl = lease_seconds()
        failing_since: float | None = None
        while not self._heartbeat_stop.wait(ttl / 3):
            try:
                with self.ctx.db.write() as conn:
                    expires = self.ctx.now() + timedelta(seconds=ttl)
                    renewed = leases.renew(conn, self.env, self.epoch, self.plan_id, expires)
                if not renewed:
                    self.lost.set()
                    return
                failing_since = None
            except ShipdeckError as exc:  # storage errors arrive translated (core.storage.db)
                failing_since = failing_since or self.ctx.clock.monotonic()
                late = self.ctx.clock.monotonic() - failing_since + ttl / 3 >= ttl
                print(f"heartbeat: lease not renewed: {exc.message}", file=sys.stderr, flush=True)
                if late:
                    print("heartbeat: the lease expires before the next beat: stopping the run",
                          file=sys.stderr, flush=True)  # fmt: skip
                    self.lost.set()
                    return
            except BaseException:  # a bug: the run stops instead of acting on an expiring lease
                self.lost.set()
                raise
