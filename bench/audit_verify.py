"""Verifying the audit chain, against merely reading and hashing the same rows.

    python -m bench --only audit_verify

The service call `shipdeck.core.services.audit_log.verify` in this process over the audit
workspace's log (1,000,000 events; --quick: 20,000), against a bare loop that reads the same
columns in the same order with the driver alone (sqlite3, or psycopg on --database-url) and feeds
each row to hashlib.sha256: no chain, no checks. Goal: <= 1.5x on SQLite, <= 1.2x on PostgreSQL.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import closing
from typing import Any

from bench.harness import Metric, Options, alternate, timed
from bench.workspace import Built, build, open_ctx, say

COLUMNS = "seq, at, actor, os_user, ssh_client, kind, app, env, plan, payload, prev_hash, hash"


def _rows(built: Built) -> Iterator[tuple[Any, ...]]:
    """The rows in order, through the bare driver, in batches."""
    if built.sqlite_path is not None:
        import sqlite3

        with closing(sqlite3.connect(built.sqlite_path)) as con:
            cur = con.execute(f"SELECT {COLUMNS} FROM audit_event ORDER BY seq")
            while batch := cur.fetchmany(20_000):
                yield from batch
        return
    import psycopg

    base, _, schema = built.url.partition("?options=-csearch_path%3D")
    with psycopg.connect(base, options=f"-csearch_path={schema}") as con, con.cursor("v") as cur:
        cur.execute(f"SELECT {COLUMNS} FROM audit_event ORDER BY seq")
        while batch := cur.fetchmany(20_000):
            yield from batch


def bare_loop(built: Built) -> int:
    n = 0
    for seq, at, actor, os_user, ssh, kind, app, env, plan, payload, prev, _ in _rows(built):
        text = f"{prev}\x1f{seq}\x1f{at}\x1f{actor}\x1f{os_user}\x1f{ssh}\x1f{kind}\x1f{app}\x1f{env}\x1f{plan}"
        h = hashlib.sha256(text.encode())
        h.update(bytes(payload))
        h.hexdigest()
        n += 1
    return n


def metrics(opts: Options) -> list[Metric]:
    from shipdeck.core.services import audit_log

    built = build(opts.audit_apps, opts.events, opts.database_url)
    ctx = open_ctx(built, "erin")

    def service() -> None:
        result = audit_log.verify(ctx)
        assert result.ok, result.reason

    events = bare_loop(built)
    say(f"audit verify over {events:,} events")
    ours, base = alternate(
        lambda: timed(service), lambda: timed(lambda: bare_loop(built)), opts.runs
    )
    ctx.db.dispose()
    store = "postgresql" if opts.database_url else "sqlite"
    return [
        Metric(
            f"audit.verify.{store}",
            f"audit verify (service, in process), {events:,} events",
            "bare driver read + sha256 per row",
            ours,
            base,
            ("<=", 1.2 if opts.database_url else 1.5),
            extra={"events": events},
        )
    ]
