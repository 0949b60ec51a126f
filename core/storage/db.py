"""Engines, transactions and the schema check.

SQLite is the embedded default (WAL, a busy timeout, and `BEGIN IMMEDIATE` for every write so two
writers queue instead of failing half-way with "database is locked"); PostgreSQL serves teams.
Engines are made here, on demand, never at import time.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any, TypeAlias

from sqlalchemy import Connection, Engine, create_engine, event, make_url, text
from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError

from shipdeck.core.errors import (
    ConfigError,
    DatabaseUnavailable,
    PermissionDenied,
    SchemaBehindError,
    ShipdeckError,
    StorageFailed,
    StorageUnwritable,
)
from shipdeck.core.storage.files import (
    exists,
    first_denied,
    from_os_error,
    permission_problem,
    touch,
)
from shipdeck.core.storage.migrations import HEAD_REVISION

# The open transaction services hand to the stores. Services name this type, never SQLAlchemy's:
# they hold no SQL (the stores in core.storage do), which an import-linter contract checks.
Tx: TypeAlias = Connection


SQLITE_BUSY_MS = 60_000
# A PostgreSQL session that sits inside a transaction this long is a stalled or stopped process
# (SIGSTOP, Ctrl-Z, a hung host): the server ends it, so the row locks it holds (a lease, the
# audit head) cannot stop a reconcile or every other writer forever. No shipdeck transaction
# waits on anything but the database; the longest client-side gap is one verify batch.
PG_STALLED_TRANSACTION_MS = 30_000
# A kept PostgreSQL write connection idle longer than this is checked (the pool's pre-ping)
# before the next write: see Database._kept_connection.
KEPT_IDLE_S = 0.5


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def normalise_url(url: str) -> str:
    """Accept the URLs people paste (postgresql://, postgres://) and use psycopg 3 for them."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


class Database:
    """One engine plus the two kinds of transaction the services use.

    Opening never creates anything: a SQLite file that is not there is reported (only
    `create()`, which `db upgrade` calls, makes one), so a mistyped or forgotten URL cannot
    quietly start a second, empty state beside the real one.
    """

    def __init__(self, url: str) -> None:
        self.url = normalise_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        self.path: Path | None = None
        if self.is_sqlite:
            # SQLAlchemy's own reading of the URL: "sqlite://" is in memory, not a file "sqlite:".
            raw = make_url(self.url).database
            if raw and raw != ":memory:":
                self.path = Path(raw)
            self.engine: Engine = create_engine(
                self.url,
                connect_args={"timeout": SQLITE_BUSY_MS / 1000, "check_same_thread": False},
            )
            event.listen(self.engine, "connect", _sqlite_on_connect)
            # BEGIN comes from the dialect, not from a "begin" listener: one engine listener
            # makes every connect, begin, commit and statement dispatch events, a tenth of an
            # audited change (bench/audit_append.py).
            self.engine.dialect.do_begin = _sqlite_begin  # type: ignore[method-assign,assignment]
        else:
            # No native hstore: shipdeck has no hstore column, and looking the type up cost every
            # new connection three round trips (a savepoint, the lookup, its release).
            self.engine = create_engine(self.url, pool_pre_ping=True, use_native_hstore=False)
            event.listen(self.engine, "connect", _pg_on_connect)
        self._spare: Connection | None = None  # see _kept_connection
        self._spare_at = 0.0
        self._spare_free = threading.Lock()

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
        A permission problem names the file, the user and the fix (`_problem`).
        """
        kept = self._spare_free.acquire(blocking=False)  # False: another thread writes on it
        try:
            yield from self._transaction(kept=kept)
        finally:
            if kept:
                self._spare_free.release()

    def _kept_connection(self) -> Connection:
        """The connection kept checked out for writes (the spare lock held), or a new one.

        Writes come one after another (SQLite has one writer at a time; a run writes from a
        few threads), so one kept connection serves nearly every write: taking a Connection from
        the pool and handing it back cost a fifth of an audited change, and on PostgreSQL the
        pool's pre-ping is a round trip (bench/audit_append.py). On PostgreSQL a connection idle
        longer than KEPT_IDLE_S goes back to the pool and the write takes one through the
        pre-ping, so a server restart or a killed session between writes is still found before
        a write, as HikariCP skips its alive check only for connections used moments ago."""
        conn, self._spare = self._spare, None
        if (
            conn is not None
            and not self.is_sqlite
            and time.monotonic() - self._spare_at > KEPT_IDLE_S
        ):
            conn.close()
            conn = None
        return conn if conn is not None and not conn.closed else self.engine.connect()

    def _transaction(self, *, kept: bool) -> Iterator[Connection]:
        """A write transaction on the kept connection (or a new one), translated into the
        contract's errors, connecting included; the kept connection is kept again only after a
        commit (after any failure it is closed, so the next write never inherits a broken one)."""
        conn: Connection | None = None
        try:
            conn = self._kept_connection() if kept else self.engine.connect()
            if self.is_sqlite:  # the writer lock first, so writers queue (_sqlite_begin)
                sqlite_execute(conn, "BEGIN IMMEDIATE")
            with conn.begin():
                yield conn
        except BaseException as exc:
            if conn is not None:
                conn.close()
            if isinstance(exc, PermissionError | DBAPIError):
                raise self._contract_error(exc) from exc
            raise
        if kept:
            self._spare, self._spare_at = conn, time.monotonic()
        else:
            conn.close()

    @contextmanager
    def read(self) -> Iterator[Connection]:
        try:
            with self.engine.connect() as conn, conn.begin():
                yield conn
        except (PermissionError, DBAPIError) as exc:
            raise self._contract_error(exc) from exc

    def _contract_error(self, exc: PermissionError | DBAPIError) -> Exception:
        """What a transaction raises for `exc`: an error people can act on (`_problem`),
        else a storage error. One handler, not two nested context managers: every audited
        change passes through it (bench/audit_append.py)."""
        if isinstance(exc, PermissionError):
            return from_os_error(exc)
        if isinstance(exc, OperationalError | ProgrammingError) and (problem := self._problem(exc)):
            return problem
        return self.storage_error(exc)

    def storage_error(self, exc: DBAPIError) -> Exception:
        """The contract's error for a database that failed for reasons outside shipdeck, or
        `exc` itself when it is not one of those (a bug, a constraint: let it surface)."""
        cause = storage_cause(exc.orig)
        if cause is None:
            return exc
        unwritable, text_ = cause
        kind = StorageUnwritable if unwritable else StorageFailed
        return kind(f"database {self.display_url}: {text_}; nothing was changed")

    @property
    def exists(self) -> bool:
        """False only for a SQLite file that is not there (PostgreSQL: the server decides)."""
        return self.path is None or exists(self.path)

    def sqlite_files(self) -> list[Path]:
        """The folder and the files SQLite needs to write in WAL mode, in the order to check."""
        if self.path is None:
            return []
        return [self.path.parent, self.path, *(Path(f"{self.path}{s}") for s in ("-wal", "-shm"))]

    def check_access(self) -> None:
        """A SQLite state this user cannot write is a permission problem naming file, user and
        fix (exit 4), found before SQLite reports it as "unable to open" or "readonly"."""
        denied = first_denied(self.sqlite_files(), write=True)
        if denied is not None:
            raise permission_problem(denied)

    @contextmanager
    def _translated(self) -> Iterator[None]:
        """Database errors that are not bugs, as the errors people can act on."""
        try:
            yield
        except PermissionError as exc:
            raise from_os_error(exc) from exc
        except (OperationalError, ProgrammingError) as exc:
            problem = self._problem(exc)
            if problem is None:
                raise
            raise problem from exc

    def _problem(self, exc: OperationalError | ProgrammingError) -> ShipdeckError | None:
        text_ = str(exc.orig)
        low = text_.lower()
        if self.is_sqlite and ("readonly" in low or "unable to open" in low):
            denied = first_denied(self.sqlite_files(), write=True)
            return permission_problem(denied) if denied else None
        if self.is_sqlite:
            return None
        if "permission denied" in low or "insufficientprivilege" in type(exc.orig).__name__.lower():
            line = text_.strip().splitlines()[0]
            return PermissionDenied(f"not permitted: database {self.display_url}: {line}")
        connecting = low.startswith("connection failed") or (
            "connection to server" in low and "failed" in low
        )
        if isinstance(exc, OperationalError) and connecting:
            line = text_.strip().splitlines()[0] if text_.strip() else type(exc.orig).__name__
            return DatabaseUnavailable(f"database {self.display_url}: cannot connect: {line}")
        return None

    def schema_revision(self) -> str | None:
        if not self.exists:
            return None
        self.check_access()
        try:
            with self.read() as conn:
                return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except (OperationalError, ProgrammingError) as exc:
            if _no_such_table(exc):
                return None
            raise

    def check_schema(self) -> None:
        """Refuse to work on a missing database or a schema older than this code (exit 4),
        saying how to fix it. Permission and connection problems surface as themselves."""
        if not self.exists:
            raise SchemaBehindError(
                f"database {self.display_url}: no such database; run 'shipdeck db upgrade' to create it "
                "(if your team shares a PostgreSQL state, set [workspace] database in "
                "shipdeck.toml instead)"
            )
        rev = self.schema_revision()
        if rev != HEAD_REVISION:
            where = "empty database" if rev is None else f"schema at revision {rev}"
            raise SchemaBehindError(
                f"database {self.display_url}: {where}, this shipdeck needs {HEAD_REVISION}; "
                "run 'shipdeck db upgrade'"
            )

    def session_user(self) -> str:
        """PostgreSQL's session_user: the login the server authenticated, which no client
        setting changes (SET ROLE changes current_user, not this)."""
        if self.is_sqlite:
            raise ConfigError(
                f'[identity] source = "database" needs PostgreSQL, not {self.display_url}'
            )
        with self.read() as conn:
            return str(conn.execute(text("SELECT session_user")).scalar_one())

    def upgrade(self) -> None:
        """Create (SQLite: the file, with the workspace's modes) and migrate the schema."""
        from shipdeck.core.storage.migrations.runner import upgrade

        if self.path is not None and not self.path.exists():
            try:
                touch(self.path)
            except PermissionError as exc:
                raise from_os_error(exc) from exc
        self.check_access()
        try:
            with self._translated():
                upgrade(self.engine)
        except OperationalError as exc:
            raise ShipdeckError(f"database {self.display_url}: upgrade failed: {exc.orig}") from exc

    def dispose(self) -> None:
        spare, self._spare = self._spare, None
        if spare is not None:
            spare.close()
        self.engine.dispose()


def _no_such_table(exc: OperationalError | ProgrammingError) -> bool:
    low = str(exc.orig).lower()
    return "no such table" in low or ("alembic_version" in low and "does not exist" in low)


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
    "25P03": (False, "the database server ended this stalled session (idle in a transaction)"),
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
    # BEGIN is _sqlite_begin's (or Database.write's, IMMEDIATE), not sqlite3's implicit one.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _pg_on_connect(dbapi_conn: Any, _record: Any) -> None:
    autocommit = dbapi_conn.autocommit
    dbapi_conn.autocommit = True  # a SET outside any transaction, for the whole session
    cur = dbapi_conn.cursor()
    cur.execute(f"SET idle_in_transaction_session_timeout = {PG_STALLED_TRANSACTION_MS}")
    cur.close()
    dbapi_conn.autocommit = autocommit


def _sqlite_begin(dbapi_conn: Any) -> None:
    """The BEGIN of every transaction SQLAlchemy opens (on_connect turned sqlite3's implicit
    ones off), unless Database.write began one IMMEDIATE already."""
    driver = dbapi_conn.driver_connection
    if not driver.in_transaction:
        driver.execute("BEGIN")


def driver_sql(conn: Connection) -> tuple[Callable[..., Any], str]:
    """(run, mark): how to run driver SQL in `conn`'s transaction, and its parameter mark.

    SQLite runs it on sqlite3 itself (`sqlite_execute`); PostgreSQL through exec_driver_sql,
    whose error handling also discards a connection the server ended."""
    if conn.dialect.name == "sqlite":
        return partial(_sqlite_run, conn.connection.driver_connection), "?"
    return conn.exec_driver_sql, "%s"


def driver_rows(conn: Connection, sql: str, params: Sequence[Any]) -> list[Any]:
    """Every row of driver SQL (marked as `driver_sql` says) in `conn`'s transaction; on
    PostgreSQL in the binary result format, so a bytea column arrives as its bytes, not as hex
    text twice its size that psycopg then decodes (the export's lines: bench/audit_export.py).
    Errors come back as SQLAlchemy's DBAPIError classes, as `sqlite_execute`'s do."""
    if conn.dialect.name == "sqlite":
        return _sqlite_run(conn.connection.driver_connection, sql, params).fetchall()
    driver: Any = conn.connection.driver_connection
    dbapi: Any = conn.dialect.loaded_dbapi
    try:
        return driver.execute(sql, params, binary=True).fetchall()
    except dbapi.Error as exc:
        raise DBAPIError.instance(sql, params, exc, dbapi.Error) from exc


def driver_many(conn: Connection) -> Callable[[str, Sequence[Sequence[Any]]], None]:
    """How to run one driver SQL statement (marked as `driver_sql` says) for many parameter
    rows in `conn`'s transaction: sqlite3's executemany, or psycopg's (pipelined: one round
    trip for them all, not one each)."""
    return partial(_sqlite_many if conn.dialect.name == "sqlite" else _pg_many, conn)


def _sqlite_many(conn: Connection, sql: str, rows: Sequence[Sequence[Any]]) -> None:
    driver: Any = conn.connection.driver_connection
    try:
        if len(rows) == 1:  # execute: a third of executemany's cost for the one row
            driver.execute(sql, rows[0])
        else:
            driver.executemany(sql, rows)
    except sqlite3.Error as exc:
        raise DBAPIError.instance(sql, rows, exc, sqlite3.Error) from exc


def _pg_many(conn: Connection, sql: str, rows: Sequence[Sequence[Any]]) -> None:
    if len(rows) == 1:  # no pipeline to set up for one
        conn.exec_driver_sql(sql, tuple(rows[0]))
    elif rows:
        conn.exec_driver_sql(sql, list(rows))


def sqlite_execute(conn: Connection, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
    """Run one statement on SQLite's own connection, inside `conn`'s transaction.

    For the statements every transaction and every audit append runs: SQLAlchemy's
    per-statement work cost ten times SQLite's (bench/audit_append.py), and sqlite3 keeps each
    SQL text prepared in its statement cache. Errors come back as SQLAlchemy's DBAPIError
    classes, so the transactions' translation into the contract's errors still applies.
    """
    return _sqlite_run(conn.connection.driver_connection, sql, params)


def _sqlite_run(driver: Any, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
    try:
        return driver.execute(sql, params)
    except sqlite3.Error as exc:
        raise DBAPIError.instance(sql, params, exc, sqlite3.Error) from exc
