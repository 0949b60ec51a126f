"""An INSERT that leaves a conflicting row as it is, in the connection's own dialect.

The dialect modules are imported on first use: SQLAlchemy's PostgreSQL dialect costs about 20 ms
to import (it brings its asyncpg support along), and a command on SQLite never needs it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Table


def insert_or_skip(conn: Connection, table: Table, **conflict: Any) -> Any:
    """`INSERT ... ON CONFLICT DO NOTHING` for `table` (`conflict`: index_elements=...)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table).on_conflict_do_nothing(**conflict)
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(table).on_conflict_do_nothing(**conflict)
