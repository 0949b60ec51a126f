"""The stores a run's group commit writes through, on SQLite and PostgreSQL: journal rows written
together come back in their order with their ids rising as written, events appended together
chain one after another (and none leave the head alone), and the lease fence names the holder."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import insert

from shipdeck.core.storage import audit, audit_head, journal, leases
from shipdeck.core.storage.db import Database
from shipdeck.core.storage.leases import Holding
from shipdeck.core.storage.tables import PLANS

AT = datetime(2026, 11, 24, 12, 0, 0, 5, tzinfo=UTC)
WHO = audit.Who("alice", "alice")


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    database.upgrade()
    with database.write() as conn:
        conn.execute(insert(PLANS).values(
            id="p-1", env="staging", digest="d", body=b"{}", created_at=AT, created_by="alice",
            updated_at=AT,
        ))  # fmt: skip
        audit.append(conn, WHO, "plan.created", {}, at=AT, binds=[(PLANS, {"id": "p-1"})])
    yield database
    database.dispose()


def step(app: str, name: str, state: str, detail: str = "") -> journal.Step:
    return journal.Step("p-1", 3, 1, app, name, state, detail, AT)


def test_rows_written_together_keep_their_order_and_ids(db: Database) -> None:
    rows = [step(f"app{n:02d}", "stage", "started", f"1.0 on green #{n}") for n in range(12)]
    with db.write() as conn:
        first = journal.add_all(conn, [step("web", "prepare", "done", "{}")])
        ids = journal.add_all(conn, rows)
        assert journal.add_all(conn, []) == []
    with db.read() as conn:
        back = journal.of_plan(conn, "p-1")
    assert ids == sorted(ids) and ids[0] > first[0]
    assert [r.id for r in back] == first + ids
    for row, written in zip(back[1:], rows, strict=True):
        assert (row.app, row.step, row.state, row.detail, row.epoch, row.wave, row.at) == (
            written.app, written.step, written.state, written.detail, 3, 1, AT,
        )  # fmt: skip


def test_events_appended_together_chain_in_order_and_none_touch_the_head(db: Database) -> None:
    events = [audit.NewEvent("run.stage.intent", {"n": n}, app=f"app{n}") for n in range(5)]
    with db.write() as conn:
        [one] = audit.append_all(conn, WHO, events[:1], at=AT)
        seqs = audit.append_all(conn, WHO, events[1:], at=AT)
        head = audit_head.head(conn)
        assert audit.append_all(conn, WHO, [], at=AT) == []
        assert audit_head.head(conn) == head
        assert audit.append(conn, WHO, "run.stage", {"intent_seq": one}, at=AT) == head[0] + 1
    assert [one, *seqs] == list(range(one, one + 5))
    with db.read() as conn:
        result = audit.verify(conn)
    assert result.ok and (result.head_seq, result.state_rows) == (one + 5, 1)


def test_the_fence_names_the_holding_and_nothing_for_an_unknown_environment(db: Database) -> None:
    with db.write() as conn:
        leases.lock(conn, "staging")
        leases.take(
            conn, "staging", epoch=4, holder="alice", plan_id="p-1", since=AT, expires_at=AT,
            runner="host|boot|1|2",
        )  # fmt: skip
    for exclusive in (False, True):
        with db.write() as conn:
            assert leases.fence(conn, "staging", exclusive=exclusive) == Holding(4, "p-1")
            assert leases.fence(conn, "prod", exclusive=exclusive) is None
