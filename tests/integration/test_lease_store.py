"""The lease store's own logic, on SQLite and PostgreSQL: the row is created once (the upsert
keeps an existing epoch), every column comes back where it belongs, and the writes scoped to an
epoch leave a later holder alone (renew says so, free does nothing)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shipdeck.core.storage import leases
from shipdeck.core.storage.db import Database
from shipdeck.core.storage.leases import LeaseRow

SINCE = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
EXPIRES = SINCE + timedelta(seconds=15)


def take(db: Database, epoch: int, plan_id: str | None, runner: str) -> None:
    with db.write() as conn:
        leases.take(
            conn, "staging", epoch=epoch, holder="alice", plan_id=plan_id, since=SINCE,
            expires_at=EXPIRES, runner=runner,
        )  # fmt: skip


def test_lock_creates_the_row_once_and_reads_it_back_column_for_column(db: Database) -> None:
    with db.write() as conn:
        assert leases.lock(conn, "staging") == LeaseRow("staging", 0, None, None, None, None, None)
    take(db, 7, "p-1", "host|boot|42|99")
    with db.write() as conn:
        held = leases.lock(conn, "staging")  # the upsert leaves the existing row as it is
    assert held == LeaseRow("staging", 7, "alice", "p-1", SINCE, EXPIRES, "host|boot|42|99")
    with db.read() as conn:
        assert leases.of_plan(conn, "p-1") == held == leases.read(conn, "staging")
        assert leases.of_plan(conn, "p-2") is None and leases.read(conn, "prod") is None


def test_writes_at_a_stale_epoch_leave_the_new_holder_alone(db: Database) -> None:
    with db.write() as conn:
        leases.lock(conn, "staging")
    take(db, 1, "p-1", "first")
    take(db, 2, "p-2", "second")  # a reconciler took over
    later = EXPIRES + timedelta(minutes=1)
    with db.write() as conn:
        assert leases.renew(conn, "staging", 1, "p-1", later) is False
        leases.free(conn, "staging", 1)
        leases.set_runner(conn, "p-1", 1, "stale")
    with db.read() as conn:
        assert leases.read(conn, "staging") == LeaseRow(
            "staging", 2, "alice", "p-2", SINCE, EXPIRES, "second"
        )
    with db.write() as conn:
        assert leases.renew(conn, "staging", 2, "p-2", later) is True
        leases.free(conn, "staging", 2)
    with db.read() as conn:
        assert leases.read(conn, "staging") == LeaseRow("staging", 2, None, None, SINCE, None, None)
