"""Failpoints for crash tests: SHIPDECK_FAILPOINT="before:switch:chat-api" (phase:step:app[:action],
comma-separated, app may be "*") SIGKILLs this process at that point; action "stop" SIGSTOPs it
once instead (a stalled runner).
"""

from __future__ import annotations

import os
import signal

# --- failpoints ------------------------------------------------------------------------------

_stopped_once: set[str] = set()


def failpoint(phase: str, step: str, app: str) -> None:
    spec = os.environ.get("SHIPDECK_FAILPOINT")
    if not spec:
        return
    for part in spec.split(","):
        bits = part.strip().split(":")
        if len(bits) < 2:
            continue
        want_app = bits[2] if len(bits) > 2 else "*"
        action = bits[3] if len(bits) > 3 else "kill"
        if bits[0] != phase or bits[1] != step or want_app not in ("*", app):
            continue
        if action == "stop":
            if part in _stopped_once:
                continue
            _stopped_once.add(part)
            os.kill(os.getpid(), signal.SIGSTOP)
        else:
            os.kill(os.getpid(), signal.SIGKILL)
