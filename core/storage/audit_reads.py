"""Reading the audit log as auditors and decisions see it: filtered pages, counts, the export's
rows and lines, and the few events a plan's verdict looks up. The append and verify side is
core.storage.audit.

Events come back as `Event` records built straight from the row by position, and the export's
rows as plain tuples in the exported form: the audit view builds a page per key press and an
export may hold a million events, so neither pays for a datetime or a JSON round trip it does
not need (bench/audit_list.py, bench/audit_export.py).
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from json.encoder import encode_basestring
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    and_,
    bindparam,
    func,
    select,
    type_coerce,
)

from shipdeck.core.storage.db import Tx, driver_rows, driver_sql
from shipdeck.core.storage.tables import AUDIT_EVENTS


@dataclass(frozen=True)
class AuditFilter:
    actor: str | None = None
    app: str | None = None
    env: str | None = None
    kind: str | None = None  # exact, or a prefix ending in '.' / '*' (e.g. 'plan.')
    since: datetime | None = None
    until: datetime | None = None
    plan: str | None = None

    def terms(self) -> list[tuple[str, str, Any]]:
        """(column, SQL operator, value) of each condition this filter names (each has its
        index): one list that both the SQLAlchemy query (`apply`) and the driver SQL of a page
        (`page`) are written from."""
        found: list[tuple[str, str, Any]] = [
            (name, "=", value)
            for name, value in (
                ("actor", self.actor),
                ("app", self.app),
                ("env", self.env),
                ("plan", self.plan),
            )
            if value
        ]
        if self.kind:
            if self.kind.endswith(("*", ".")):
                found.append(("kind", "LIKE", _like_prefix(self.kind.rstrip("*"))))
            else:
                found.append(("kind", "=", self.kind))
        if self.since:
            found.append(("at", ">=", self.since))
        if self.until:
            found.append(("at", "<", self.until))
        return found

    def apply(self, query: Select[Any]) -> Select[Any]:
        """`query` narrowed to the events this filter names."""
        conds = [_CLAUSES[op](AUDIT_EVENTS.c[col], value) for col, op, value in self.terms()]
        return query.where(and_(*conds)) if conds else query


def _like_prefix(prefix: str) -> str:
    """A LIKE pattern for text starting with `prefix`, its wildcards escaped (ESCAPE '/')."""
    return prefix.replace("/", "//").replace("%", "/%").replace("_", "/_") + "%"


_CLAUSES: dict[str, Callable[[Any, Any], ColumnElement[bool]]] = {
    "=": operator.eq,
    "<": operator.lt,
    ">": operator.gt,
    ">=": operator.ge,
    "LIKE": lambda column, pattern: column.like(pattern, escape="/"),
}


class Event(NamedTuple):
    """One event as read. A tuple, not a frozen dataclass: as immutable, and built ten times
    faster (a frozen dataclass sets each field through object.__setattr__), which is a fifth
    of a page of the audit view (bench/audit_list.py)."""

    seq: int
    at: datetime
    actor: str
    os_user: str
    ssh_client: str | None
    kind: str
    app: str | None
    env: str | None
    plan: str | None
    payload: dict[str, Any]
    hash: str

    @property
    def content(self) -> dict[str, Any]:
        """What happened, for a one-line summary: the payload without its state bindings (row
        hashes that prove state to `verify`, not something a person reads)."""
        return {k: v for k, v in self.payload.items() if k != "bind"}

    def as_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": self.at.isoformat(),
            "actor": self.actor,
            "os_user": self.os_user,
            "ssh_client": self.ssh_client,
            "kind": self.kind,
            "app": self.app,
            "env": self.env,
            "plan": self.plan,
            "payload": self.payload,
            "hash": self.hash,
        }


_EXPORTED = (
    AUDIT_EVENTS.c.seq,
    # Read as stored (SQLite text, a naive PostgreSQL timestamp): no UTCDateTime object per row.
    type_coerce(AUDIT_EVENTS.c.at, String).label("at"),
    AUDIT_EVENTS.c.actor,
    AUDIT_EVENTS.c.os_user,
    AUDIT_EVENTS.c.ssh_client,
    AUDIT_EVENTS.c.kind,
    AUDIT_EVENTS.c.app,
    AUDIT_EVENTS.c.env,
    AUDIT_EVENTS.c.plan,
    AUDIT_EVENTS.c.payload,
    AUDIT_EVENTS.c.hash,
)
EXPORT_KEYS = tuple(c.name for c in _EXPORTED)  # the exported event's fields, the CSV header


def _event(row: Any) -> Event:
    """An event from a row of `_EXPORTED` columns, unpacked by position: a page of the audit view
    builds fifty of these per key press (bench/audit_list.py)."""
    seq, at, actor, os_user, ssh_client, kind, app, env, plan, payload, digest = row
    if isinstance(at, datetime):
        when = at.replace(tzinfo=UTC)
    else:  # SQLite's stored text: parsed as UTC directly (cheaper than a replace afterwards)
        try:
            when = datetime.fromisoformat(at + "+00:00")
        except ValueError:  # foreign text with an offset of its own: read as before
            when = datetime.fromisoformat(at).replace(tzinfo=UTC)
    return Event(
        seq, when, actor, os_user, ssh_client, kind, app, env, plan, _payload(payload), digest
    )


_RAW_DECODE = json.JSONDecoder().raw_decode


def _payload(stored: bytes | memoryview) -> Any:
    """The stored canonical JSON, decoded. `raw_decode` skips json.loads' whitespace scans
    (canonical JSON has none) at a quarter of its cost; anything else (trailing text, not JSON)
    goes to json.loads, which judges it as before."""
    text = stored.decode() if isinstance(stored, bytes) else bytes(stored).decode()
    try:
        value, end = _RAW_DECODE(text)
    except ValueError:
        end = -1
    return value if end == len(text) else json.loads(text)


_PAGE_COLUMNS = 'seq, "at", actor, os_user, ssh_client, kind, app, env, "plan", payload, hash'


def _driver_where(
    conn: Tx, flt: AuditFilter, extra: list[tuple[str, str, Any]], mark: str
) -> tuple[str, list[Any]]:
    """The WHERE clause (without the keyword, '' for none) and parameters of driver SQL for the
    filter's terms and `extra` ones; times are bound as the column stores them."""
    terms = flt.terms() + extra
    where = " AND ".join(
        f'"{col}" {op} {mark}' + (" ESCAPE '/'" if op == "LIKE" else "") for col, op, _ in terms
    )
    at_param = (
        AUDIT_EVENTS.c.at.type.bind_processor(conn.dialect) if flt.since or flt.until else None
    )
    return where, [at_param(v) if col == "at" and at_param else v for col, _, v in terms]


