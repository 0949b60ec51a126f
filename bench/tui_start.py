"""Time from start to the first dashboard frame with data, on a big workspace.

    cd /work/main && python -m bench.tui_start [--apps 200] [--events 1000000] [--repeat 5]

Uses the shared big workspace of bench/_common.py (built once, cached under bench/out/: `--apps`
apps x 3 environments with local targets, real git repositories, releases, deployments and
`--events` hash-chained events); without that helper it builds its own (2 environments, no
targets) the same way. Then starts a fresh Python process per run that imports the TUI, opens the context, runs
the app headless at 120x40 and stops the clock when the dashboard shows its data and has painted.
Prints the median, best and worst of `--repeat` runs (goal: under 1.5 s), and the in-process split
(imports / context / first frame) of the last run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
START = datetime(2026, 9, 1, tzinfo=UTC)
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)

CONFIG_HEAD = """
[workspace]
name = "bench"

[identity]
allow_env_actor = true
delegators = ["*"]

[roles.release-managers]
users = ["alice"]
permissions = ["*"]

[windows.business-hours]
cron = "0 9 * * 1-5"
duration = "9h"
timezone = "Europe/Berlin"

[environments.staging]

[environments.prod]
windows = ["business-hours"]
"""

KINDS = (
    "release.created",
    "plan.created",
    "plan.approved",
    "run.started",
    "run.succeeded",
    "task.logs",
)
ACTORS = ("alice", "bob", "carol", "dave", "frank", "ci-bot")


def _write_events(db_url: str, count: int) -> None:
    """Append `count` events in bulk: one transaction per 50,000, the chain hashed as append() does."""
    from sqlalchemy import insert, update

    from shipdeck.core.domain.canonical import canonical_bytes
    from shipdeck.core.storage import audit
    from shipdeck.core.storage.db import Database
    from shipdeck.core.storage.tables import AuditEvent, AuditHead

    db = Database(db_url)
    ev, hd = AuditEvent.__table__, AuditHead.__table__  # type: ignore[attr-defined]
    with db.read() as conn:
        seq, prev = audit.head(conn)
    step = (NOW - START) / max(count, 1)
    batch: list[dict[str, object]] = []
    target = seq + count
    while seq < target:
        seq += 1
        at = START + step * seq
        actor = ACTORS[seq % len(ACTORS)]
        kind = KINDS[seq % len(KINDS)]
        app = f"app-{seq % 200:03d}"
        env = "prod" if seq % 3 else "staging"
        body = canonical_bytes({"n": seq, "note": f"bench event {seq}", "reason": "load"})
        digest = audit.event_hash(
            prev, seq, audit.at_text(at), actor, "bench", None, kind, app, env, None, body
        )
        batch.append(
            {
                "seq": seq,
                "at": at,
                "actor": actor,
                "os_user": "bench",
                "ssh_client": None,
                "kind": kind,
                "app": app,
                "env": env,
                "plan": None,
                "payload": body,
                "prev_hash": prev,
                "hash": digest,
            }
        )
        prev = digest
        if len(batch) == 50_000 or seq == target:
            with db.write() as conn:
                conn.execute(insert(ev), batch)
                conn.execute(update(hd).where(hd.c.id == 1).values(seq=seq, hash=prev))
            batch.clear()
    db.dispose()


def workspace(apps: int, events: int) -> Path:
    """The shared big workspace of bench/_common.py (200 apps x 3 envs with local targets);
    this module's own, simpler one only where that helper is missing."""
    try:
        from bench._common import build
    except ImportError:
        return ensure_workspace(apps, events)
    return build(apps=apps, events=events)


