"""Engines, transactions and the schema check.

SQLite is the embedded default (WAL, a busy timeout, and `BEGIN IMMEDIATE` for every write so two
writers queue instead of failing half-way with "database is locked"); PostgreSQL serves teams.
Engines are made here, on demand, never at import time.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.exc import OperationalError, ProgrammingError

from shipdeck.core.errors import SchemaBehindError, ShipdeckError
from shipdeck.core.storage.migrations import HEAD_REVISION

SQLITE_BUSY_MS = 60_000


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def normalise_url(url: str) -> str:
    """Accept the URLs people paste (postgresql://, postgres://) and use psycopg 3 for them."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


class Database:
    """One engine plus the two kinds of transaction the services use."""

    def __init__(self, url: str) -> None:
        self.url = normalise_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        if self.is_sqlite:
            path = self.url.removeprefix("sqlite:///")
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self.engine: Engine = create_engine(
                self.url,
                connect_args={"timeout": SQLITE_BUSY_MS / 1000, "check_same_thread": False},
            )
            event.listen(self.engine, "connect", _sqlite_on_connect)
            event.listen(self.engine, "begin", _sqlite_on_begin)
        else:
            self.engine = create_engine(self.url, pool_pre_ping=True)

    @property
    def display_url(self) -> str:
        """The URL without its password, for headers and messages."""
        return self.engine.url.render_as_string(hide_password=True)

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction: committed on success, rolled back on any exception."""
        with self.engine.connect() as conn:
            conn = conn.execution_options(shipdeck_write=True)
            with conn.begin():
                yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn, conn.begin():
            yield conn

    def schema_revision(self) -> str | None:
        try:
            with self.read() as conn:
                return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except (OperationalError, ProgrammingError):
            return None

    def check_schema(self) -> None:
        """Refuse to work on a schema older than this code (exit 4), saying how to fix it."""
        rev = self.schema_revision()
        if rev != HEAD_REVISION:
            where = "empty database" if rev is None else f"schema at revision {rev}"
            raise SchemaBehindError(
                f"database {self.display_url}: {where}, this shipdeck needs {HEAD_REVISION}; "
                "run 'shipdeck db upgrade'"
            )

    def upgrade(self) -> None:
        from shipdeck.core.storage.migrations.runner import upgrade

        try:
            upgrade(self.engine)
        except OperationalError as exc:
            raise ShipdeckError(f"database {self.display_url}: upgrade failed: {exc.orig}") from exc

    def dispose(self) -> None:
        self.engine.dispose()


def _sqlite_on_connect(dbapi_conn: Any, _record: Any) -> None:
    # Let SQLAlchemy's begin event emit BEGIN itself, so writes can ask for IMMEDIATE.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _sqlite_on_begin(conn: Connection) -> None:
    immediate = conn.get_execution_options().get("shipdeck_write", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
