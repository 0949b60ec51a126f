"""The audit log on SQLite and PostgreSQL: every kind of tampering is caught at the right sequence
number by `shipdeck audit verify`, an honest log never raises an alarm, and list/export return
exactly the events asked for."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, text

from shipdeck.core.services import audit_log
from shipdeck.core.storage import audit
from tests.support.cli import Ran, shipdeck
from tests.support.workspace import WorkspaceFixture

START = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
ACTORS = ("alice", "bob", "zoë", "ci-bot")
KINDS = ("release.created", "plan.created", "plan.approved", "task.restart", "access.denied")
N = 300


@dataclass(frozen=True)
class Ev:
    seq: int
    at: datetime
    actor: str
    ssh: str | None
    kind: str
    app: str | None
    env: str | None
    plan: str | None
    payload: dict[str, Any]


def honest_log(ws: WorkspaceFixture, n: int = N) -> list[Ev]:
    """n mixed events: four actors (one non-ASCII), NULL and set subjects, SSH or not, unicode
    and nested payloads, timestamps with and without microseconds."""
    out: list[Ev] = []
    for start in range(0, n, 60):
        with ws.base.db.write() as conn:
            for i in range(start, min(start + 60, n)):
                ev = Ev(
                    seq=i + 1,
                    at=START + timedelta(minutes=i, microseconds=(i % 3) * 123_457),
                    actor=ACTORS[i % 4],
                    ssh=None if i % 5 else f"198.51.100.{i % 250}",
                    kind=KINDS[i % 5],
                    app=(None, "chat-api", "web")[i % 3],
                    env=(None, "staging", "prod", "prod")[i % 4] if i % 3 else None,
                    plan=f"p-{i // 10}" if i % 7 == 0 else None,
                    payload={
                        "i": i,
                        "note": "Grüße ✓ 日本 🚀" if i % 2 else None,
                        "nested": {"l": [i, 0.5]},
                    },
                )
                seq = audit.append(
                    conn,
                    audit.Who(ev.actor, f"os-{ev.actor}", ev.ssh),
                    ev.kind,
                    ev.payload,
                    at=ev.at,
                    app=ev.app,
                    env=ev.env,
                    plan=ev.plan,
                )
                assert seq == ev.seq
                out.append(ev)
    return out


def verify(ws: WorkspaceFixture, *extra: str) -> Ran:
    return shipdeck("-o", "json", "audit", "verify", *extra, env=ws.env("erin"))


def checkpoint(ws: WorkspaceFixture, path: Path) -> int:
    r = shipdeck("-o", "json", "audit", "checkpoint", "--to", str(path), env=ws.env("alice"))
    assert r.code == 0, r.err
    return int(r.json()["checkpoint"]["seq"])


def assert_broken_at(ws: WorkspaceFixture, seq: int, *extra: str) -> dict[str, Any]:
    r = verify(ws, *extra)
    assert r.code == 7, (r.out, r.err)
    doc = r.json()
    assert doc["schema_version"] == 1 and doc["ok"] is False
    assert doc["first_bad_seq"] == seq, doc
    table = shipdeck("audit", "verify", *extra, env=ws.env("erin"))
    assert table.code == 7 and table.out == ""
    assert table.err.splitlines() == [
        f"shipdeck: integrity failure at event {seq}: {doc['reason']}"
    ]
    return doc


def assert_ok(ws: WorkspaceFixture, events: int, *extra: str) -> None:
    r = verify(ws, *extra)
    assert r.code == 0, (r.out, r.err)
    doc = r.json()
    assert doc["ok"] is True and doc["first_bad_seq"] is None and doc["events"] == events
    assert doc["head"]["seq"] == events


def rows(conn: Connection, since: int = 1) -> list[Any]:
    return list(
        conn.execute(
            text(
                "SELECT seq, at, actor, os_user, ssh_client, kind, app, env, plan, payload, "
                "prev_hash, hash FROM audit_event WHERE seq >= :s ORDER BY seq"
            ),
            {"s": since},
        )
    )


def rehash(r: Any, prev: str, seq: int | None = None, payload: bytes | None = None) -> str:
    body = bytes(r.payload) if payload is None else payload
    return audit.event_hash(
        prev,
        seq or r.seq,
        audit.at_text(r.at),
        r.actor,
        r.os_user,
        r.ssh_client,
        r.kind,
        r.app,
        r.env,
        r.plan,
        body,
    )


def set_head(conn: Connection, seq: int, digest: str) -> None:
    conn.execute(
        text("UPDATE audit_head SET seq = :s, hash = :h WHERE id = 1"), {"s": seq, "h": digest}
    )


# --- no false alarms ---------------------------------------------------------------------------


def test_honest_log_verifies_also_against_checkpoints(ws: WorkspaceFixture, tmp_path: Path) -> None:
    honest_log(ws)
    assert_ok(ws, N)
    cps = tmp_path / "cps.jsonl"
    first = checkpoint(ws, cps)
    honest_log_more = shipdeck("release", "create", "chat-api", "1.0.0", env=ws.env("alice"))
    assert honest_log_more.code == 0
    second = checkpoint(ws, cps)
    # Each checkpoint is its intent (the head it writes) followed by its outcome event.
    assert (first, second) == (N + 1, N + 4)
    assert_ok(ws, N + 5, "--checkpoints", str(cps))
    assert verify(ws, "--checkpoints", str(cps)).json()["checkpoints"] == 2
    text_mode = shipdeck("audit", "verify", "--checkpoints", str(cps), env=ws.env("erin"))
    assert text_mode.code == 0 and text_mode.out.startswith(f"ok: {N + 5} events, head {N + 5} ")


def test_verify_needs_no_permission_and_reads_bad_checkpoint_files_carefully(
    ws: WorkspaceFixture, tmp_path: Path
) -> None:
    honest_log(ws, 5)
    missing = verify(ws, "--checkpoints", str(tmp_path / "none.jsonl"))
    assert missing.code == 2 and "no such file" in missing.json()["error"]["message"]
    bad = tmp_path / "bad.jsonl"
    # A line that is not a checkpoint can only come from an edit of the store: integrity, exit 7.
    bad.write_text('{"seq": 1, "hash": "%s"}\nnot json\n' % ("ab" * 32))
    r = verify(ws, "--checkpoints", str(bad))
    assert r.code == 7 and f"{bad}: line 2: not a checkpoint" in r.json()["error"]["message"]


# --- tampering, each caught at the right sequence number ---------------------------------------


def test_edited_payload(ws: WorkspaceFixture) -> None:
    honest_log(ws)
    with ws.base.db.write() as conn:
        conn.execute(text("UPDATE audit_event SET payload = :p WHERE seq = 137"), {"p": b'{"i":0}'})
    doc = assert_broken_at(ws, 137)
    assert "altered" in doc["reason"]
    assert doc["events"] == 136


def test_edited_columns(ws: WorkspaceFixture) -> None:
    """Each column edited in turn (and put back, after which the log verifies again)."""
    log = honest_log(ws, 40)
    assert log[21].app is None  # seq 22: NULL made '' must count, NULL is not ''
    edits = [
        ("actor", "'mallory'", 21),
        ("os_user", "'root'", 21),
        ("app", "''", 22),
        ("env", "'prod'", 22),
        ("ssh_client", "NULL", 21),
        ("kind", "'plan.rejected'", 21),
        ("plan", "'p-9'", 21),
        ("at", "'2026-11-01 08:20:00.000001'", 21),
        ("prev_hash", "'" + "0" * 64 + "'", 21),
    ]
    for column, value, seq in edits:
        with ws.base.db.read() as conn:
            original = conn.execute(
                text(f"SELECT {column} FROM audit_event WHERE seq = {seq}")
            ).scalar()
        with ws.base.db.write() as conn:
            conn.execute(text(f"UPDATE audit_event SET {column} = {value} WHERE seq = {seq}"))
        assert_broken_at(ws, seq)
        with ws.base.db.write() as conn:
            conn.execute(
                text(f"UPDATE audit_event SET {column} = :v WHERE seq = {seq}"), {"v": original}
            )
        assert_ok(ws, 40)


def test_deleted_row_in_the_middle(ws: WorkspaceFixture) -> None:
    honest_log(ws)
    with ws.base.db.write() as conn:
        conn.execute(text("DELETE FROM audit_event WHERE seq = 150"))
    doc = assert_broken_at(ws, 150)
    assert doc["reason"] == "event 150 is missing (next is 151)"


def test_inserted_row_with_a_correct_hash(ws: WorkspaceFixture) -> None:
    """A forged event slipped in at 101 with a hash correctly chained from event 100 verifies
    itself; what gives it away is the next row (the old 101, now 102): it still links to event
    100's hash, and its own hash covers sequence number 101, so the chain breaks at 102."""
    honest_log(ws)
    with ws.base.db.write() as conn:
        conn.execute(text("UPDATE audit_event SET seq = -(seq + 1) WHERE seq >= 101"))
        conn.execute(text("UPDATE audit_event SET seq = -seq WHERE seq < 0"))
        prev = rows(conn, 100)[0]
        forged_at = prev.at
        digest = audit.event_hash(
            prev.hash,
            101,
            audit.at_text(forged_at),
            "mallory",
            "mallory",
            None,
            "release.created",
            "web",
            None,
            None,
            b'{"version":"evil"}',
        )
        conn.execute(
            text(
                "INSERT INTO audit_event (seq, at, actor, os_user, kind, app, payload, prev_hash, hash) "
                "VALUES (101, :at, 'mallory', 'mallory', 'release.created', 'web', :p, :prev, :h)"
            ),
            {"at": forged_at, "p": b'{"version":"evil"}', "prev": prev.hash, "h": digest},
        )
        last = rows(conn, N + 1)[0]
        set_head(conn, N + 1, last.hash)
    doc = assert_broken_at(ws, 102)
    assert doc["reason"] == "event 102 does not link to event 101"


