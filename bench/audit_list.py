"""One page of `audit list --actor X --limit 50`, against the same indexed query run raw.

    python -m bench --only audit_list

The service call `list_events` in this process, a first page and a page deep in the log (keyset
`before` at the middle), alternating with the same query through the bare driver on one open
connection (SQLite; skipped on PostgreSQL). Goal: <= 3.0x the raw query (the service turns rows
into events); the absolute milliseconds are in `extra`.
"""

from __future__ import annotations

import sqlite3
import statistics

from bench.harness import Metric, Options, alternate, timed
from bench.workspace import ACTORS, build, open_ctx

RAW = (
    "SELECT seq, at, actor, os_user, ssh_client, kind, app, env, plan, payload, prev_hash, hash "
    "FROM audit_event WHERE actor = ? AND seq < ? ORDER BY seq DESC LIMIT 50"
)


def metrics(opts: Options) -> list[Metric]:
    if opts.database_url:
        return []
    from shipdeck.core.services.audit_log import AuditFilter, list_events

    built = build(opts.audit_apps, opts.events)
    assert built.sqlite_path is not None
    ctx = open_ctx(built, "erin")
    actor = ACTORS[7]
    flt = AuditFilter(actor=actor)
    con = sqlite3.connect(built.sqlite_path)
    found = []
    for label, before in (("first", None), ("deep", opts.events // 2)):
        ours, base = alternate(
            lambda before=before: timed(lambda: list_events(ctx, flt, limit=50, before=before)),
            lambda before=before: timed(
                lambda: con.execute(RAW, (actor, before or 2**62)).fetchall()
            ),
            max(opts.runs, 50),
        )
        ms = statistics.median(s.wall for s in ours) * 1000
        found.append(
            Metric(
                f"audit.list.{label}_page",
                f"list_events(actor=X, limit=50), {label} page",
                "the same indexed query through sqlite3",
                ours,
                base,
                ("<=", 3.0),
                extra={"absolute_ms": round(ms, 2), "absolute_goal_ms": 50},
            )
        )
    con.close()
    ctx.db.dispose()
    return found
