"""Whether a lease still protects its plan: not expired, and its runner not provably dead (the
runner's identity is the ProcessIdentity port's: core.system.processes in real life).
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from shipdeck.core.ports import ProcessIdentity
from shipdeck.core.services.plans.views import LockView
from shipdeck.core.storage import plan_facts
from shipdeck.core.storage.db import Tx


class Lease(Protocol):
    """What liveness reads of a lease, whichever store's record holds it."""

    @property
    def holder(self) -> str | None: ...

    @property
    def expires_at(self) -> datetime | None: ...

    @property
    def runner(self) -> str | None: ...


def lease_live(row: Lease | None, now: datetime, processes: ProcessIdentity) -> bool:
    """A lease protects its plan while it has not expired and its runner is not known dead."""
    if row is None or row.holder is None:
        return False
    if row.expires_at is not None and row.expires_at <= now:
        return False
    return not processes.runner_dead(row.runner)


def read_lock(conn: Tx, env: str, now: datetime, processes: ProcessIdentity) -> LockView | None:
    row = plan_facts.lease_of(conn, env)
    if row is None or not lease_live(row, now, processes):
        return None
    assert row.holder is not None  # a live lease has one
    return LockView(row.holder, row.plan_id, row.since, row.expires_at, row.epoch)