def test_swapped_rows(ws: WorkspaceFixture) -> None:
    honest_log(ws)
    with ws.base.db.write() as conn:
        a, b = rows(conn, 60)[0], rows(conn, 200)[0]
        cols = [c for c in a._fields if c != "seq"]
        for seq, r in ((60, b), (200, a)):
            sets = ", ".join(f"{c} = :{c}" for c in cols)
            conn.execute(
                text(f"UPDATE audit_event SET {sets} WHERE seq = :seq"),
                {**{c: getattr(r, c) for c in cols}, "seq": seq},
            )
    assert_broken_at(ws, 60)


def test_truncated_tail_is_caught_only_by_a_checkpoint(
    ws: WorkspaceFixture, tmp_path: Path
) -> None:
    honest_log(ws)
    cps = tmp_path / "cps.jsonl"
    cp = checkpoint(ws, cps)  # event N + 1, written before the truncation
    with ws.base.db.write() as conn:
        conn.execute(text("DELETE FROM audit_event WHERE seq > 250"))
        set_head(conn, 250, rows(conn, 250)[0].hash)
    assert_ok(ws, 250)  # consistent in itself: only the outside record knows better
    doc = assert_broken_at(ws, 251, "--checkpoints", str(cps))
    assert f"saw event {cp}, the log ends at event 250 (truncated)" in doc["reason"]


