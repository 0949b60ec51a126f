"""How many audited changes a second can one writer commit, against raw single-row commits?

    cd /work/main && python -m bench.audit_append [--events 3000]

Both on fresh SQLite databases with the shipdeck schema and the same pragmas (WAL,
synchronous=NORMAL): the service path, one `ctx.change(...)` per event (BEGIN IMMEDIATE, lock the
chain head, hash, insert, move the head, commit), against sqlite3 inserting one ready-made row
into audit_event per commit. Goal: the service reaches >= 0.25x the raw throughput.
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import time
from dataclasses import replace

from bench._common import OUT, build, say


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=3000)
    args = parser.parse_args()
    root = build()
    from shipdeck.core.bootstrap import build_context
    from shipdeck.core.services.context import resolve_actor
    from shipdeck.core.storage.db import Database
    from shipdeck.core.workspace import open_workspace

    work = OUT / "append"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    service_db, raw_db = work / "service.db", work / "raw.db"
    for path in (service_db, raw_db):
        db = Database(f"sqlite:///{path}")
        db.upgrade()
        db.dispose()

    ws = open_workspace(root)
    ctx = build_context(ws, database_url=f"sqlite:///{service_db}")
    ctx = replace(ctx, actor=resolve_actor(ws.config, {"USER": "bench", "SHIPDECK_ACTOR": "alice"}))
    con = sqlite3.connect(raw_db, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    sql = "INSERT INTO audit_event VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
    payload = '{"i":1,"note":"grüße"}'.encode()
    row: tuple[object, ...] = ("2026-01-01 00:00:00.000000", "alice", "bench", None, "bench.append")
    row += ("app-001", "prod", None, payload, "0" * 64, "1" * 64)

    # Rounds of 100 alternate between the two, so background load hits both alike.
    service_s = raw_s = 0.0
    for start in range(0, args.events, 100):
        t = time.perf_counter()
        for i in range(start, start + 100):
            with ctx.change("bench.append", {"i": i, "note": "grüße"}, app="app-001", env="prod"):
                pass
        service_s += time.perf_counter() - t
        t = time.perf_counter()
        for i in range(start + 1, start + 101):
            con.execute("BEGIN")
            con.execute(sql, (i, *row))
            con.execute("COMMIT")
        raw_s += time.perf_counter() - t
    ctx.db.dispose()
    con.close()
    service, raw = args.events / service_s, args.events / raw_s
    say(f"{args.events} events each way in {work}")
    print(f"raw sqlite3 single-row commits  {raw:8,.0f} commits/s")
    print(
        f"service appends (ctx.change)    {service:8,.0f} events/s  = {service / raw:4.2f}x"
        "  (goal >= 0.25x)"
    )


if __name__ == "__main__":
    main()
