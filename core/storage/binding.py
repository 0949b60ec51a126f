"""State rows bound to the audit events that created them.

The chain proves the events; these bindings extend the proof to the state tables that decisions
and claims rest on. The event that writes such a row carries, in its payload under "bind", the
row's table, key and content hash; the row keeps the event's sequence number in `audit_seq`. A row
inserted behind shipdeck's back has no event, an edited row no longer matches its event's hash, a
deleted row leaves an event whose row is gone: `verify` names each with table, key and sequence.

Rows that move on after their creation (a plan's state and result, a deployment's outcome) are
hashed whole and rebound by every event that changes them (`change`), so the latest binding of a
row covers what it says now; the hash is taken from the row as the database returns it, so both
backends hash exactly what they stored.
"""

from __future__ import annotations

import hashlib
import json
import os
import pwd
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, is_dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Select, Table, Update, and_, bindparam, select, update

from shipdeck.core.errors import IntegrityError
from shipdeck.core.storage.tables import (
    APPROVALS,
    AUDIT_EVENTS,
    DEPLOYMENTS,
    OVERRIDES,
    PLANS,
    QUEUED_RUNS,
    RELEASES,
    TICKS,
)


@dataclass(frozen=True)
class Bound:
    """A table whose rows are bound: its key columns and the columns the hash covers."""

    table: Table
    key: tuple[str, ...]
    content: tuple[str, ...]

    @property
    def name(self) -> str:
        return str(self.table.name)


BOUND: dict[str, Bound] = {
    b.name: b
    for b in (
        Bound(
            RELEASES,
            ("id",),
            ("app", "version", "commit", "digest", "manifest", "notes", "created_at", "created_by"),
        ),
        Bound(
            PLANS,
            ("id",),
            (
                "env",
                "name",
                "state",
                "digest",
                "body",
                "failure_policy",
                "created_at",
                "created_by",
                "updated_at",
                "kind",
                "started_at",
                "finished_at",
                "run_epoch",
                "abort_requested_by",
                "result",
            ),
        ),
        Bound(APPROVALS, ("id",), ("plan_id", "by", "at", "digest", "decision", "comment")),
        Bound(TICKS, ("plan_id", "item"), ("by", "at", "output", "ok")),
        Bound(
            OVERRIDES,
            ("id",),
            ("plan_id", "by", "reason", "at", "until", "acknowledged_by", "acknowledged_at"),
        ),
        Bound(
            DEPLOYMENTS,
            ("id",),
            (
                "app",
                "env",
                "release_id",
                "version",
                "commit",
                "digest",
                "color",
                "at",
                "by",
                "plan_id",
                "kind",
                "outcome",
                "ended_at",
            ),
        ),
        Bound(
            QUEUED_RUNS,
            ("plan_id",),
            ("env", "by", "at", "state", "starts_at", "ended_at", "note"),
        ),
    )
}


# A state row as the event that vouches for it names it: its table and key.
Bind = tuple[Table, dict[str, Any]]


def _by_key(bound: Bound) -> Any:
    return and_(*(bound.table.c[c] == bindparam(f"key_{c}") for c in bound.key))


# Built once, keyed by bind parameters: every bound event reads its row back and stamps it, in
# the transaction of the change it vouches for (a switch, an approval), and constructing these
# per call (coercions, cache keys) cost more than the database's work.
_READ_ROW: dict[str, Select[Any]] = {n: select(b.table).where(_by_key(b)) for n, b in BOUND.items()}
_STAMP_ROW: dict[str, Update] = {
    n: update(b.table).where(_by_key(b)).values(audit_seq=bindparam("seq"))
    for n, b in BOUND.items()
}


def _key_params(bound: Bound, key: Mapping[str, Any]) -> dict[str, Any]:
    return {f"key_{c}": key[c] for c in bound.key}