def test_truncated_tail_without_fixing_the_head(ws: WorkspaceFixture) -> None:
    honest_log(ws)
    with ws.base.db.write() as conn:
        conn.execute(text("DELETE FROM audit_event WHERE seq > 290"))
    doc = assert_broken_at(ws, 291)
    assert doc["reason"] == f"chain head says event {N}, the log ends at event 290"


def test_rewritten_tail_is_caught_only_by_a_checkpoint(
    ws: WorkspaceFixture, tmp_path: Path
) -> None:
    """The tail from event 180 is rewritten with every hash recomputed and the head moved along:
    the chain is consistent again. A checkpoint taken before (at event 120) still matches, the one
    at the end does not, so verify names that checkpoint's event: the first event known to differ
    from what was seen. (The rewrite began after the last matching checkpoint.)"""
    cps = tmp_path / "cps.jsonl"
    honest_log(ws, 119)
    early = checkpoint(ws, cps)
    with ws.base.db.write() as conn:
        for i in range(40):
            audit.append(conn, audit.Who("bob", "bob"), "plan.created", {"i": i}, at=START)
    late = checkpoint(ws, cps)
    assert (early, late) == (120, 162)  # each checkpoint: its intent, then its outcome
    with ws.base.db.write() as conn:
        prev = rows(conn, 139)[0].hash
        for r in rows(conn, 140):
            payload = b'{"i":"rewritten"}' if r.seq == 140 else bytes(r.payload)
            digest = rehash(r, prev, payload=payload)
            conn.execute(
                text(
                    "UPDATE audit_event SET payload = :p, prev_hash = :prev, hash = :h WHERE seq = :s"
                ),
                {"p": payload, "prev": prev, "h": digest, "s": r.seq},
            )
            prev = digest
        set_head(conn, late + 1, prev)  # the log ends with the late checkpoint's outcome
    assert_ok(ws, late + 1)
    doc = assert_broken_at(ws, late, "--checkpoints", str(cps))
    assert "differs from checkpoint" in doc["reason"]


