"""Whether a lease still protects its plan: not expired, and its runner not provably dead (the
runner's identity is the ProcessIdentity port's: core.system.processes in real life).
"""

from __future__ import annotations

from datetime import datetime

from shipdeck.core.ports import ProcessIdentity
from shipdeck.core.services.plans.views import LockView
from shipdeck.core.storage import leases
from shipdeck.core.storage.db import Tx
from shipdeck.core.storage.leases import LeaseRow


def lease_live(row: LeaseRow | None, now: datetime, processes: ProcessIdentity) -> bool:
    """A lease protects its plan while it has not expired and its runner is not known dead."""
    if row is None or row.holder is None:
        return False
    if row.expires_at is not None and row.expires_at <= now:
        return False
    return not processes.runner_dead(row.runner)


def read_lock(conn: Tx, env: str, now: datetime, processes: ProcessIdentity) -> LockView | None:
    row = leases.read(conn, env)
    if not lease_live(row, now, processes):
        return None
    assert row is not None and row.holder is not None
    return LockView(row.holder, row.plan_id, row.since, row.expires_at, row.epoch)
