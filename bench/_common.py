"""The large workspace the foundation benchmarks share, built once and cached under bench/out/.

200 apps x 3 environments, each app a real git repository of 20 commits (written by one
`git fast-import` per app), three releases per app recorded through the release service,
deployments with their audit events (as tests record them: tests/support/deployments.py), and
1,000,000 audit events bulk-inserted with sqlite3 and a correctly computed chain
(core.storage.audit.event_hash), so `shipdeck audit verify` passes.

The first build takes a minute or two on 2 cores; later runs find `READY` and reuse it.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shipdeck.core.services.context import Context

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
ENVS = ("staging", "canary", "prod")
ACTORS = tuple(f"user{i:02d}" for i in range(20))  # user00..user19, 50,000 events each
KINDS = (
    "release.created",
    "plan.created",
    "plan.approved",
    "plan.checked",
    "run.started",
    "run.succeeded",
    "task.logs",
    "task.restart",
    "access.denied",
    "audit.checkpoint",
)
_START = datetime(2025, 1, 1, tzinfo=UTC)


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def git_env() -> dict[str, str]:
    return {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}


def _fast_import_stream(app: str, commits: int) -> bytes:
    """A linear history: commit i changes file.txt and CHANGELOG.md; marks :1..:commits."""
    parts: list[bytes] = []
    for i in range(1, commits + 1):
        when = int((_START + timedelta(hours=i)).timestamp())
        msg = f"{app}: change {i}\n".encode()
        body = f"{app} revision {i}\n".encode()
        log = "".join(f"- change {k}\n" for k in range(1, i + 1)).encode()
        parts.append(b"commit refs/heads/main\n")
        parts.append(f"mark :{i}\n".encode())
        who = f"Dev {i % 4} <dev{i % 4}@example.com> {when} +0000\n".encode()
        parts.append(b"author " + who + b"committer " + who)
        parts.append(f"data {len(msg)}\n".encode() + msg)
        if i > 1:
            parts.append(f"from :{i - 1}\n".encode())
        parts.append(f"M 644 inline file.txt\ndata {len(body)}\n".encode() + body)
        parts.append(f"M 644 inline CHANGELOG.md\ndata {len(log)}\n".encode() + log + b"\n")
    return b"".join(parts)


def make_repo(path: Path, app: str, commits: int) -> list[str]:
    """A real repository in a few milliseconds; returns the commit shas, oldest first."""
    env = git_env()
    path.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], env=env, check=True)
    marks = path / ".git" / "marks"
    subprocess.run(
        ["git", "fast-import", "--quiet", f"--export-marks={marks}"],
        cwd=path,
        input=_fast_import_stream(app, commits),
        env=env,
        check=True,
    )
    subprocess.run(["git", "checkout", "-q", "main"], cwd=path, env=env, check=True)
    by_mark = dict(line.split() for line in marks.read_text().splitlines())
    return [by_mark[f":{i}"] for i in range(1, commits + 1)]


def workspace_toml(apps: list[str]) -> str:
    lines = [
        "[workspace]",
        'name = "bench"',
        "",
        "[identity]",
        "allow_env_actor = true",
        'delegators = ["*"]',
        "",
        "[roles.release-managers]",
        'users = ["alice"]',
        'permissions = ["*"]',
        "",
        "[windows.office]",
        'cron = "0 8 * * 1-5"',
        'duration = "10h"',
        'timezone = "Europe/Berlin"',
        "",
    ]
    for env in ENVS:
        lines += [f"[environments.{env}]"]
        if env == "prod":
            lines += ['windows = ["office"]', "requires_previous = true"]
        lines.append("")
    for n, app in enumerate(apps):
        deps = f'depends_on = ["{apps[n - 1]}"]' if n % 10 else ""
        lines += [f"[apps.{app}]", f'repo = "repos/{app}"', f'owner = "team-{n % 7}"', deps]
        lines += ["config = { max_tokens = 4096, temperature = 0.2 }", ""]
        for e, env in enumerate(ENVS):
            lines += [
                f"[apps.{app}.targets.{env}]",
                'adapter = "local"',
                f"port = {20000 + 3 * n + e}",
                "",
            ]
    return "\n".join(lines)


def _bulk_audit(db_path: Path, events: int, apps: list[str]) -> None:
    """`events` audit events, chained exactly as core.storage.audit.append would chain them."""
    from shipdeck.core.domain.canonical import canonical_bytes
    from shipdeck.core.storage.audit import GENESIS, at_text, event_hash

    con = sqlite3.connect(db_path)
    con.execute("PRAGMA synchronous=OFF")
    prev = GENESIS
    batch = 50_000
    rows: list[tuple[object, ...]] = []
    con.execute("BEGIN")
    for seq in range(1, events + 1):
        at = (_START + timedelta(seconds=seq * 20)).strftime("%Y-%m-%d %H:%M:%S.%f")
        actor = ACTORS[seq % len(ACTORS)]
        ssh = f"10.0.{seq % 7}.{seq % 250}" if seq % 3 == 0 else None
        kind = KINDS[seq % len(KINDS)]
        app = apps[seq % len(apps)] if seq % 5 else None
        env = ENVS[seq % 3] if seq % 4 else None
        plan = f"plan-{seq // 50}" if kind.startswith(("plan.", "run.")) else None
        payload = canonical_bytes(
            {"n": seq, "note": "grüße ✓" if seq % 11 == 0 else None, "v": f"1.{seq % 40}.0"}
        )
        digest = event_hash(
            prev, seq, at_text(at), actor, actor, ssh, kind, app, env, plan, payload
        )
        rows.append((seq, at, actor, actor, ssh, kind, app, env, plan, payload, prev, digest))
        prev = digest
        if len(rows) == batch:
            con.executemany("INSERT INTO audit_event VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", rows)
            rows.clear()
            say(f"  audit events: {seq:,}")
    if rows:
        con.executemany("INSERT INTO audit_event VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", rows)
    con.execute("UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1", (events, prev))
    con.commit()
    con.close()


def build(apps: int = 200, commits: int = 20, events: int = 1_000_000) -> Path:
    """The cached workspace for these sizes (built if missing); returns its folder."""
    root = OUT / f"ws-{apps}x{len(ENVS)}-{commits}c-{events}e"
    if (root / "READY").exists():
        return root
    if root.exists():
        shutil.rmtree(root)
    say(f"building {root} (once; later runs reuse it)")
    sys.path.insert(0, str(ROOT))
    from shipdeck.core.bootstrap import build_context
    from shipdeck.core.services.context import resolve_actor
    from shipdeck.core.services.releases import create_release
    from shipdeck.core.storage.db import Database
    from shipdeck.core.workspace import Workspace, load_config
    from tests.support.deployments import record_deployment

    names = [f"app-{i:03d}" for i in range(apps)]
    t = time.perf_counter()
    shas = {name: make_repo(root / "repos" / name, name, commits) for name in names}
    say(f"  {apps} repositories in {time.perf_counter() - t:.1f} s")
    (root / "shipdeck.toml").write_text(workspace_toml(names), encoding="utf-8")
    ws = Workspace(root, load_config(root / "shipdeck.toml"))
    db_path = root / ".shipdeck" / "state.db"
    Database(f"sqlite:///{db_path}").upgrade()
    t = time.perf_counter()
    _bulk_audit(db_path, events, names)
    say(f"  {events:,} audit events in {time.perf_counter() - t:.1f} s")

    ctx = build_context(ws)
    ctx = replace(ctx, actor=resolve_actor(ws.config, {"USER": "bench", "SHIPDECK_ACTOR": "alice"}))
    t = time.perf_counter()
    picks = (commits // 4, commits // 2, commits - 1)  # prod, canary, staging run these
    for name in names:
        for k, idx in enumerate(picks):
            create_release(ctx, name, f"1.{k}.0", commit=shas[name][idx])
    for name in names:
        for env, version in zip(ENVS, ("1.2.0", "1.1.0", "1.0.0"), strict=True):
            record_deployment(ctx, name, env, version)
    say(f"  {3 * apps} releases and deployments in {time.perf_counter() - t:.1f} s")
    ctx.db.dispose()
    (root / "READY").write_text("ok\n")
    return root


def cli_env(root: Path, actor: str = "alice") -> dict[str, str]:
    return {
        **os.environ,
        "SHIPDECK_WORKSPACE": str(root),
        "SHIPDECK_ACTOR": actor,
        "NO_COLOR": "1",
        "PYTHONPATH": str(ROOT),
    }


def open_ctx(root: Path, actor: str = "alice") -> Context:
    """A service Context on the workspace, acting as `actor`."""
    sys.path.insert(0, str(ROOT))
    from shipdeck.core.bootstrap import build_context
    from shipdeck.core.services.context import resolve_actor
    from shipdeck.core.workspace import open_workspace

    ws = open_workspace(root)
    ctx = build_context(ws)
    return replace(ctx, actor=resolve_actor(ws.config, {"USER": "bench", "SHIPDECK_ACTOR": actor}))


def time_process(argv: list[str], env: dict[str, str] | None = None) -> float:
    """Wall time of one process run (it must succeed)."""
    t = time.perf_counter()
    subprocess.run(argv, env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def median_time(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def interleaved(
    a: Callable[[], float], b: Callable[[], float], runs: int
) -> Iterator[tuple[float, float]]:
    """Alternate the measured and the baseline run, so background load hits both alike."""
    for _ in range(runs):
        yield a(), b()
