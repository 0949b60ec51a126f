"""How long does verifying the audit chain take, against merely reading and hashing the rows?

    cd /work/main && python -m bench.audit_verify [--runs 3]

Over the bench workspace's 1,000,000+ events (bench/_common.py): the service call
`shipdeck.core.services.audit_log.verify` in this process, against a bare loop that reads the same
columns in the same order with sqlite3 and feeds each row to hashlib.sha256 (no chain, no
checks). Runs alternate. Goal: verify <= 1.5x the bare loop.
"""

from __future__ import annotations

import argparse
import hashlib
import sqlite3
import statistics
import time
from pathlib import Path

from bench._common import build, interleaved, open_ctx, say


def bare_loop(db_path: Path) -> float:
    t = time.perf_counter()
    con = sqlite3.connect(db_path)
    cur = con.execute(
        "SELECT seq, at, actor, os_user, ssh_client, kind, app, env, plan, payload, prev_hash, hash "
        "FROM audit_event ORDER BY seq"
    )
    n = 0
    while batch := cur.fetchmany(20_000):
        for seq, at, actor, os_user, ssh, kind, app, env, plan, payload, prev, _ in batch:
            text = f"{prev}\x1f{seq}\x1f{at}\x1f{actor}\x1f{os_user}\x1f{ssh}\x1f{kind}\x1f{app}\x1f{env}\x1f{plan}"
            h = hashlib.sha256(text.encode())
            h.update(payload)
            h.hexdigest()
            n += 1
    con.close()
    return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    root = build()
    ctx = open_ctx(root, "erin")
    from shipdeck.core.services import audit_log

    def service() -> float:
        t = time.perf_counter()
        result = audit_log.verify(ctx)
        elapsed = time.perf_counter() - t
        assert result.ok, result.reason
        return elapsed

    events = audit_log.verify(ctx).events
    say(f"{events:,} events")
    pairs = list(
        interleaved(service, lambda: bare_loop(root / ".shipdeck" / "state.db"), args.runs)
    )
    ours = statistics.median(p[0] for p in pairs)
    base = statistics.median(p[1] for p in pairs)
    print(f"bare sqlite3 + hashlib loop  median {base:6.2f} s  ({events / base:,.0f} rows/s)")
    print(
        f"audit verify (service)       median {ours:6.2f} s  ({events / ours:,.0f} events/s)"
        f"  = {ours / base:4.2f}x  (goal <= 1.5x)"
    )
    ctx.db.dispose()


if __name__ == "__main__":
    main()
