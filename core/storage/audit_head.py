"""The audit chain's head row: where the chain ends, and what a screen polls to know that
something changed.

Apart from the chain's writer (storage/audit.py) so that a reader of the head alone imports none
of hashing, redaction and checkpoints: the dashboard's first frame reads it (bench/tui_start.py).
"""

from __future__ import annotations

from sqlalchemy import Connection, select

from shipdeck.core.storage.tables import AUDIT_HEAD

READ_HEAD = select(AUDIT_HEAD.c.seq, AUDIT_HEAD.c.hash).where(AUDIT_HEAD.c.id == 1)


def head(conn: Connection) -> tuple[int, str]:
    row = conn.execute(READ_HEAD).one()
    return int(row.seq), str(row.hash)


def stored_head(conn: Connection) -> tuple[int, str] | None:
    """The head row as stored, or None when it is gone or holds no integer sequence."""
    row = conn.execute(READ_HEAD).first()
    if row is None or not isinstance(row.seq, int) or not isinstance(row.hash, str):
        return None
    return row.seq, row.hash
