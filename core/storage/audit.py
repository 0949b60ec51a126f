"""The append-only, hash-chained audit log.

Each event's hash covers the previous hash, its own sequence number and every column, so an edit,
a deletion, an insertion or a reordering breaks the chain at a sequence number `verify` can name.
The header columns are joined with unit separators and NULL hashes as NUL; `append` refuses text
holding either, so each row has one encoding and no edit can shift text between columns or turn
NULL into ''. Truncating the tail (and fixing the head row) keeps the chain consistent; only a
checkpoint written outside the database catches that, which is why `verify` takes checkpoints.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Table, bindparam, insert, select, update

from shipdeck.core.domain.canonical import canonical_bytes
from shipdeck.core.domain.checkpoints import Checkpoint, agreed
from shipdeck.core.domain.redact import redact
from shipdeck.core.errors import first_of
from shipdeck.core.storage import binding
from shipdeck.core.storage.audit_head import READ_HEAD, stored_head
from shipdeck.core.storage.db import driver_many, driver_sql
from shipdeck.core.storage.tables import AUDIT_EVENTS, AUDIT_HEAD

GENESIS = "0" * 64
# Built once: constructing these per append (values coerced, cache keys generated) cost more than
# the commit itself (bench/audit_append.py).
_LOCK_HEAD = READ_HEAD.with_for_update()
_INSERT_EVENT = insert(AUDIT_EVENTS)
_MOVE_HEAD = (
    update(AUDIT_HEAD)
    .where(AUDIT_HEAD.c.id == 1)
    .values(seq=bindparam("head_seq"), hash=bindparam("head_hash"))
)
# The three statements of every append, written for the driver: an append is the path every
# state change takes, and SQLAlchemy's per-statement compile and parameter processing cost more
# than SQLite's commit (bench/audit_append.py). db.driver_sql runs them on sqlite3 itself
# (prepared once per connection, errors still translated) or through exec_driver_sql.
_COLUMNS = "seq, at, actor, os_user, ssh_client, kind, app, env, plan, payload, prev_hash, hash"
_DRIVER_SQL = {
    mark: (
        "SELECT seq, hash FROM audit_head WHERE id = 1" + lock,
        f"INSERT INTO audit_event ({_COLUMNS}) VALUES ({', '.join([mark] * 12)})",
        f"UPDATE audit_head SET seq = {mark}, hash = {mark} WHERE id = 1",
    )
    for mark, lock in (("?", ""), ("%s", " FOR UPDATE"))  # SQLite, PostgreSQL (db.driver_sql)
}
# PostgreSQL: one event and the head's move in one statement, one round trip fewer per change
# (SQLite has no INSERT inside WITH, and its statements cost no round trip).
_INSERT_AND_MOVE = "WITH e AS ({}) {}".format(*_DRIVER_SQL["%s"][1:])
_NULL = "\x00"
_RESERVED = re.compile("[\x00\x1e\x1f]")


def at_text(value: datetime | str) -> str:
    """The instant as hashed: UTC, microseconds, 'Z'. Accepts SQLite's stored text form too."""
    if isinstance(value, str):
        # SQLAlchemy stores SQLite DateTime as 'YYYY-MM-DD HH:MM:SS.ffffff'.
        text = value.replace(" ", "T")
        return text if "." in text else text + ".000000"
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    # isoformat, not strftime (a quarter of verify's time on PostgreSQL); both give 'T' and
    # six digits, and isoformat pads years before 1000 as SQLite's stored text does.
    return value.isoformat(timespec="microseconds")


def event_hash(
    prev_hash: str,
    seq: int,
    at: str,
    actor: str,
    os_user: str,
    ssh_client: str | None,
    kind: str,
    app: str | None,
    env: str | None,
    plan: str | None,
    payload: bytes,
) -> str:
    header = "\x1f".join(
        (
            prev_hash,
            str(seq),
            at,
            actor,
            os_user,
            _NULL if ssh_client is None else ssh_client,
            kind,
            _NULL if app is None else app,
            _NULL if env is None else env,
            _NULL if plan is None else plan,
        )
    )
    h = hashlib.sha256(header.encode())
    h.update(b"\x1e")
    h.update(payload)
    return h.hexdigest()


