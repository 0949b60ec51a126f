"""SQLite writes reuse one connection kept for them (core/storage/db.py, `_sqlite_write_on_spare`).

What the reuse must not change: a write that fails leaves no transaction or lock behind, a broken
connection is never handed to the next write, writers on other threads and other processes still
queue, and every committed event is in the chain.
"""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from shipdeck.core.storage import audit
from shipdeck.core.storage.db import Database

WHO = audit.Who("alice", "alice")
AT = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'state.db'}")
    database.upgrade()
    return database


def _append(db: Database, note: str) -> int:
    with db.write() as conn:
        return audit.append(conn, WHO, "test.write", {"note": note}, at=AT)


def _other_process_can_write(db: Database) -> None:
    """Another connection takes the writer lock at once: nothing of ours still holds it."""
    assert db.path is not None
    other = sqlite3.connect(db.path, timeout=0, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
    finally:
        other.close()


def test_a_failed_write_leaves_no_lock_and_no_row(db: Database) -> None:
    _append(db, "first")
    with pytest.raises(RuntimeError, match="body failed"), db.write() as conn:
        audit.append(conn, WHO, "test.write", {"note": "rolled back"}, at=AT)
        raise RuntimeError("body failed")
    _other_process_can_write(db)
    assert _append(db, "after") == 2  # the rolled-back event took no sequence number
    with db.read() as conn:
        notes = conn.execute(text("SELECT payload FROM audit_event ORDER BY seq")).scalars().all()
    assert [bytes(p) for p in notes] == [b'{"note":"first"}', b'{"note":"after"}']


def test_a_broken_write_connection_is_not_reused(db: Database) -> None:
    with db.write() as conn:
        audit.append(conn, WHO, "test.write", {"note": "first"}, at=AT)
        driver = conn.connection.driver_connection
    assert driver is not None
    driver.close()  # the kept connection dies between two writes
    with pytest.raises(DBAPIError, match="closed database"):
        _append(db, "lost")
    assert _append(db, "second") == 2  # a fresh connection: the next write works
    with db.read() as conn:
        assert audit.verify(conn).ok


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
    _other_process_can_write(db)


def test_dispose_closes_the_kept_connection(db: Database) -> None:
    with db.write() as conn:
        driver = conn.connection.driver_connection
    assert driver is not None
    db.dispose()
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        driver.execute("SELECT 1")
    assert _append(db, "after dispose") == 1  # the Database still works, on a new connection
