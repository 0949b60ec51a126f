"""One audited change per transaction through the service, against raw single-row commits.

    python -m bench --only audit_append

`ctx.change(...)` (the path every state change takes) on a fresh database, against raw
single-row INSERT + COMMIT with the bare driver (sqlite3 in WAL with synchronous=NORMAL, as
shipdeck opens it; psycopg on --database-url). Each sample is a round of 200 events; rounds
alternate. The figure is a time ratio: throughput >= 0.5x the raw commits means <= 2.0x here.
"""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Callable

from bench.harness import Metric, Options, alternate, timed
from bench.workspace import OUT, as_actor, build

ROUND = 200
RAW_SQL = "INSERT INTO audit_event VALUES ({})"
ROW = ("2026-01-01 00:00:00.000000", "alice", "bench", None, "bench.append", "app-001", "prod")


def _raw_appender(url: str) -> tuple[Callable[[], None], Callable[[], None]]:
    """(one round of raw commits, close) on the same kind of database as the service uses."""
    counter = itertools.count(10_000_000)
    payload = '{"i":1,"note":"grüße"}'.encode()
    if url.startswith("sqlite"):
        import sqlite3

        con = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=NORMAL")
        sql = RAW_SQL.format(",".join("?" * 12))

        def sqlite_round() -> None:
            for _ in range(ROUND):
                con.execute("BEGIN")
                con.execute(sql, (next(counter), *ROW, None, payload, "0" * 64, "1" * 64))
                con.execute("COMMIT")

        return sqlite_round, con.close
    import psycopg

    base, _, schema = url.partition("?options=-csearch_path%3D")
    pg = psycopg.connect(base, options=f"-csearch_path={schema}", autocommit=True)
    sql = RAW_SQL.format(",".join(["%s"] * 12))

    def pg_round() -> None:
        for _ in range(ROUND):
            with pg.transaction():
                pg.execute(sql, (next(counter), *ROW, None, payload, "0" * 64, "1" * 64))

    return pg_round, pg.close


def metrics(opts: Options) -> list[Metric]:
    from shipdeck.core.bootstrap import build_context
    from shipdeck.core.storage.db import Database
    from shipdeck.core.workspace import open_workspace

    built = build(opts.audit_apps, opts.events, opts.database_url)
    if opts.database_url:
        from bench.workspace import _postgres_schema_url, _reset_schema

        service_url = _postgres_schema_url(opts.database_url, "bench_append_service")
        raw_url = _postgres_schema_url(opts.database_url, "bench_append_raw")
        for url in (service_url, raw_url):
            _reset_schema(url)
    else:
        work = OUT / "append"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        service_url, raw_url = f"sqlite:///{work / 'service.db'}", f"sqlite:///{work / 'raw.db'}"
    for url in (service_url, raw_url):
        db = Database(url)
        db.upgrade()
        db.dispose()
    ctx = as_actor(build_context(open_workspace(built.root), database_url=service_url), "alice")
    raw_round, close = _raw_appender(raw_url)
    numbers = itertools.count()

    def service_round() -> None:
        for i in itertools.islice(numbers, ROUND):
            with ctx.change("bench.append", {"i": i, "note": "grüße"}, app="app-001", env="prod"):
                pass

    ours, base = alternate(
        lambda: timed(service_round), lambda: timed(raw_round), max(opts.runs, 10)
    )
    close()
    ctx.db.dispose()
    store = "postgresql" if opts.database_url else "sqlite"
    return [
        Metric(
            f"audit.append.{store}",
            f"{ROUND} audited changes, one transaction each (ctx.change)",
            f"{ROUND} raw single-row commits",
            ours,
            base,
            ("<=", 2.0),
        )
    ]