def event_hash_of(row: Any) -> str:
    """The hash an event row should have, from its stored columns (its stored prev_hash)."""
    return event_hash(
        row.prev_hash,
        row.seq,
        at_text(row.at),
        row.actor,
        row.os_user,
        row.ssh_client,
        row.kind,
        row.app,
        row.env,
        row.plan,
        bytes(row.payload),
    )


@dataclass(frozen=True)
class Who:
    actor: str
    os_user: str
    ssh_client: str | None = None


@dataclass(frozen=True)
class NewEvent:
    """An event to append: what happened, to what, and the state rows (table, key) it vouches
    for (`binds`: the payload carries their content hashes and the rows get its sequence)."""

    kind: str
    payload: Mapping[str, Any]
    app: str | None = None
    env: str | None = None
    plan: str | None = None
    binds: Sequence[tuple[Table, Mapping[str, Any]]] = ()


def append(
    conn: Connection,
    who: Who,
    kind: str,
    payload: Mapping[str, Any],
    *,
    at: datetime,
    app: str | None = None,
    env: str | None = None,
    plan: str | None = None,
    secrets: tuple[str, ...] = (),
    binds: Sequence[tuple[Table, Mapping[str, Any]]] = (),
) -> int:
    """Append one event inside the caller's write transaction; returns its sequence number."""
    event = NewEvent(kind, payload, app, env, plan, binds)
    return append_all(conn, who, [event], at=at, secrets=secrets)[0]


def append_all(
    conn: Connection,
    who: Who,
    events: Sequence[NewEvent],
    *,
    at: datetime,
    secrets: tuple[str, ...] = (),
) -> list[int]:
    """Append events, in order, inside the caller's write transaction; their sequence numbers.

    The head row is read FOR UPDATE (PostgreSQL) or under BEGIN IMMEDIATE (SQLite), so concurrent
    writers queue and the sequence stays gapless. The head is read and moved once for them all,
    and their rows go in one executemany: a run's group commit writes a wave's events together,
    and on PostgreSQL each statement is a round trip the wave's apps wait on. No events: the
    head is left alone (not even locked).
    """
    if not events:
        return []
    for ev in events:
        fields = (who.actor, who.os_user, who.ssh_client, ev.kind, ev.app, ev.env, ev.plan)
        if _RESERVED.search("\n".join(filter(None, fields))):  # one scan; the culprit after
            text = next(t for t in fields if t and _RESERVED.search(t))
            raise ValueError(f"audit field {text!r}: \\x00, \\x1e and \\x1f are reserved")
    sqlite = conn.dialect.name == "sqlite"
    run, mark = driver_sql(conn)
    lock_head, insert_event, move_head = _DRIVER_SQL[mark]
    head_seq, head_hash = run(lock_head).fetchone()
    utc = at.astimezone(UTC).replace(tzinfo=None)
    hashed_at = at_text(utc)
    # Stored as UTCDateTime stores it: SQLite's text form, or naive UTC for PostgreSQL.
    stored_at = hashed_at.replace("T", " ") if sqlite else utc
    rows: list[tuple[Any, ...]] = []
    stamps: list[tuple[dict[str, Any], int]] = []
    for ev in events:
        seq = head_seq + 1
        bound = [binding.binding(conn, table, key) for table, key in ev.binds]
        content = redact(ev.payload, secrets)  # a copy
        if bound:
            content["bind"] = bound
        body = canonical_bytes(content)
        digest = event_hash(
            head_hash, seq, hashed_at, who.actor, who.os_user, who.ssh_client, ev.kind, ev.app,
            ev.env, ev.plan, body,
        )  # fmt: skip
        rows.append((seq, stored_at, who.actor, who.os_user, who.ssh_client, ev.kind, ev.app,
                     ev.env, ev.plan, body, head_hash, digest))  # fmt: skip
        stamps += [(b, seq) for b in bound]
        head_seq, head_hash = seq, digest
    if len(rows) == 1 and not sqlite:
        run(_INSERT_AND_MOVE, (*rows[0], head_seq, head_hash))
    else:
        driver_many(conn)(insert_event, rows)
        run(move_head, (head_seq, head_hash))
    for b, seq in stamps:
        binding.stamp(conn, b, seq)
    return [r[0] for r in rows]