def test_head_row_moved_alone(ws: WorkspaceFixture) -> None:
    honest_log(ws, 30)
    with ws.base.db.write() as conn:
        set_head(conn, 30, "f" * 64)
    assert_broken_at(ws, 31)


# --- listing, paging and export ----------------------------------------------------------------


def listed(ws: WorkspaceFixture, *args: str) -> list[int]:
    r = shipdeck("-o", "json", "audit", "list", "--limit", "1000", *args, env=ws.env("erin"))
    assert r.code == 0, r.err
    return [e["seq"] for e in r.json()["events"]]


def test_filters_return_exactly_the_matching_events(ws: WorkspaceFixture) -> None:
    log = honest_log(ws)

    def want(pred: Any) -> list[int]:
        return [e.seq for e in reversed(log) if pred(e)]

    assert listed(ws) == want(lambda e: True)
    assert listed(ws, "--actor", "zoë") == want(lambda e: e.actor == "zoë")
    assert listed(ws, "--app", "web") == want(lambda e: e.app == "web")
    assert listed(ws, "--env", "prod") == want(lambda e: e.env == "prod")
    assert listed(ws, "--kind", "plan.*") == want(lambda e: e.kind.startswith("plan."))
    assert listed(ws, "--kind", "plan.") == want(lambda e: e.kind.startswith("plan."))
    assert listed(ws, "--kind", "task.restart") == want(lambda e: e.kind == "task.restart")
    assert listed(ws, "--kind", "plan") == []
    since, until = START + timedelta(minutes=100), START + timedelta(minutes=150, seconds=30)
    assert listed(ws, "--since", since.isoformat(), "--until", until.isoformat()) == want(
        lambda e: since <= e.at < until
    )
    assert listed(ws, "--since", "2026-11-01T09:40:00") == want(
        lambda e: e.at >= datetime(2026, 11, 1, 9, 40, tzinfo=UTC)
    )
    both = listed(ws, "--actor", "bob", "--app", "chat-api", "--env", "staging", "--kind", "plan.*")
    assert both == want(
        lambda e: (
            e.actor == "bob"
            and e.app == "chat-api"
            and e.env == "staging"
            and e.kind.startswith("plan.")
        )
    )
    assert both  # the combination matches something


def test_kind_prefixes_match_wildcards_literally(ws: WorkspaceFixture) -> None:
    """`_`, `%` and the escape character in a kind prefix are text, not LIKE wildcards, in a
    page (driver SQL) and in a count (SQLAlchemy) alike."""
    kinds = ("a_b.x", "aXb.x", "a%c.y", "aZc.y", "a/d.z", "a/dd.z")
    with ws.base.db.write() as conn:
        for n, kind in enumerate(kinds):
            audit.append(conn, audit.Who("alice", "os-alice"), kind, {}, at=START + timedelta(n))
    for prefix, want in (("a_b.", ["a_b.x"]), ("a%c.*", ["a%c.y"]), ("a/d.", ["a/d.z"])):
        flt = audit_log.AuditFilter(kind=prefix)
        assert [e.kind for e in audit_log.list_events(ws.base, flt)] == want
        assert audit_log.count_events(ws.base, flt) == len(want)
    assert listed(ws, "--kind", "a*") == [6, 5, 4, 3, 2, 1]


def test_keyset_pages_cover_the_log_once_newest_first(ws: WorkspaceFixture) -> None:
    honest_log(ws)
    seen: list[int] = []
    before: list[str] = []
    while True:
        page = listed(ws, "--limit", "70", *before)
        if not page:
            break
        assert len(page) <= 70
        seen += page
        before = ["--before", str(page[-1])]
    assert seen == list(range(N, 0, -1))
    bob = listed(ws, "--actor", "bob", "--before", "100", "--limit", "5")
    assert bob == [98, 94, 90, 86, 82]


def test_list_event_shape(ws: WorkspaceFixture) -> None:
    log = honest_log(ws, 12)
    r = shipdeck("-o", "json", "audit", "list", "--limit", "1", env=ws.env("erin"))
    [e] = r.json()["events"]
    assert {"seq", "at", "actor", "os_user", "kind", "app", "env", "payload", "hash"} <= e.keys()
    last = log[-1]
    assert (e["seq"], e["actor"], e["os_user"], e["kind"]) == (
        12,
        last.actor,
        f"os-{last.actor}",
        last.kind,
    )
    assert e["payload"] == last.payload
    assert datetime.fromisoformat(e["at"]) == last.at
    table = shipdeck("audit", "list", "--limit", "3", env=ws.env("erin"))
    assert table.code == 0 and table.out.splitlines()[0].split()[:4] == [
        "SEQ",
        "AT",
        "(UTC)",
        "ACTOR",
    ]
    assert len(table.out.splitlines()) == 4


