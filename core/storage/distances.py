"""The commit-distance cache: `git rev-list --count old..new` per (repo, old, new).

A count never changes for a pair of shas, so rows are only added, and a pair two status runs
count at once is kept once (ON CONFLICT DO NOTHING on either backend). A cache, not state: no
audit event vouches for it.

On PostgreSQL the pairs travel as three arrays (binary, `%b`) joined with `unnest`, one
parameter each however many pairs: a row-value `IN` of 2,000 pairs was 6,000 bind parameters,
which the server planned as 2,000 ORed conditions (~60 ms) after SQLAlchemy named and psycopg
parsed every one of them (~40 ms), at a thousand apps (bench/status_json.py).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from sqlalchemy import Connection, select, tuple_

from shipdeck.core.storage.dialect import insert_or_skip
from shipdeck.core.storage.tables import DISTANCES

Pair = tuple[str, str, str]  # repo, old commit, new commit

_PG_CACHED = (
    'SELECT d.repo, d."old", d."new", d."count" FROM commit_distance AS d'
    " JOIN unnest(%b::text[], %b::text[], %b::text[]) AS p(repo, old, new)"
    ' ON d.repo = p.repo AND d."old" = p.old AND d."new" = p.new'
)
_PG_REMEMBER = (
    'INSERT INTO commit_distance (repo, "old", "new", "count")'
    " SELECT * FROM unnest(%b::text[], %b::text[], %b::text[], %b::integer[])"
    " ON CONFLICT DO NOTHING"
)


def cached(conn: Connection, pairs: Collection[Pair]) -> dict[Pair, int]:
    """The counts the cache holds for these pairs (one query)."""
    if conn.dialect.name == "postgresql":
        found = conn.exec_driver_sql(_PG_CACHED, _columns(pairs, 3))
    else:
        found = conn.execute(
            select(DISTANCES.c.repo, DISTANCES.c.old, DISTANCES.c.new, DISTANCES.c["count"]).where(
                tuple_(DISTANCES.c.repo, DISTANCES.c.old, DISTANCES.c.new).in_(list(pairs))
            )
        )
    return {(repo, old, new): n for repo, old, new, n in found.all()}


def remember(conn: Connection, counts: Mapping[Pair, int]) -> None:
    """Add counts (one statement); a pair already cached (by a concurrent status run) is left
    as it is."""
    if conn.dialect.name == "postgresql":
        # The commit waits for no WAL flush (SQLite's WAL at synchronous=NORMAL does not either):
        # a count a crash loses is counted again, and the transaction holds nothing else.
        conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
        conn.exec_driver_sql(_PG_REMEMBER, _columns([(*k, n) for k, n in counts.items()], 4))
        return
    rows = [{"repo": k[0], "old": k[1], "new": k[2], "count": v} for k, v in counts.items()]
    conn.execute(insert_or_skip(conn, DISTANCES), rows)


def _columns(rows: Collection[tuple[str | int, ...]], width: int) -> tuple[list[str | int], ...]:
    """`rows` as `width` column lists, the arrays `unnest` turns back into rows."""
    return tuple([row[i] for row in rows] for i in range(width))