def lock(conn: Connection) -> None:
    """Take the audit writer lock now instead of at the first append.

    A service that checks before it writes (does this version exist yet?) must hold the lock
    while it checks: on PostgreSQL, where nothing like SQLite's BEGIN IMMEDIATE queues writers,
    a racing writer would otherwise miss the other's uncommitted row and fail on a unique key.
    On SQLite the write transaction's BEGIN IMMEDIATE holds the one writer lock already (a
    SELECT there locks nothing more), so there is nothing to do.
    """
    if conn.dialect.name != "sqlite":
        conn.execute(_LOCK_HEAD)


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    events: int
    head_seq: int
    head_hash: str
    first_bad_seq: int | None
    reason: str | None
    checkpoints: int = 0
    open_intents: tuple[int, ...] = ()  # intents with no outcome: effects that may have happened
    state_rows: int = 0


# PostgreSQL's `timestamp` read as the text at_text hashes, made by the server: no datetime to
# build and format per row (a quarter of the walk). NULL (malformed) before year 1, whose era
# to_char drops. An `at` of another type (tampered) is read as stored, for at_text to judge.
_HASHED_AT = """CASE WHEN at >= '0001-01-01' THEN to_char(at, 'YYYY-MM-DD"T"HH24:MI:SS.US') END"""
_AT_IS_TIMESTAMP = (
    "SELECT atttypid = 'timestamp'::regtype FROM pg_attribute "
    "WHERE attrelid = 'audit_event'::regclass AND attname = 'at'"
)


def _rows(conn: Connection, at: str) -> Iterator[tuple[Any, ...]]:
    """Stream every event, `at` read as that expression, with the driver's own cursor: a
    million rows must not be held at once nor pay for ORM objects (see bench/audit_verify.py)."""
    dbapi = conn.connection.dbapi_connection
    assert dbapi is not None
    if conn.dialect.name == "postgresql":
        cur = dbapi.cursor(name="shipdeck_audit_verify")  # server-side cursor
    else:
        cur = dbapi.cursor()
    cur.execute(f"SELECT {_COLUMNS.replace(' at,', f' {at},', 1)} FROM audit_event ORDER BY seq")
    while batch := cur.fetchmany(20_000):
        yield from batch
    cur.close()


_MALFORMED = (TypeError, ValueError, AttributeError, OverflowError)


@dataclass
class _Walk:
    """What one pass over the log found: where it ended, and the first bad event if any."""

    last: int
    prev: str
    first_bad: int | None
    reason: str | None
    seen_at: dict[int, str]  # hashes at the sequences checkpoints name
    binds: binding.Binds
    intents: dict[int, None]


def _walk(conn: Connection, wanted: Mapping[int, Checkpoint]) -> _Walk:
    """Read and hash every event in order (the one loop verify's cost is: keep it flat)."""
    seen_at: dict[int, str] = {}
    binds: binding.Binds = {}
    intents: dict[int, None] = {}
    expected = 1
    prev = GENESIS
    first_bad: int | None = None
    reason: str | None = None
    hashed_at = conn.dialect.name == "postgresql" and bool(
        conn.exec_driver_sql(_AT_IS_TIMESTAMP).scalar()
    )
    rows = _rows(conn, _HASHED_AT if hashed_at else "at")
    for seq, at, actor, os_user, ssh, kind, app, env, plan, payload, prev_hash, stored in rows:
        if seq != expected:
            first_bad, reason = expected, f"event {expected} is missing (next is {seq})"
            break
        if prev_hash != prev:
            first_bad, reason = seq, f"event {seq} does not link to event {seq - 1}"
            break
        try:
            body = bytes(payload)
            when = at if hashed_at else at_text(at)
            digest = event_hash(prev, seq, when, actor, os_user, ssh, kind, app, env, plan, body)
            # The byte tests bindings and intents start with, made here: most events carry
            # neither, and two calls per row were a tenth of the walk.
            if digest == stored:
                if b'"bind"' in body:
                    binding.collect(binds, seq, body)
                if b'"intent_seq"' in body or kind.endswith(".intent"):
                    _track_intents(intents, seq, kind, body)
        except _MALFORMED as exc:
            first_bad, reason = seq, f"event {seq} has a column of the wrong type ({exc})"
            break
        if digest != stored:
            first_bad, reason = (
                seq,
                f"event {seq} was altered (its hash does not match its content)",
            )
            break
        if seq in wanted:
            seen_at[seq] = stored
        prev = stored
        expected += 1
    return _Walk(expected - 1, prev, first_bad, reason, seen_at, binds, intents)


