"""ProcessIdentity on Linux: a runner is host|boot id|pid|start time, read from /proc, so a pid
the kernel reused for another process never passes for the runner that held a lease."""

from __future__ import annotations

import os
import socket
from pathlib import Path

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


class ProcProcesses:
    """Processes of this machine as /proc shows them."""

    def runner_id(self, pid: int | None = None) -> str:
        """host|boot id|pid|start time: identifies one process for the lifetime of the machine."""
        pid = os.getpid() if pid is None else pid
        return f"{_HOST}|{_boot_id()}|{pid}|{_start_time(pid) or '?'}"

    def runner_dead(self, runner: str | None) -> bool:
        """Dead only when provably so: same host and boot, and its process is not there (or is
        another process by now, with another start time)."""
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