def _csv_events(raw: str) -> list[dict[str, Any]]:
    out = []
    for row in csv.DictReader(io.StringIO(raw)):
        d: dict[str, Any] = {k: (v if v != "" else None) for k, v in row.items()}
        d["seq"] = int(d["seq"])
        d["payload"] = json.loads(d["payload"])
        out.append(d)
    return out


def test_export_round_trips_in_jsonl_and_csv(ws: WorkspaceFixture, tmp_path: Path) -> None:
    log = honest_log(ws)
    listed_all = shipdeck("-o", "json", "audit", "list", "--limit", "1000", env=ws.env("erin"))
    truth = list(reversed(listed_all.json()["events"]))
    jsonl = shipdeck("audit", "export", "--format", "jsonl", env=ws.env("erin"))
    assert jsonl.code == 0 and jsonl.err == f"exported {N} events\n"
    assert [json.loads(line) for line in jsonl.out.splitlines()] == truth
    out = tmp_path / "log.csv"
    r = shipdeck("audit", "export", "--format", "csv", "--out", str(out), env=ws.env("erin"))
    assert r.code == 0, r.err
    assert _csv_events(out.read_text(encoding="utf-8")) == truth
    assert [e["payload"] for e in truth] == [e.payload for e in log]
    assert [e["ssh_client"] for e in truth] == [e.ssh for e in log]
    bad = shipdeck("audit", "export", "--format", "xml", env=ws.env("erin"))
    assert bad.code == 2


def test_the_database_writes_the_same_export_lines_python_would(ws: WorkspaceFixture) -> None:
    """The export's lines are built by the database (no object per field); they must be the
    bytes the Python path writes, for awkward text, NULLs, filters, and a tampered row the
    database cannot write (SQLite: an `at` not in the stored text form; PostgreSQL: a NUL in the
    payload), which alone goes the Python way."""
    from shipdeck.core.domain.redact import json_text
    from shipdeck.core.services.audit_log import (
        AuditFilter,
        _export_rows,
        _line_pages,
        export,
        export_to_file,
    )
    from shipdeck.core.storage.audit_reads import jsonl_line

    odd = 'quote " back \\ nl \n tab \t ctl \x01 del \x7f bidi \u202e é 😀 \u2028'
    with ws.base.db.write() as conn:
        people = [("alice", None), (f"o'neil {odd}", odd), ("bob", "web"), (f"zoë {odd}", odd)]
        for i, (actor, app) in enumerate(people):  # the last one's odd text goes the SQLite way
            who = audit.Who(actor, "os", None if i else "10.0.0.1")
            audit.append(conn, who, f"k.{i}", {"text": odd, "n": i, "f": 1.5}, at=START, app=app)
        if ws.base.db.is_sqlite:
            conn.execute(text("UPDATE audit_event SET at = 1764000000 WHERE seq = 2"))
        else:  # a NUL, which PostgreSQL text cannot hold
            conn.execute(
                text("UPDATE audit_event SET payload = payload || '\\x00'::bytea WHERE seq = 2")
            )
    ctx = ws.as_user("erin")
    for flt in (AuditFilter(), AuditFilter(kind="k.*"), AuditFilter(actor="bob")):
        written = io.StringIO()
        n = export(ctx, "jsonl", written, flt)
        python_way = [json_text(jsonl_line(row)) + "\n" for row in _export_rows(ctx, flt)]
        assert written.getvalue() == "".join(python_way), flt
        export_to_file(ctx, "jsonl", ws.root / "export.jsonl", flt)  # the bytes, not decoded
        assert (ws.root / "export.jsonl").read_bytes() == written.getvalue().encode()
        assert n == len(python_way) and n > 0
        for batch in (1, 2, 3):  # page by page: every page's first and last line, none twice
            paged = [
                json_text(line.decode()) + "\n"
                for lines in _line_pages(ctx, flt, batch)
                for line in lines
            ]
            assert paged == python_way, (flt, batch)
        if ws.base.db.is_sqlite:  # (PostgreSQL's tampered line holds a raw NUL)
            for line in written.getvalue().splitlines():
                json.loads(line)  # every line is JSON, the tampered one included