def _head_and_checkpoints(
    conn: Connection,
    walk: _Walk,
    wanted: Mapping[int, Checkpoint],
    disagreement: tuple[int, str] | None,
) -> tuple[int | None, str | None]:
    """After a clean walk: the head row must name its end, and every checkpoint must agree."""
    last = walk.last
    head = stored_head(conn)
    if head is None:
        return last + 1, "the chain head row is missing or malformed"
    if head != (last, walk.prev):
        return min(
            head[0], last
        ) + 1, f"chain head says event {head[0]}, the log ends at event {last}"
    if disagreement is not None:
        return disagreement
    for cp in sorted(wanted.values(), key=lambda c: c.seq):
        if cp.seq > last:
            return (
                last + 1,
                f"checkpoint {cp.at} saw event {cp.seq}, the log ends at event {last} (truncated)",
            )
        if walk.seen_at.get(cp.seq) != cp.hash:
            return cp.seq, f"event {cp.seq} differs from checkpoint {cp.at} (the log was rewritten)"
    return None, None


def verify(conn: Connection, checkpoints: Iterable[Checkpoint] = ()) -> VerifyResult:
    """Prove the chain, the state rows bound to it and the checkpoints, naming the first bad
    sequence. Rows of the wrong storage type (payload as TEXT, `at` as an integer) are tampering
    like any other, never a crash."""
    wanted, disagreement, disagreed_at = agreed(checkpoints)
    walk = _walk(conn, wanted)
    first_bad, reason = walk.first_bad, walk.reason
    if first_bad is None:
        disagreed = None if disagreement is None else (disagreed_at or 0, disagreement)
        first_bad, reason = _head_and_checkpoints(conn, walk, wanted, disagreed)
    last = walk.last
    state_rows = 0
    if first_bad is None:
        problems = binding.check_state(conn, walk.binds)
        state_rows = len(walk.binds)
        if problems:
            p = problems[0]
            first_bad = p.seq if p.seq is not None else last + 1
            reason = first_of([q.sentence for q in problems])
    return VerifyResult(
        ok=first_bad is None,
        events=last if first_bad is None else max(min(first_bad - 1, last), 0),
        head_seq=last,
        head_hash=walk.prev,
        first_bad_seq=first_bad,
        reason=reason,
        checkpoints=len(wanted),
        open_intents=tuple(walk.intents),
        state_rows=state_rows,
    )


@dataclass(frozen=True)
class Intent:
    """An effect a run announced (`run.STEP.intent`) whose outcome no event records yet."""

    seq: int
    kind: str
    app: str | None
    payload: bytes  # its canonical JSON


def open_intents_of(conn: Connection, plan: str, kinds: Sequence[str]) -> list[Intent]:
    """The intents among one plan's events of `kinds` that no outcome among them names (a
    stopped runner's effects). `kinds` holds the intents and every outcome kind that closes them;
    the kind index finds them without reading the rest of the log."""
    rows = conn.execute(
        select(AUDIT_EVENTS.c.seq, AUDIT_EVENTS.c.kind, AUDIT_EVENTS.c.app, AUDIT_EVENTS.c.payload)
        .where(AUDIT_EVENTS.c.kind.in_(kinds), AUDIT_EVENTS.c.plan == plan)
        .order_by(AUDIT_EVENTS.c.seq)
    ).all()
    intents: dict[int, None] = {}
    for r in rows:
        _track_intents(intents, r.seq, r.kind, bytes(r.payload))
    return [Intent(r.seq, r.kind, r.app, bytes(r.payload)) for r in rows if r.seq in intents]


def _track_intents(intents: dict[int, None], seq: int, kind: str, payload: bytes) -> None:
    """Open an intent at `KIND.intent`; its outcome names it by `intent_seq`."""
    if kind.endswith(".intent"):
        intents[seq] = None
    elif b'"intent_seq"' in payload:
        done = json.loads(payload).get("intent_seq")
        if isinstance(done, int):
            intents.pop(done, None)
