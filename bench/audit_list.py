"""How long does one page of `audit list --actor X --limit 50` take over 1,000,000 events?

    cd /work/main && python -m bench.audit_list [--runs 200]

The service call `shipdeck.core.services.audit_log.list_events` in this process (a first page and a page
deep in the log via keyset `before`), each against the same indexed query run raw with sqlite3
on one open connection. Medians of `--runs` calls. Goal: < 50 ms per page; the ratio says what
the service adds to the query.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import time

from bench._common import ACTORS, build, open_ctx

RAW = (
    "SELECT seq, at, actor, os_user, ssh_client, kind, app, env, plan, payload, prev_hash, hash "
    "FROM audit_event WHERE actor = ? AND seq < ? ORDER BY seq DESC LIMIT 50"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    root = build()
    ctx = open_ctx(root, "erin")
    from shipdeck.core.services.audit_log import AuditFilter, list_events

    actor = ACTORS[7]
    flt = AuditFilter(actor=actor)
    con = sqlite3.connect(root / ".shipdeck" / "state.db")
    for label, before in (("first page", None), ("deep page (before 500000)", 500_000)):
        ours: list[float] = []
        raw: list[float] = []
        for _ in range(args.runs):
            t = time.perf_counter()
            page = list_events(ctx, flt, limit=50, before=before)
            ours.append(time.perf_counter() - t)
            t = time.perf_counter()
            rows = con.execute(RAW, (actor, before or 2**62)).fetchall()
            raw.append(time.perf_counter() - t)
            assert [e.seq for e in page] == [r[0] for r in rows]
        a, b = statistics.median(ours), statistics.median(raw)
        print(
            f"{label:26} raw sqlite3 {b * 1000:6.2f} ms   list_events {a * 1000:6.2f} ms"
            f"  = {a / b:5.1f}x  (goal < 50 ms)"
        )
    con.close()
    ctx.db.dispose()


if __name__ == "__main__":
    main()
