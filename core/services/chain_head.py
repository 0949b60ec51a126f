"""The chain head as a service: the cheap change check every screen's live refresh polls.

Apart from audit_log (export, verify, checkpoints) so that the dashboard's first frame imports
only this (bench/tui_start.py).
"""

from __future__ import annotations

from shipdeck.core.services.context import Context
from shipdeck.core.storage import audit_head


def head(ctx: Context) -> tuple[int, str]:
    """(sequence, hash) of the last event recorded."""
    with ctx.db.read() as conn:
        return audit_head.head(conn)
