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
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update

from shipdeck.core.domain.canonical import canonical_bytes
from shipdeck.core.domain.redact import redact
from shipdeck.core.storage.tables import AUDIT_EVENTS, AUDIT_HEAD

GENESIS = "0" * 64
# Built once: constructing these per append (values coerced, cache keys generated) cost more than
# the commit itself (bench/audit_append.py).
_READ_HEAD = select(AUDIT_HEAD.c.seq, AUDIT_HEAD.c.hash).where(AUDIT_HEAD.c.id == 1)
_LOCK_HEAD = _READ_HEAD.with_for_update()
_INSERT_EVENT = insert(AUDIT_EVENTS)
_MOVE_HEAD = (
    update(AUDIT_HEAD)
    .where(AUDIT_HEAD.c.id == 1)
    .values(seq=bindparam("head_seq"), hash=bindparam("head_hash"))
)
_NULL = "\x00"
_RESERVED = ("\x00", "\x1e", "\x1f")


def at_text(value: datetime | str) -> str:
    """The instant as hashed: UTC, microseconds, 'Z'. Accepts SQLite's stored text form too."""
    if isinstance(value, str):
        # SQLAlchemy stores SQLite DateTime as 'YYYY-MM-DD HH:MM:SS.ffffff'.
        text = value.replace(" ", "T")
        return text if "." in text else text + ".000000"
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f")


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


@dataclass(frozen=True)
class Who:
    actor: str
    os_user: str
    ssh_client: str | None = None


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
) -> int:
    """Append one event inside the caller's write transaction; returns its sequence number.

    The head row is read FOR UPDATE (PostgreSQL) or under BEGIN IMMEDIATE (SQLite), so concurrent
    writers queue and the sequence stays gapless.
    """
    for text in (who.actor, who.os_user, who.ssh_client, kind, app, env, plan):
        if text is not None and any(c in text for c in _RESERVED):
            raise ValueError(f"audit field {text!r}: \\x00, \\x1e and \\x1f are reserved")
    head = conn.execute(_LOCK_HEAD).one()
    seq = head.seq + 1
    body = canonical_bytes(redact(dict(payload), secrets))
    at = at.astimezone(UTC)
    digest = event_hash(
        head.hash,
        seq,
        at_text(at),
        who.actor,
        who.os_user,
        who.ssh_client,
        kind,
        app,
        env,
        plan,
        body,
    )
    conn.execute(
        _INSERT_EVENT,
        {
            "seq": seq,
            "at": at,
            "actor": who.actor,
            "os_user": who.os_user,
            "ssh_client": who.ssh_client,
            "kind": kind,
            "app": app,
            "env": env,
            "plan": plan,
            "payload": body,
            "prev_hash": head.hash,
            "hash": digest,
        },
    )
    conn.execute(_MOVE_HEAD, {"head_seq": seq, "head_hash": digest})
    return seq


def lock(conn: Connection) -> None:
    """Take the audit writer lock now instead of at the first append.

    A service that checks before it writes (does this version exist yet?) must hold the lock
    while it checks: on PostgreSQL, where nothing like SQLite's BEGIN IMMEDIATE queues writers,
    a racing writer would otherwise miss the other's uncommitted row and fail on a unique key.
    """
    conn.execute(_LOCK_HEAD)


def head(conn: Connection) -> tuple[int, str]:
    row = conn.execute(_READ_HEAD).one()
    return int(row.seq), str(row.hash)


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    hash: str
    at: str

    def to_json(self) -> str:
        return json.dumps({"seq": self.seq, "hash": self.hash, "at": self.at}, sort_keys=True)


def parse_checkpoints(text: str, where: str) -> list[Checkpoint]:
    """One JSON object per line; a malformed line is an error naming the file and line."""
    out: list[Checkpoint] = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            out.append(Checkpoint(int(obj["seq"]), str(obj["hash"]), str(obj.get("at", ""))))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{where}: line {n}: not a checkpoint ({exc})") from exc
    return out


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    events: int
    head_seq: int
    head_hash: str
    first_bad_seq: int | None
    reason: str | None
    checkpoints: int = 0


_SELECT_ALL = (
    "SELECT seq, at, actor, os_user, ssh_client, kind, app, env, plan, payload, prev_hash, hash "
    "FROM audit_event ORDER BY seq"
)


def _rows(conn: Connection) -> Iterator[tuple[Any, ...]]:
    """Stream every event with the driver's own cursor: a million rows must not be held at once
    nor pay for ORM objects (see bench/audit_verify.py)."""
    dbapi = conn.connection.dbapi_connection
    assert dbapi is not None
    if conn.dialect.name == "postgresql":
        cur = dbapi.cursor(name="shipdeck_audit_verify")  # server-side cursor
    else:
        cur = dbapi.cursor()
    cur.execute(_SELECT_ALL)
    while batch := cur.fetchmany(20_000):
        yield from batch
    cur.close()


def verify(conn: Connection, checkpoints: Iterable[Checkpoint] = ()) -> VerifyResult:
    wanted = {c.seq: c for c in checkpoints}
    seen_at: dict[int, str] = {}
    expected = 1
    prev = GENESIS
    first_bad: int | None = None
    reason: str | None = None
    for seq, at, actor, os_user, ssh, kind, app, env, plan, payload, prev_hash, stored in _rows(
        conn
    ):
        if seq != expected:
            first_bad, reason = expected, f"event {expected} is missing (next is {seq})"
            break
        if prev_hash != prev:
            first_bad, reason = seq, f"event {seq} does not link to event {seq - 1}"
            break
        digest = event_hash(
            prev, seq, at_text(at), actor, os_user, ssh, kind, app, env, plan, bytes(payload)
        )
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
    last = expected - 1
    head_seq, head_hash = head(conn)
    if first_bad is None and (head_seq, head_hash) != (last, prev):
        first_bad = min(head_seq, last) + 1
        reason = f"chain head says event {head_seq}, the log ends at event {last}"
    if first_bad is None:
        for cp in sorted(wanted.values(), key=lambda c: c.seq):
            if cp.seq > last:
                first_bad = last + 1
                reason = f"checkpoint {cp.at} saw event {cp.seq}, the log ends at event {last} (truncated)"
                break
            if seen_at.get(cp.seq) != cp.hash:
                first_bad = cp.seq
                reason = f"event {cp.seq} differs from checkpoint {cp.at} (the log was rewritten)"
                break
    return VerifyResult(
        ok=first_bad is None,
        events=last if first_bad is None else max(first_bad - 1, 0),
        head_seq=last,
        head_hash=prev,
        first_bad_seq=first_bad,
        reason=reason,
        checkpoints=len(wanted),
    )
