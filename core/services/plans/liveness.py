"""Who holds an environment: a runner's identity (host, boot, pid, start time), whether it is
provably dead, and whether a lease still protects its plan.
"""

from __future__ import annotations

import os
import socket
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.engine import Row

from shipdeck.core.services.plans.views import LockView
from shipdeck.core.storage.tables import LEASES

_HOST = socket.gethostname()


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _start_time(pid: int) -> str | None:
    try:
        data = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    stat = data[data.rindex(b")") + 2 :].split()
    if stat[0] in (b"Z", b"X"):
        return None
    return stat[19].decode()


def runner_id(pid: int | None = None) -> str:
    """host|boot id|pid|start time: identifies one process for the lifetime of the machine."""
    pid = os.getpid() if pid is None else pid
    return f"{_HOST}|{_boot_id()}|{pid}|{_start_time(pid) or '?'}"


def runner_dead(runner: str | None) -> bool:
    """True only when the runner provably is gone: same host and boot, and its process is not."""
    if not runner:
        return False
    parts = runner.split("|")
    if len(parts) != 4 or parts[0] != _HOST or parts[1] != _boot_id():
        return False
    try:
        pid = int(parts[2])
    except ValueError:
        return False
    return _start_time(pid) != parts[3]


def lease_live(row: Row[Any] | None, now: datetime) -> bool:
    """A lease protects its plan while it has not expired and its runner is not known dead."""
    if row is None or row.holder is None:
        return False
    if row.expires_at is not None and row.expires_at <= now:
        return False
    return not runner_dead(row.runner)


def read_lock(conn: Connection, env: str, now: datetime) -> LockView | None:
    row = conn.execute(select(LEASES).where(LEASES.c.env == env)).first()
    if not lease_live(row, now):
        return None
    assert row is not None
    return LockView(row.holder, row.plan_id, row.since, row.expires_at, row.epoch)
