"""The store of releases: typed rows out, the new row's bind back for its creating event.

Releases never change after they are recorded, so this store only adds and reads. Whether a row
may be shipped or shown (its event vouches for it, its manifest hashes to its digest) is the
releases service's rule; `untrusted` gives it the binding half in one query for any number of rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, insert, select

from shipdeck.core.storage import binding
from shipdeck.core.storage.binding import Bind, Problem
from shipdeck.core.storage.dialect import among
from shipdeck.core.storage.tables import RELEASES


class ReleaseVersion(NamedTuple):
    """What choosing an app's highest version needs, without loading any manifest (a tuple:
    a thousand apps' 3,000 rows read by name into a frozen dataclass were 8 ms, now 3)."""

    id: int
    app: str
    version: str


@dataclass(frozen=True)
class ReleaseRow:
    id: int
    app: str
    version: str
    commit: str
    digest: str
    manifest: bytes  # canonical manifest JSON, as stored (its hash is `digest`)
    notes: str
    created_at: datetime
    created_by: str
    audit_seq: int | None  # the event that recorded it


def _row(r: Any) -> ReleaseRow:
    """A `select(RELEASES)` row by position (the table's columns are ReleaseRow's fields, in
    order): reading ten columns by name was most of building a thousand apps' latest releases."""
    id_, app, version, commit, digest, manifest, notes, at, by, audit_seq = r
    return ReleaseRow(id_, app, version, commit, digest, bytes(manifest), notes, at, by, audit_seq)


def find(conn: Connection, app: str, version: str) -> ReleaseRow | None:
    query = select(RELEASES).where(RELEASES.c.app == app, RELEASES.c.version == version)
    found = conn.execute(query).first()
    return None if found is None else _row(found)


def get(conn: Connection, release_id: int) -> ReleaseRow:
    return _row(conn.execute(select(RELEASES).where(RELEASES.c.id == release_id)).one())


def by_ids(conn: Connection, ids: Iterable[int]) -> list[ReleaseRow]:
    """The releases with these ids, in one query (none asked: no query)."""
    wanted = list(ids)
    if not wanted:
        return []
    query = select(RELEASES).where(among(conn, RELEASES.c.id, wanted))
    return list(map(_row, conn.execute(query).all()))


def listed(conn: Connection, app: str | None = None) -> list[ReleaseRow]:
    """Every release (or one app's), by app, newest recorded first."""
    query = select(RELEASES).order_by(RELEASES.c.app, RELEASES.c.id.desc())
    if app is not None:
        query = query.where(RELEASES.c.app == app)
    return [_row(r) for r in conn.execute(query)]


def versions(conn: Connection, apps: Sequence[str] | None = None) -> list[ReleaseVersion]:
    """Id, app and version of every release (or those of `apps`)."""
    query = select(RELEASES.c.id, RELEASES.c.app, RELEASES.c.version)
    if apps is not None:
        query = query.where(RELEASES.c.app.in_(apps))
    return list(map(ReleaseVersion._make, conn.execute(query).all()))


def add(
    conn: Connection,
    app: str,
    version: str,
    commit: str,
    digest: str,
    manifest: bytes,
    notes: str,
    at: datetime,
    by: str,
) -> tuple[int, Bind]:
    values = {"app": app, "version": version, "commit": commit, "digest": digest,
              "manifest": manifest, "notes": notes, "created_at": at, "created_by": by}  # fmt: skip
    key = conn.execute(insert(RELEASES).values(**values)).inserted_primary_key
    assert key is not None
    new_id = int(key[0])
    return new_id, (RELEASES, {"id": new_id})


def untrusted(conn: Connection, rows: Sequence[ReleaseRow]) -> dict[int, Problem]:
    """Release id -> the problem of each row its own event does not vouch for (one query)."""
    bad = binding.untrusted(conn, RELEASES, [asdict(r) for r in rows])
    return {int(key[0]): problem for key, problem in bad.items()}