def page(
    conn: Tx,
    flt: AuditFilter,
    *,
    limit: int,
    before: int | None = None,
    after: int | None = None,
    ascending: bool = False,
) -> list[Event]:
    """A keyset page by `seq` (before/after), so the millionth page costs what the first does.

    Written as driver SQL from the filter's terms (db.driver_sql): building, caching and running
    a SQLAlchemy select cost more than the indexed query itself (bench/audit_list.py)."""
    run, mark = driver_sql(conn)
    keyset = [("seq", "<", before)] if before is not None else []
    keyset += [("seq", ">", after)] if after is not None else []
    where, params = _driver_where(conn, flt, keyset, mark)
    sql = (
        f"SELECT {_PAGE_COLUMNS} FROM audit_event{' WHERE ' + where if where else ''}"
        f" ORDER BY seq {'ASC' if ascending else 'DESC'} LIMIT {mark}"
    )
    return [_event(r) for r in run(sql, (*params, limit)).fetchall()]


def count(conn: Tx, flt: AuditFilter) -> int:
    return int(conn.execute(flt.apply(select(func.count()).select_from(AUDIT_EVENTS))).scalar_one())


def count_up_to(conn: Tx, flt: AuditFilter, top_seq: int) -> int:
    """Events matching `flt` up to `top_seq`: a stable count while newer events arrive."""
    query = flt.apply(select(func.count()).select_from(AUDIT_EVENTS))
    return int(conn.execute(query.where(AUDIT_EVENTS.c.seq <= top_seq)).scalar_one())


def seq_at_offset(conn: Tx, flt: AuditFilter, offset: int, top_seq: int) -> int | None:
    """The sequence number of the `offset`-th newest event matching `flt` up to `top_seq`."""
    query = (
        flt.apply(select(AUDIT_EVENTS.c.seq))
        .where(AUDIT_EVENTS.c.seq <= top_seq)
        .order_by(AUDIT_EVENTS.c.seq.desc())
        .offset(offset)
        .limit(1)
    )
    seq = conn.execute(query).scalar()
    return None if seq is None else int(seq)


def events(conn: Tx, seqs: Sequence[int]) -> list[Event]:
    """The events at `seqs`, in sequence order."""
    query = select(*_EXPORTED).where(AUDIT_EVENTS.c.seq.in_(seqs)).order_by(AUDIT_EVENTS.c.seq)
    return [_event(r) for r in conn.execute(query)]


