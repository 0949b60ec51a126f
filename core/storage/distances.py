"""The commit-distance cache: `git rev-list --count old..new` per (repo, old, new).

A count never changes for a pair of shas, so rows are only added, and a pair two status runs
count at once is kept once (ON CONFLICT DO NOTHING on either backend). A cache, not state: no
audit event vouches for it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sqlalchemy import Connection, select, tuple_

from shipdeck.core.storage.db import dialect_insert
from shipdeck.core.storage.tables import DISTANCES

Pair = tuple[str, str, str]  # repo, old commit, new commit


def cached(conn: Connection, pairs: Iterable[Pair]) -> dict[Pair, int]:
    """The counts the cache holds for these pairs (one query)."""
    query = select(
        DISTANCES.c.repo, DISTANCES.c.old, DISTANCES.c.new, DISTANCES.c["count"].label("n")
    ).where(tuple_(DISTANCES.c.repo, DISTANCES.c.old, DISTANCES.c.new).in_(list(pairs)))
    return {(r.repo, r.old, r.new): r.n for r in conn.execute(query)}


def remember(conn: Connection, counts: Mapping[Pair, int]) -> None:
    """Add counts; a pair already cached (by a concurrent status run) is left as it is."""
    rows = [{"repo": k[0], "old": k[1], "new": k[2], "count": v} for k, v in counts.items()]
    conn.execute(dialect_insert(conn)(DISTANCES).on_conflict_do_nothing(), rows)
