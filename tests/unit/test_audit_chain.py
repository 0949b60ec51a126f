"""The hash chain's encoding: every column counts, NULL is not '', one encoding per row."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import text

from shipdeck.core.domain.checkpoints import Checkpoint, parse_checkpoints
from shipdeck.core.storage import audit, audit_head
from shipdeck.core.storage.db import Database

AT = datetime(2026, 11, 24, 12, 0, 0, 5, tzinfo=UTC)
BASE: dict[str, object] = {
    "prev_hash": "prev",
    "seq": 7,
    "at": "2026-11-24T12:00:00.000005",
    "actor": "alice",
    "os_user": "alice",
    "ssh_client": None,
    "kind": "k",
    "app": None,
    "env": None,
    "plan": None,
    "payload": b"{}",
}


def _hash(**changes: object) -> str:
    return audit.event_hash(**{**BASE, **changes})  # type: ignore[arg-type]


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    d = Database(f"sqlite:///{tmp_path / 'a.db'}")
    d.upgrade()
    yield d
    d.dispose()


def test_at_text_is_the_same_for_every_form_of_one_instant() -> None:
    berlin = timezone(timedelta(hours=1))
    forms: list[datetime | str] = [
        AT,
        AT.astimezone(berlin),
        AT.replace(tzinfo=None),
        "2026-11-24 12:00:00.000005",
        "2026-11-24T12:00:00.000005",
    ]
    assert {audit.at_text(f) for f in forms} == {"2026-11-24T12:00:00.000005"}
    assert audit.at_text("2026-11-24 12:00:00") == audit.at_text(datetime(2026, 11, 24, 12))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("prev_hash", "prev2"),
        ("seq", 8),
        ("at", "2026-11-24T12:00:00.000006"),
        ("actor", "bob"),
        ("os_user", "root"),
        ("ssh_client", "10.0.0.1"),
        ("kind", "k2"),
        ("app", "web"),
        ("env", "prod"),
        ("plan", "p-1"),
        ("payload", b'{"a":1}'),
    ],
)
def test_every_field_is_covered_by_the_hash(field: str, value: object) -> None:
    assert _hash(**{field: value}) != _hash()


@pytest.mark.parametrize("field", ["ssh_client", "app", "env", "plan"])
def test_null_and_empty_text_hash_differently(field: str) -> None:
    assert _hash(**{field: ""}) != _hash(**{field: None})


@pytest.mark.parametrize("bad", ["a\x1fb", "a\x1eb", "a\x00b"])
def test_append_refuses_separator_characters_and_writes_nothing(db: Database, bad: str) -> None:
    with pytest.raises(ValueError, match="reserved"), db.write() as conn:
        audit.append(conn, audit.Who(bad, "alice"), "k", {}, at=AT)
    with pytest.raises(ValueError), db.write() as conn:
        audit.append(conn, audit.Who("alice", "alice"), "k", {}, at=AT, app=bad)
    with db.read() as conn:
        assert audit_head.head(conn) == (0, audit.GENESIS)
        assert conn.execute(text("SELECT count(*) FROM audit_event")).scalar() == 0


def test_append_links_each_event_to_the_previous_one(db: Database) -> None:
    who = audit.Who("alice", "os-alice", "192.0.2.7")
    with db.write() as conn:
        s1 = audit.append(conn, who, "a.one", {"n": 1}, at=AT, app="web")
        s2 = audit.append(conn, who, "a.two", {"ü": "✓"}, at=AT + timedelta(seconds=1), env="prod")
    assert (s1, s2) == (1, 2)
    with db.read() as conn:
        rows = conn.execute(text("SELECT seq, prev_hash, hash FROM audit_event ORDER BY seq")).all()
        assert rows[0].prev_hash == audit.GENESIS
        assert rows[1].prev_hash == rows[0].hash
        assert audit_head.head(conn) == (2, rows[1].hash)
        result = audit.verify(conn)
    assert result.ok and result.events == 2 and result.first_bad_seq is None
    assert (result.head_seq, result.head_hash) == (2, rows[1].hash)


def test_payload_is_stored_canonical_and_redacted(db: Database) -> None:
    secret = "hf_" + "x" * 30
    with db.write() as conn:
        audit.append(conn, audit.Who("a", "a"), "k", {"b": 1, "a": secret, "api_key": "v"}, at=AT)
    with db.read() as conn:
        payload = bytes(conn.execute(text("SELECT payload FROM audit_event")).scalar_one())
    assert payload == b'{"a":"***","api_key":"***","b":1}'
    assert json.loads(payload)["b"] == 1


def test_empty_log_verifies() -> None:
    d = Database("sqlite://")
    assert d.path is None  # in memory: no file named "sqlite:" in the working folder
    d.upgrade()
    with d.read() as conn:
        r = audit.verify(conn)
    assert r.ok and r.events == 0 and r.head_hash == audit.GENESIS
    d.dispose()


def test_checkpoint_lines_round_trip_and_bad_lines_name_their_place() -> None:
    cp = Checkpoint(12, "ab" * 32, "2026-11-24T12:00:00+00:00")
    assert parse_checkpoints(cp.to_json() + "\n\n" + cp.to_json(), "cps") == [cp, cp]
    with pytest.raises(ValueError, match=r"^cps: line 2: not a checkpoint"):
        parse_checkpoints(cp.to_json() + "\n{not json}\n", "cps")
    with pytest.raises(ValueError, match=r"^cps: line 1: "):
        parse_checkpoints('{"hash": "x"}', "cps")
