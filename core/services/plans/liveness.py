"""Whether a lease still protects its plan: not expired, and its runner not provably dead (the
runner's identity is the ProcessIdentity port's: core.system.processes in real life).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.engine import Row

from shipdeck.core.ports import ProcessIdentity
from shipdeck.core.services.plans.views import LockView
from shipdeck.core.storage.tables import LEASES


def lease_live(row: Row[Any] | None, now: datetime, processes: ProcessIdentity) -> bool:
    """A lease protects its plan while it has not expired and its runner is not known dead."""
    if row is None or row.holder is None:
        return False
    if row.expires_at is not None and row.expires_at <= now:
        return False
    return not processes.runner_dead(row.runner)


def read_lock(
    conn: Connection, env: str, now: datetime, processes: ProcessIdentity
) -> LockView | None:
    row = conn.execute(select(LEASES).where(LEASES.c.env == env)).first()
    if not lease_live(row, now, processes):
        return None
    assert row is not None
    return LockView(row.holder, row.plan_id, row.since, row.expires_at, row.epoch)