def payload_at(conn: Tx, seq: int) -> Any:
    """The payload of event `seq`, decoded (the event must exist)."""
    payload = conn.execute(select(AUDIT_EVENTS.c.payload).where(AUDIT_EVENTS.c.seq == seq))
    return json.loads(bytes(payload.scalar_one()))


def actors_of(conn: Tx, plan: str, kinds: Sequence[str]) -> tuple[str, ...]:
    """Everyone with an event of `kinds` about `plan`, each once."""
    return tuple(
        conn.execute(
            select(AUDIT_EVENTS.c.actor)
            .where(AUDIT_EVENTS.c.plan == plan, AUDIT_EVENTS.c.kind.in_(kinds))
            .distinct()
        ).scalars()
    )


# --- export ------------------------------------------------------------------------------------


def _iso_at(stored: object) -> str:
    """`Event.at.isoformat()` from the stored value, without building the aware datetime when it
    is SQLite's fixed 'YYYY-MM-DD HH:MM:SS.ffffff' text."""
    if isinstance(stored, str) and len(stored) == 26 and stored[10] == " " and stored[19] == ".":
        text = "T".join((stored[:10], stored[11:19] if stored.endswith(".000000") else stored[11:]))
        return text + "+00:00"
    try:
        at = stored if isinstance(stored, datetime) else datetime.fromisoformat(str(stored))
    except ValueError:  # not a time (a tampered row): exported as stored, `verify` judges it
        return str(stored)
    return at.replace(tzinfo=UTC).isoformat()


def _exported(row: Any) -> tuple[Any, ...]:
    seq, at, *middle, payload, digest = row
    body = bytes(payload).decode() if isinstance(payload, bytes | memoryview) else payload
    return (seq, _iso_at(at), *middle, body, digest)


def export_page(conn: Tx, flt: AuditFilter, after: int, batch: int) -> list[tuple[Any, ...]]:
    """The next `batch` events after `after` as exported (fields in EXPORT_KEYS order): `at` in
    ISO form and the payload as its stored canonical JSON text; no event objects and no JSON
    round trip per row (the export of a million events was 15x the bare driver's)."""
    query = flt.apply(select(*_EXPORTED)).where(AUDIT_EVENTS.c.seq > after)
    return list(map(_exported, conn.execute(query.order_by(AUDIT_EVENTS.c.seq).limit(batch))))


def jsonl_line(row: Sequence[Any]) -> str:
    """An exported row as one compact JSON object, keys sorted, the stored payload spliced in as
    is (it is canonical JSON already: sorted keys, compact, UTF-8)."""
    seq, at, actor, os_user, ssh_client, kind, app, env, plan, payload, digest = row
    return (
        f'{{"actor":{_str(actor)},"app":{_str(app)},"at":"{at}","env":{_str(env)},'
        f'"hash":{_str(digest)},"kind":{_str(kind)},"os_user":{_str(os_user)},'
        f'"payload":{payload},"plan":{_str(plan)},"seq":{seq},"ssh_client":{_str(ssh_client)}}}'
    )


def _str(value: str | None) -> str:
    return "null" if value is None else encode_basestring(value)


# The `jsonl_line` of a row, built by SQLite itself: the same bytes without a Python object per
# field (export of 1,000,000 events was 15x the sqlite3 client's JSON dump). json_object quotes
# as json_quote and encode_basestring do, in one call per half: the halves meet around the stored
# payload, spliced in as is (rtrim/ltrim drop exactly the one brace, as a value never ends in
# '}' nor a key starts with '{'). A row whose `at` is not the fixed text SQLAlchemy stores
# (tampered, foreign) yields NULL and goes the Python way.
_SQLITE_AT_OK = "typeof(\"at\") = 'text' AND \"at\" LIKE '____-__-__ __:__:__.______'"
_SQLITE_AT = (  # _iso_at: no fraction when it is zero
    'substr("at", 1, 10) || \'T\' || substr("at", 12,'
    " CASE WHEN substr(\"at\", 21) = '000000' THEN 8 ELSE 15 END) || '+00:00'"
)
_SQLITE_LINE = (
    f"CASE WHEN {_SQLITE_AT_OK} THEN rtrim(json_object('actor', actor, 'app', app,"
    f" 'at', {_SQLITE_AT}, 'env', env, 'hash', hash, 'kind', kind, 'os_user', os_user), '}}')"
    """ || ',"payload":' || CAST(payload AS TEXT) || ','"""
    """ || ltrim(json_object('plan', "plan", 'seq', seq, 'ssh_client', ssh_client), '{') END"""
)