def ensure_workspace(apps: int, events: int) -> Path:
    """A cached workspace of `apps` apps x 2 envs (no targets) and `events` events."""
    root = OUT / f"tui-{apps}apps-{events}events"
    if (root / ".complete").exists():
        return root
    from dataclasses import replace

    from sqlalchemy import insert, select

    from shipdeck.core.bootstrap import build_context
    from shipdeck.core.demo import make_repo
    from shipdeck.core.services.context import resolve_actor
    from shipdeck.core.services.releases import create_release
    from shipdeck.core.storage.db import Database
    from shipdeck.core.storage.tables import Deployment, Release
    from shipdeck.core.workspace import Workspace, load_config

    if root.exists():
        import shutil

        shutil.rmtree(root)
    root.mkdir(parents=True)
    print(f"building {root} (once)…", file=sys.stderr)
    names = [f"app-{i:03d}" for i in range(apps)]
    shas = {}
    for name in names:
        shas[name] = make_repo(
            root / "repos" / name,
            tuple(f"{name} change {i}" for i in range(4)),
            START,
            timedelta(hours=7),
        )
    app_toml = "".join(f'\n[apps.{n}]\nrepo = "repos/{n}"\n' for n in names)
    (root / "shipdeck.toml").write_text(CONFIG_HEAD + app_toml, encoding="utf-8")
    url = f"sqlite:///{root / '.shipdeck' / 'state.db'}"
    db = Database(url)
    db.upgrade()
    db.dispose()

    class Clock:
        at = START

        def now(self) -> datetime:
            return self.at

    clock = Clock()
    base = build_context(
        Workspace(root, load_config(root / "shipdeck.toml")), database_url=url, clock=clock
    )
    ctx = replace(
        base, actor=resolve_actor(base.config, {"USER": "bench", "SHIPDECK_ACTOR": "alice"})
    )
    rel, dep = Release.__table__, Deployment.__table__  # type: ignore[attr-defined]
    for name in names:
        create_release(ctx, name, "1.0.0", commit=shas[name][1])
        create_release(ctx, name, "1.1.0", commit=shas[name][3])
    with ctx.db.write() as conn:
        releases = {(r.app, r.version): r for r in conn.execute(select(rel))}
        rows = []
        for i, name in enumerate(names):
            for env, version in (("staging", "1.1.0"), ("prod", "1.0.0" if i % 4 else "1.1.0")):
                r = releases[(name, version)]
                rows.append(
                    {
                        "app": name,
                        "env": env,
                        "release_id": r.id,
                        "version": version,
                        "commit": r.commit,
                        "digest": r.digest,
                        "color": "blue" if i % 2 else "green",
                        "at": START + timedelta(days=1),
                        "by": "alice",
                        "outcome": "succeeded",
                    }
                )
        conn.execute(insert(dep), rows)
        ctx.audit(conn, "bench.deployments", {"count": len(rows)})
    with ctx.db.read() as conn:
        from shipdeck.core.storage import audit

        already, _ = audit.head(conn)
    ctx.db.dispose()
    _write_events(url, max(events - already, 0))
    # Warm the commit-distance cache the way the first `shipdeck status` would.
    from shipdeck.core.services.status import status

    warm = build_context(Workspace(root, load_config(root / "shipdeck.toml")), database_url=url)
    status(warm)
    warm.db.dispose()
    (root / ".complete").write_text("ok\n")
    return root


# The child process: everything from the first import to the first painted dashboard.
CHILD = r"""
import time
t0 = time.perf_counter()
import asyncio, json, sys
sys.path.insert(0, {root!r})
from shipdeck.tui.app import ShipdeckApp
from shipdeck.core.bootstrap import open_context
t_import = time.perf_counter()
ctx = open_context({workspace!r})
t_ctx = time.perf_counter()

async def main():
    app = ShipdeckApp(ctx)
    async with app.run_test(size=(120, 40)) as pilot:
        while not getattr(app.screen, "loaded", False):
            await asyncio.sleep(0.002)
        await pilot.pause()  # the frame with the data is painted
        t_frame = time.perf_counter()
        shown = app.screen.query_one("#matrix").row_count
    print(json.dumps({{"total": t_frame - t0, "imports": t_import - t0, "context": t_ctx - t_import,
                      "frame": t_frame - t_ctx, "rows": shown}}))

asyncio.run(main())
"""


def measure(workspace: Path) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if k != "SHIPDECK_DATABASE_URL"}
    env["SHIPDECK_ACTOR"] = "alice"
    code = CHILD.format(root=str(ROOT), workspace=str(workspace))
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.tui_start")
    parser.add_argument("--apps", type=int, default=200)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    t = time.perf_counter()
    root = workspace(args.apps, args.events)
    print(f"workspace ready in {time.perf_counter() - t:.1f}s: {root}")
    runs = [measure(root) for _ in range(args.repeat)]
    totals = sorted(r["total"] for r in runs)
    last = runs[-1]
    print(f"apps={args.apps} events={args.events:,} rows shown={int(last['rows'])}")
    print(
        f"start -> first dashboard frame: median {statistics.median(totals):.3f}s "
        f"best {totals[0]:.3f}s worst {totals[-1]:.3f}s (goal < 1.5s, ratio {statistics.median(totals) / 1.5:.2f})"
    )
    print(
        f"last run split: imports {last['imports']:.3f}s, context {last['context']:.3f}s, "
        f"app start + status + paint {last['frame']:.3f}s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
