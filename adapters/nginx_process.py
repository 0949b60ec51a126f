"""What the nginx target reads of the nginx it drives: which workers still take connections
(from /proc: a graceful reload or a stop waits on them) and why a command failed (its output)."""

from __future__ import annotations

import os
import re
from pathlib import Path

from shipdeck.core.domain.redact import strip_lines

# "2026/01/02 03:04:05 [emerg] 123#123: " as in an error log (nginx -e): keep only the level
_LOG_PREFIX = re.compile(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d (\[\w+\]) \d+#\d+: ")


def workers(master: int) -> dict[int, bool]:
    """Worker processes of `master`, each with whether it still takes new connections. A worker
    told to quit closes its listening sockets and retitles itself "worker process is shutting
    down" in the same step, so the title says whether it can still be handed a new request; it
    exits once the requests it has are done."""
    found: dict[int, bool] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry.name}/stat").read_bytes()
            if int(stat[stat.rindex(b")") + 2 :].split()[1]) != master:
                continue
            title = Path(f"/proc/{entry.name}/cmdline").read_bytes()
        except (OSError, ValueError):
            continue  # gone meanwhile
        if b"worker process" in title:
            found[int(entry.name)] = b"shutting down" not in title
    return found


def accepting_workers(master: int) -> set[int]:
    return {pid for pid, accepting in workers(master).items() if accepting}


def complaint(stderr: str) -> str:
    """nginx says why in its [emerg]/[alert]/[error] line; the last line is only 'test failed'."""
    lines = [_LOG_PREFIX.sub(r"\1 ", line.strip()) for line in strip_lines(stderr) if line.strip()]
    for line in lines:
        if any(level in line for level in ("[emerg]", "[alert]", "[crit]", "[error]")):
            return line[:300]
    return lines[-1][:300] if lines else "no output"
