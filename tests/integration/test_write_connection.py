"""Writes reuse one connection kept for them (core/storage/db.py, `Database._kept_connection`).

What the reuse must not change: a write that fails leaves no transaction or lock behind, a broken
connection is never handed to the next write, a PostgreSQL session killed while the connection
sat idle is found before a write, writers on other threads still queue, and every committed
event is in the chain. SQLite and PostgreSQL (the `db_url` fixture runs both).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from shipdeck.core.errors import DatabaseUnavailable, ShipdeckError, StorageFailed
from shipdeck.core.storage import audit
from shipdeck.core.storage import db as db_module
from shipdeck.core.storage.db import Database
from tests.support.moto_server import free_port

WHO = audit.Who("alice", "alice")
AT = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    database.upgrade()
    yield database
    database.dispose()


def _append(db: Database, note: str) -> int:
    with db.write() as conn:
        return audit.append(conn, WHO, "test.write", {"note": note}, at=AT)


def _kept_driver(db: Database) -> object:
    """The driver connection the last write ran on (the kept one)."""
    with db.write() as conn:
        driver = conn.connection.driver_connection
    assert driver is not None
    return driver


def _another_session_can_lock_the_head(db: Database) -> None:
    """Another connection takes the writer lock at once: nothing of ours still holds it."""
    other = create_engine(db.url, connect_args={"timeout": 0} if db.is_sqlite else {})
    try:
        with other.connect() as conn:
            if db.is_sqlite:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                conn.exec_driver_sql("SELECT seq FROM audit_head WHERE id = 1 FOR UPDATE NOWAIT")
            conn.rollback()
    finally:
        other.dispose()


def _notes(db: Database) -> list[bytes]:
    with db.read() as conn:
        rows = conn.execute(text("SELECT payload FROM audit_event ORDER BY seq")).scalars()
        return [bytes(p) for p in rows]


def _kill_session_of(db: Database, driver: object) -> None:
    pid = driver.info.backend_pid  # type: ignore[attr-defined]
    other = create_engine(db.url)
    with other.connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        conn.commit()
    other.dispose()


def test_a_failed_write_leaves_no_lock_and_no_row(db: Database) -> None:
    _append(db, "first")
    with pytest.raises(RuntimeError, match="body failed"), db.write() as conn:
        audit.append(conn, WHO, "test.write", {"note": "rolled back"}, at=AT)
        raise RuntimeError("body failed")
    _another_session_can_lock_the_head(db)
    assert _append(db, "after") == 2  # the rolled-back event took no sequence number
    assert _notes(db) == [b'{"note":"first"}', b'{"note":"after"}']


def test_a_broken_write_connection_is_not_reused(db: Database) -> None:
    _append(db, "first")
    driver = _kept_driver(db)
    if db.is_sqlite:
        driver.close()  # type: ignore[attr-defined]
        broken: type[Exception] = DBAPIError
    else:
        _kill_session_of(db, driver)  # within KEPT_IDLE_S: no pre-ping, the write finds it
        broken = StorageFailed
    with pytest.raises(broken):
        _append(db, "lost")
    assert _append(db, "second") == 2  # a fresh connection: the next write works
    assert _notes(db) == [b'{"note":"first"}', b'{"note":"second"}']
    with db.read() as conn:
        assert audit.verify(conn).ok


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)  # SQLite has no session to lose
def test_a_session_killed_while_idle_is_found_before_the_write(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    _append(db, "first")
    _kill_session_of(db, _kept_driver(db))
    monkeypatch.setattr(db_module, "KEPT_IDLE_S", 0.0)  # as if it sat idle past the window
    assert _append(db, "second") == 2  # checked through the pool's pre-ping, reconnected
    assert _notes(db) == [b'{"note":"first"}', b'{"note":"second"}']


def test_writers_on_many_threads_all_commit_in_one_chain(db: Database) -> None:
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(25):
                _append(db, f"{n}-{i}")
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with db.read() as conn:
        result = audit.verify(conn)
    assert (result.ok, result.events) == (True, 200)
    _another_session_can_lock_the_head(db)


def test_dispose_closes_the_kept_connection(db: Database) -> None:
    driver = _kept_driver(db)
    db.dispose()
    with pytest.raises(Exception, match="closed"):  # sqlite3 and psycopg both say so
        driver.execute("SELECT 1")  # type: ignore[attr-defined]
    assert _append(db, "after dispose") == 1  # the Database still works, on a new connection


def test_a_server_that_cannot_be_reached_is_the_contracts_error_on_write(tmp_path: Path) -> None:
    """Connecting is inside the write's error translation, on the kept path and the other."""
    db = Database(f"postgresql://postgres@127.0.0.1:{free_port()}/test?connect_timeout=2")
    for _ in range(2):  # the first write would make the kept connection, the second reuses none
        with pytest.raises(DatabaseUnavailable, match="cannot connect"), db.write():
            pass
    db.dispose()
    missing = tmp_path / "gone" / "state.db"
    lite = Database(f"sqlite:///{missing}")
    with pytest.raises(ShipdeckError) as err, lite.write():
        pass
    assert str(missing.parent) in str(err.value)
