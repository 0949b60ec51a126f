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
from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError

from shipdeck.core.errors import (
    SchemaBehindError,
    ShipdeckError,
    StorageFailed,
    StorageUnwritable,
)
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
        """A write transaction: committed on success, rolled back on any exception.

        A database that cannot take the write (read-only, disk full, connection gone) becomes a
        one-line StorageUnwritable/StorageFailed naming the cause, never raw SQL: the services
        record an intent before every outside effect, so this error also means "not attempted".
        """
        try:
            with self.engine.connect() as conn:
                conn = conn.execution_options(shipdeck_write=True)
                with conn.begin():
                    yield conn
        except DBAPIError as exc:
            raise self.storage_error(exc) from exc

    @contextmanager
    def read(self) -> Iterator[Connection]:
        try:
            with self.engine.connect() as conn, conn.begin():
                yield conn
        except DBAPIError as exc:
            raise self.storage_error(exc) from exc

    def storage_error(self, exc: DBAPIError) -> Exception:
        """The contract's error for a database that failed for reasons outside shipdeck, or
        `exc` itself when it is not one of those (a bug, a constraint: let it surface)."""
        cause = storage_cause(exc.orig)
        if cause is None:
            return exc
        unwritable, text_ = cause
        kind = StorageUnwritable if unwritable else StorageFailed
        return kind(f"database {self.display_url}: {text_}; nothing was changed")

    def schema_revision(self) -> str | None:
        try:
            with self.read() as conn:
                return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except (OperationalError, ProgrammingError) as exc:
            if storage_cause(exc.orig) is not None:
                raise self.storage_error(exc) from exc
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


_SQLITE_CAUSES = {
    "SQLITE_READONLY": (True, "read-only database (attempt to write a readonly database)"),
    "SQLITE_PERM": (True, "permission denied by the database file"),
    "SQLITE_AUTH": (True, "permission denied by the database file"),
    "SQLITE_CANTOPEN": (True, "cannot open the database file (permissions or missing folder)"),
    "SQLITE_FULL": (False, "disk full (database or disk is full)"),
    "SQLITE_IOERR": (False, "disk I/O error"),
    "SQLITE_BUSY": (False, "database busy (another writer held it past the busy timeout)"),
}
_PG_CAUSES = {
    "25006": (True, "read-only transaction (the server refuses writes)"),
    "42501": (True, "permission denied by the server"),
    "53100": (False, "disk full on the database server"),
    "53": (False, "the database server is out of resources"),
    "57": (False, "the database server ended the connection"),
    "08": (False, "the connection to the database server was lost"),
}


def storage_cause(orig: BaseException | None) -> tuple[bool, str] | None:
    """(unwritable?, cause) for driver errors that come from the database's surroundings.

    SQLite names its result codes (sqlite_errorname, extended codes like SQLITE_READONLY_DBMOVED
    share a prefix); PostgreSQL sends SQLSTATE, whose first two characters name the class.
    """
    name = getattr(orig, "sqlite_errorname", None)
    if isinstance(name, str):
        return next((v for k, v in _SQLITE_CAUSES.items() if name.startswith(k)), None)
    state = getattr(orig, "sqlstate", None)
    if isinstance(state, str):
        return _PG_CAUSES.get(state) or _PG_CAUSES.get(state[:2])
    if type(orig).__module__.startswith("psycopg") and type(orig).__name__ == "OperationalError":
        return _PG_CAUSES["08"]  # psycopg reports a closed connection without a SQLSTATE
    return None


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