# The same line built by PostgreSQL: to_json quotes text as encode_basestring does (the short
# escapes, \u00XX for other controls, everything else as is), the stored payload is spliced in,
# and the naive UTC time is written as isoformat would. A time Python cannot hold (infinite,
# BC, past 9999) or a payload PostgreSQL text cannot hold (a NUL) yields NULL: the Python way.
def _pg_q(column: str) -> str:
    return f"coalesce(to_json({column})::text, 'null')"


_PG_LINE = (
    'CASE WHEN isfinite("at") AND "at" >= \'0001-01-01\' AND "at" < \'10000-01-01\''
    " AND position('\\x00'::bytea IN payload) = 0 THEN"
    f""" '{{"actor":' || {_pg_q("actor")} || ',"app":' || {_pg_q("app")} || ',"at":"'"""
    """ || to_char("at", 'YYYY-MM-DD"T"HH24:MI:SS')"""
    """ || CASE WHEN date_trunc('second', "at") = "at" THEN '' ELSE to_char("at", '.US') END"""
    f""" || '+00:00","env":' || {_pg_q("env")} || ',"hash":' || {_pg_q("hash")}"""
    f""" || ',"kind":' || {_pg_q("kind")} || ',"os_user":' || {_pg_q("os_user")}"""
    """ || ',"payload":' || convert_from(payload, 'UTF8') || ',"plan":' || """
    f"""{_pg_q('"plan"')} || ',"seq":' || seq || ',"ssh_client":' || {_pg_q("ssh_client")}"""
    """ || '}' END"""
)
# Each line as its UTF-8 bytes, which the export writes as they are: no str per line to decode
# and encode again (PostgreSQL sends the bytea raw in the binary format: db.driver_rows).
_LINES = {"?": f"CAST({_SQLITE_LINE} AS BLOB)", "%s": f"convert_to({_PG_LINE}, 'UTF8')"}
_EXPORT_ONE = select(*_EXPORTED).where(AUDIT_EVENTS.c.seq == bindparam("seq"))


def export_lines(conn: Tx, flt: AuditFilter, after: int, batch: int) -> tuple[list[bytes], int]:
    """The export lines (UTF-8) of the next `batch` events after `after` as the database writes
    them (`_SQLITE_LINE`, `_PG_LINE`), and the last sequence read (`after` when none were)."""
    _, mark = driver_sql(conn)
    where, params = _driver_where(conn, flt, [("seq", ">", after)], mark)
    sql = f"SELECT seq, {_LINES[mark]} FROM audit_event WHERE {where} ORDER BY seq LIMIT {mark}"
    found = driver_rows(conn, sql, (*params, batch))
    lines = [line or _python_line(conn, seq) for seq, line in found]
    return lines, found[-1][0] if found else after


def _python_line(conn: Tx, seq: int) -> bytes:
    return jsonl_line(_exported(conn.execute(_EXPORT_ONE, {"seq": seq}).one())).encode()


# --- the few events a run's decisions rest on ------------------------------------------------


def first_actor_since(conn: Tx, plan: str, kind: str, after_seq: int) -> str | None:
    """Who wrote the plan's first `kind` event after event `after_seq` (a promote request made
    while a canary paused), or None."""
    return conn.execute(
        select(AUDIT_EVENTS.c.actor)
        .where(
            AUDIT_EVENTS.c.plan == plan, AUDIT_EVENTS.c.kind == kind, AUDIT_EVENTS.c.seq > after_seq
        )
        .order_by(AUDIT_EVENTS.c.seq)
        .limit(1)
    ).scalar()


def latest_payloads(
    conn: Tx, kind: str, *, app: str, env: str
) -> Iterator[tuple[int, dict[str, Any]]]:
    """(seq, payload) of the `kind` events about `app` in `env`, newest first: evidence a later
    decision rests on (the eval gate's baseline). The kind index finds them."""
    rows = conn.execute(
        select(AUDIT_EVENTS.c.seq, AUDIT_EVENTS.c.payload)
        .where(AUDIT_EVENTS.c.kind == kind, AUDIT_EVENTS.c.app == app, AUDIT_EVENTS.c.env == env)
        .order_by(AUDIT_EVENTS.c.seq.desc())
    )
    for seq, payload in rows:
        yield seq, json.loads(bytes(payload))
