"""The big workspaces the benchmarks share, built once per size and cached under bench/out/.

`apps` apps x 3 environments (staging, canary, prod, each with a `local` target), one real git
repository of 20 commits per app (one `git fast-import` each), three releases per app recorded
through the release service, a deployment per app and environment with its audit event, and
`events` hash-chained audit events written in bulk (chained exactly as the service chains them,
so `shipdeck audit verify` passes). On PostgreSQL (`database_url`) the state lives in a schema of
its own per size, kept for the next run like the folder.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from bench.harness import ROOT, Options

if TYPE_CHECKING:
    from shipdeck.core.services.context import Context

OUT = ROOT / "bench" / "out"
ENVS = ("staging", "canary", "prod")
ACTORS = tuple(f"user{i:02d}" for i in range(20))
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
START = datetime(2025, 1, 1, tzinfo=UTC)
COMMITS = 20


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Built:
    """A ready workspace: its folder and the database URL its state lives at."""

    root: Path
    url: str

    @property
    def sqlite_path(self) -> Path | None:
        return Path(self.url.removeprefix("sqlite:///")) if self.url.startswith("sqlite") else None


def git_env() -> dict[str, str]:
    return {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}


def _fast_import_stream(app: str, commits: int) -> bytes:
    """A linear history: commit i changes file.txt and CHANGELOG.md; marks :1..:commits."""
    parts: list[bytes] = []
    for i in range(1, commits + 1):
        when = int((START + timedelta(hours=i)).timestamp())
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


def bulk_audit(url: str, events: int, apps: list[str]) -> None:
    """Append `events` events after the current head, in transactions of 50,000."""
    from sqlalchemy import insert, update

    from shipdeck.core.domain.canonical import canonical_bytes
    from shipdeck.core.storage import audit, audit_head
    from shipdeck.core.storage.db import Database
    from shipdeck.core.storage.tables import AUDIT_EVENTS, AUDIT_HEAD

    db = Database(url)
    with db.read() as conn:
        seq, prev = audit_head.head(conn)
    target = seq + events
    batch: list[dict[str, object]] = []
    while seq < target:
        seq += 1
        at = START + timedelta(seconds=seq * 20)
        actor = ACTORS[seq % len(ACTORS)]
        ssh = f"10.0.{seq % 7}.{seq % 250}" if seq % 3 == 0 else None
        kind = KINDS[seq % len(KINDS)]
        app = apps[seq % len(apps)] if seq % 5 else None
        env = ENVS[seq % 3] if seq % 4 else None
        plan = f"plan-{seq // 50}" if kind.startswith(("plan.", "run.")) else None
        payload = canonical_bytes(
            {"n": seq, "note": "grüße ✓" if seq % 11 == 0 else None, "v": f"1.{seq % 40}.0"}
        )
        digest = audit.event_hash(
            prev, seq, audit.at_text(at), actor, actor, ssh, kind, app, env, plan, payload
        )
        batch.append(
            {
                "seq": seq,
                "at": at,
                "actor": actor,
                "os_user": actor,
                "ssh_client": ssh,
                "kind": kind,
                "app": app,
                "env": env,
                "plan": plan,
                "payload": payload,
                "prev_hash": prev,
                "hash": digest,
            }
        )
        prev = digest
        if len(batch) == 50_000 or seq == target:
            with db.write() as conn:
                conn.execute(insert(AUDIT_EVENTS), batch)
                conn.execute(
                    update(AUDIT_HEAD).where(AUDIT_HEAD.c.id == 1).values(seq=seq, hash=prev)
                )
            batch.clear()
            say(f"  audit events: {seq:,}")
    db.dispose()


def _postgres_schema_url(base_url: str, schema: str) -> str:
    """The URL of a schema of its own on the server (created if missing)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(base_url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    engine.dispose()
    sep = "&" if "?" in base_url else "?"
    return f"{base_url}{sep}options=-csearch_path%3D{schema}"


def build(apps: int = 200, events: int = 1_000_000, database_url: str | None = None) -> Built:
    """The cached workspace for these sizes (built if missing)."""
    tag = f"{apps}a-{events}e"
    if database_url:
        tag += "-pg" + hashlib.sha256(database_url.encode()).hexdigest()[:8]
    root = OUT / f"ws-{tag}"
    if database_url:
        url = _postgres_schema_url(database_url, "bench_" + tag.replace("-", "_"))
    else:
        url = f"sqlite:///{root / '.shipdeck' / 'state.db'}"
    if (root / "READY").exists():
        return Built(root, url)
    if root.exists():
        shutil.rmtree(root)
    say(f"building {root} (once; later runs reuse it)")
    from shipdeck.core.bootstrap import build_context
    from shipdeck.core.services.releases import create_release
    from shipdeck.core.storage.db import Database
    from shipdeck.core.workspace import Workspace, load_config
    from tests.support.deployments import record_deployment

    names = [f"app-{i:03d}" for i in range(apps)]
    t = time.perf_counter()
    shas = {name: make_repo(root / "repos" / name, name, COMMITS) for name in names}
    say(f"  {apps} repositories in {time.perf_counter() - t:.1f} s")
    (root / "shipdeck.toml").write_text(workspace_toml(names), encoding="utf-8")
    if database_url:
        _reset_schema(url)
    Database(url).upgrade()
    t = time.perf_counter()
    bulk_audit(url, events, names)
    say(f"  {events:,} audit events in {time.perf_counter() - t:.1f} s")

    ws = Workspace(root, load_config(root / "shipdeck.toml"))
    ctx = as_actor(build_context(ws, database_url=url), "alice")
    t = time.perf_counter()
    picks = (COMMITS // 4, COMMITS // 2, COMMITS - 1)  # prod, canary, staging run these
    for name in names:
        for k, idx in enumerate(picks):
            create_release(ctx, name, f"1.{k}.0", commit=shas[name][idx])
    for name in names:
        for env, version in zip(ENVS, ("1.2.0", "1.1.0", "1.0.0"), strict=True):
            record_deployment(ctx, name, env, version)
    say(f"  {3 * apps} releases and deployments in {time.perf_counter() - t:.1f} s")
    ctx.db.dispose()
    if database_url:
        _analyze(url)
    (root / "READY").write_text("ok\n")
    return Built(root, url)


def _analyze(url: str) -> None:
    """Planner statistics for the bulk-loaded tables. A server with autovacuum off (as the test
    server is) has none after the load, and plans status's joins for a handful of rows: the live
    deployments of 1000 apps as 6,000 index probes (nested loops) instead of two hash joins."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:  # the schema's tables only (the URL's search_path)
        names = conn.execute(
            text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
        ).scalars()
        conn.execute(text("ANALYZE " + ", ".join(f'"{n}"' for n in names)))
    engine.dispose()


def _reset_schema(url: str) -> None:
    """A half-built schema from an interrupted build is dropped with everything in it."""
    from sqlalchemy import create_engine, text

    base, _, options = url.partition("?options=-csearch_path%3D")
    engine = create_engine(base.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{options}" CASCADE'))
        conn.execute(text(f'CREATE SCHEMA "{options}"'))
    engine.dispose()


def workspace_events(opts: Options, apps: int) -> int:
    """The audit benches' workspace carries the full log; the others only a little of it."""
    return opts.events if apps == opts.audit_apps else 20_000


def as_actor(ctx: Context, actor: str) -> Context:
    """The same Context acting as `actor` (the bench workspace delegates, as the tests do)."""
    from shipdeck.core.services.context import resolve_actor

    return replace(ctx, actor=resolve_actor(ctx.config, {"USER": "bench", "SHIPDECK_ACTOR": actor}))


def open_ctx(built: Built, actor: str = "alice") -> Context:
    """A service Context on the workspace, acting as `actor`."""
    from shipdeck.core.bootstrap import build_context
    from shipdeck.core.workspace import open_workspace

    return as_actor(build_context(open_workspace(built.root), database_url=built.url), actor)