def _norm(value: Any) -> Any:
    if isinstance(value, bytes | memoryview):
        return "sha256:" + hashlib.sha256(bytes(value)).hexdigest()
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def row_hash(bound: Bound, row: Mapping[Any, Any]) -> str:
    """The content hash of one row: its bound columns, canonical JSON, SHA-256."""
    values = [[c, _norm(row[c])] for c in bound.content]
    text = json.dumps(values, sort_keys=True, ensure_ascii=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _where(bound: Bound, key: Mapping[str, Any]) -> Any:
    return and_(*(bound.table.c[c] == key[c] for c in bound.key))


def binding(conn: Connection, table: Table, key: Mapping[str, Any]) -> dict[str, Any]:
    """What the creating event carries for the row at `key` (read back as stored)."""
    bound = BOUND[str(table.name)]
    row = conn.execute(_READ_ROW[bound.name], _key_params(bound, key)).mappings().one()
    return {
        "table": bound.name,
        "key": {c: row[c] for c in bound.key},
        "hash": row_hash(bound, row),
    }


def change(conn: Connection, table: Table, key: Mapping[str, Any], **values: Any) -> Bind:
    """Update one bound row and return it as a bind for the event that vouches for the change.

    The row must verify first: the rebinding event would otherwise launder an edit made behind
    shipdeck's back (a plan's state set to approved, a failed deployment's outcome set to
    succeeded) into the chain, where `verify` could no longer see it.
    """
    bound = BOUND[str(table.name)]
    row = conn.execute(select(table).where(_where(bound, key))).mappings().one()
    bad = untrusted(conn, table, [dict(row)])
    if bad:
        problem = next(iter(bad.values()))
        raise IntegrityError(
            f"{problem.sentence}: refusing to change it; `shipdeck audit verify` lists every such row"
        )
    conn.execute(update(table).where(_where(bound, key)).values(**values))
    return table, dict(key)


def stamp(conn: Connection, bind: Mapping[str, Any], seq: int) -> None:
    """Point the bound row at its event."""
    bound = BOUND[bind["table"]]
    conn.execute(_STAMP_ROW[bound.name], {**_key_params(bound, bind["key"]), "seq": seq})


def key_text(bound: Bound, key: Sequence[Any]) -> str:
    return ", ".join(f"{c}={v}" for c, v in zip(bound.key, key, strict=True))


@dataclass(frozen=True)
class Problem:
    """One state row that does not verify."""

    table: str
    key: str
    seq: int | None  # the event it claims or that created it; None: no event at all
    what: str

    @property
    def sentence(self) -> str:
        return f"{self.table} row {self.key} {self.what}"


def bindings_of(payload: bytes) -> list[dict[str, Any]]:
    """The bindings an event's payload carries (a cheap byte test first: most events have none)."""
    if b'"bind"' not in payload:
        return []
    found = json.loads(payload).get("bind")
    return found if isinstance(found, list) else []


Binds = dict[tuple[str, tuple[Any, ...]], tuple[int, str]]


def collect(binds: Binds, seq: int, payload: bytes) -> None:
    """Remember the latest binding of each row (a later event rebinds a changed row)."""
    for b in bindings_of(payload):
        bound = BOUND.get(str(b.get("table")))
        key = b.get("key")
        if bound is None or not isinstance(key, dict):
            continue
        binds[(bound.name, tuple(key.get(c) for c in bound.key))] = (seq, str(b.get("hash")))


def check_state(conn: Connection, binds: Binds) -> list[Problem]:
    """Every bound row against the bindings the verified chain holds; sorted by sequence."""
    problems: list[Problem] = []
    pending = dict(binds)
    for bound in BOUND.values():
        for row in conn.execute(select(bound.table)).mappings():
            key = tuple(row[c] for c in bound.key)
            where = key_text(bound, key)
            found = pending.pop((bound.name, key), None)
            claimed = row["audit_seq"]
            if found is None:
                problems.append(Problem(bound.name, where, claimed, "has no audit event (forged)"))
            elif claimed != found[0] or row_hash(bound, row) != found[1]:
                problems.append(
                    Problem(bound.name, where, found[0], f"differs from event {found[0]} (altered)")
                )
    for (table, key), (seq, _) in pending.items():
        where = key_text(BOUND[table], key)
        problems.append(Problem(table, where, seq, f"created by event {seq} is gone (deleted)"))
    return sorted(problems, key=lambda p: (p.seq is None, p.seq or 0))


def untrusted(
    conn: Connection, table: Table, rows: Iterable[Mapping[str, Any]]
) -> dict[tuple[Any, ...], Problem]:
    """The rows (of one plan, one release) that their own events do not vouch for.

    A local check for decisions: each row's event must exist, hash to its stored hash and bind
    this row with this content. The whole chain is `verify`'s work; this keeps a row written
    straight into a table from counting as an approval, a tick or a release.
    """
    from shipdeck.core.storage.audit import event_hash_of

    bound = BOUND[str(table.name)]
    rows = list(rows)
    seqs = {r["audit_seq"] for r in rows if r["audit_seq"] is not None}
    events = (
        {e.seq: e for e in conn.execute(select(AUDIT_EVENTS).where(AUDIT_EVENTS.c.seq.in_(seqs)))}
        if seqs
        else {}
    )
    out: dict[tuple[Any, ...], Problem] = {}
    for row in rows:
        key = tuple(row[c] for c in bound.key)
        where = key_text(bound, key)
        seq = row["audit_seq"]
        ev = events.get(seq) if seq is not None else None
        if ev is None:
            out[key] = Problem(bound.name, where, seq, "has no audit event (forged)")
            continue
        payload = bytes(ev.payload)
        mine = [
            b
            for b in bindings_of(payload)
            if b.get("table") == bound.name
            and tuple((b.get("key") or {}).get(c) for c in bound.key) == key
        ]
        if event_hash_of(ev) != ev.hash or not mine or mine[-1].get("hash") != row_hash(bound, row):
            out[key] = Problem(bound.name, where, seq, f"differs from event {seq} (altered)")
    return out


def _fields(row: Any) -> Mapping[str, Any]:
    """A query row's columns, or a store's frozen record's fields (which carry the key, the
    bound columns and audit_seq as read)."""
    return vars(row) if is_dataclass(row) else row._mapping


def trusted_rows(
    conn: Connection, table: Table, rows: Iterable[Any]
) -> tuple[list[Any], list[Problem]]:
    """Split query rows (or stores' records of them) into those their events vouch for and the
    problems of the others."""
    rows = list(rows)
    bad = untrusted(conn, table, [_fields(r) for r in rows])
    if not bad:
        return rows, []
    key = BOUND[str(table.name)].key
    good = [r for r in rows if tuple(_fields(r)[c] for c in key) not in bad]
    return good, list(bad.values())


def bind_as_found(conn: Connection, tables: Sequence[str], note: str) -> None:
    """Bind every row of `tables` as it is now, one `state.bound` event per table (actor: the
    upgrade, as the OS user running it): how a migration that changes what a binding covers
    brings the rows written before it under the chain. Edits made before it cannot be told apart,
    which `note` says in each event."""
    from shipdeck.core.storage import audit  # audit imports this module

    who = audit.Who("shipdeck db upgrade", pwd.getpwuid(os.geteuid()).pw_name)
    for name in tables:
        bound = BOUND[name]
        keys = [dict(r) for r in conn.execute(select(*bound.table.c[bound.key])).mappings()]
        if keys:
            audit.append(
                conn,
                who,
                "state.bound",
                {"table": name, "rows": len(keys), "note": note},
                at=datetime.now(UTC),
                binds=[(bound.table, k) for k in keys],
            )
