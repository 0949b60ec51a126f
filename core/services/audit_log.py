"""Reading, exporting, verifying and checkpointing the audit log (auditors' work)."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from json.encoder import encode_basestring
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import (
    ColumnClause,
    Connection,
    Select,
    String,
    and_,
    bindparam,
    func,
    literal_column,
    select,
    type_coerce,
)

from shipdeck.core.domain.redact import csv_cell, json_text
from shipdeck.core.errors import IntegrityError, UsageError
from shipdeck.core.services.context import Context
from shipdeck.core.storage import audit
from shipdeck.core.storage.audit import VerifyResult as VerifyResult  # the front ends' type
from shipdeck.core.storage.nofollow import open_nofollow
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

    def apply(self, query: Select[Any]) -> Select[Any]:
        conds = []
        if self.actor:
            conds.append(AUDIT_EVENTS.c.actor == self.actor)
        if self.app:
            conds.append(AUDIT_EVENTS.c.app == self.app)
        if self.env:
            conds.append(AUDIT_EVENTS.c.env == self.env)
        if self.plan:
            conds.append(AUDIT_EVENTS.c.plan == self.plan)
        if self.kind:
            if self.kind.endswith(("*", ".")):
                conds.append(AUDIT_EVENTS.c.kind.startswith(self.kind.rstrip("*"), autoescape=True))
            else:
                conds.append(AUDIT_EVENTS.c.kind == self.kind)
        if self.since:
            conds.append(AUDIT_EVENTS.c.at >= self.since)
        if self.until:
            conds.append(AUDIT_EVENTS.c.at < self.until)
        return query.where(and_(*conds)) if conds else query


@dataclass(frozen=True)
class Event:
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
_EXPORT_KEYS = tuple(c.name for c in _EXPORTED)  # the exported event's fields, the CSV header


def _event(row: Any) -> Event:
    """An event from a row of `_EXPORTED` columns, unpacked by position: a page of the audit view
    builds fifty of these per key press (bench/audit_list.py)."""
    seq, at, actor, os_user, ssh_client, kind, app, env, plan, payload, digest = row
    when = at if isinstance(at, datetime) else datetime.fromisoformat(at)
    body = json.loads(payload.decode() if isinstance(payload, bytes) else bytes(payload).decode())
    return Event(
        seq,
        when.replace(tzinfo=UTC),
        actor,
        os_user,
        ssh_client,
        kind,
        app,
        env,
        plan,
        body,
        digest,
    )


def list_events(
    ctx: Context,
    flt: AuditFilter = AuditFilter(),
    *,
    limit: int = 100,
    before: int | None = None,
    after: int | None = None,
    ascending: bool = False,
) -> list[Event]:
    """A page of events, newest first by default; keyset pagination by `seq` (before/after), so
    the millionth page costs what the first does."""
    if limit < 1:
        raise UsageError(f"--limit {limit}: must be 1 or more")
    query = flt.apply(select(*_EXPORTED))
    if before is not None:
        query = query.where(AUDIT_EVENTS.c.seq < before)
    if after is not None:
        query = query.where(AUDIT_EVENTS.c.seq > after)
    query = query.order_by(
        AUDIT_EVENTS.c.seq.asc() if ascending else AUDIT_EVENTS.c.seq.desc()
    ).limit(limit)
    with ctx.db.read() as conn:
        return [_event(r) for r in conn.execute(query)]


def count_events(ctx: Context, flt: AuditFilter = AuditFilter()) -> int:
    with ctx.db.read() as conn:
        return int(
            conn.execute(flt.apply(select(func.count()).select_from(AUDIT_EVENTS))).scalar_one()
        )


def head(ctx: Context) -> tuple[int, str]:
    """The chain head: a cheap change check for live refresh."""
    with ctx.db.read() as conn:
        return audit.head(conn)


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


def _export_rows(ctx: Context, flt: AuditFilter, batch: int = 5000) -> Iterator[tuple[Any, ...]]:
    """Events in sequence order as exported: `at` in ISO form and the payload as its stored
    canonical JSON text, in keyset pages; no event objects and no JSON round trip per row (the
    export of a million events was 15x the bare driver's, bench/audit_export.py)."""
    after = 0
    while True:
        query = flt.apply(select(*_EXPORTED)).where(AUDIT_EVENTS.c.seq > after)
        with ctx.db.read() as conn:
            page = conn.execute(query.order_by(AUDIT_EVENTS.c.seq).limit(batch)).all()
        yield from map(_exported, page)
        if len(page) < batch:
            return
        after = page[-1][0]


def _exported(row: Any) -> tuple[Any, ...]:
    seq, at, *middle, payload, digest = row
    body = bytes(payload).decode() if isinstance(payload, bytes | memoryview) else payload
    return (seq, _iso_at(at), *middle, body, digest)


def _jsonl_line(row: tuple[Any, ...]) -> str:
    """The event as one compact JSON object, keys sorted, the stored payload spliced in as is
    (it is canonical JSON already: sorted keys, compact, UTF-8)."""
    seq, at, actor, os_user, ssh_client, kind, app, env, plan, payload, digest = row
    return (
        f'{{"actor":{_str(actor)},"app":{_str(app)},"at":"{at}","env":{_str(env)},'
        f'"hash":{_str(digest)},"kind":{_str(kind)},"os_user":{_str(os_user)},'
        f'"payload":{payload},"plan":{_str(plan)},"seq":{seq},"ssh_client":{_str(ssh_client)}}}'
    )


def _str(value: str | None) -> str:
    return "null" if value is None else encode_basestring(value)


def _q(column: str) -> str:
    return f'json_quote("{column}")'  # NULL is null; escapes as encode_basestring does


# The `_jsonl_line` of a row, built by SQLite itself: the same bytes without a Python object per
# field (export of 1,000,000 events was 15x the sqlite3 client's JSON dump). A row whose `at` is
# not the fixed text SQLAlchemy stores (tampered, foreign) yields NULL and goes the Python way.
_AT = (
    'CASE WHEN typeof("at") = \'text\' AND length("at") = 26 AND substr("at", 11, 1) = \' \''
    " AND substr(\"at\", 20, 1) = '.' THEN substr(\"at\", 1, 10) || 'T' ||"
    ' CASE WHEN substr("at", 20) = \'.000000\' THEN substr("at", 12, 8)'
    " ELSE substr(\"at\", 12) END || '+00:00' END"
)
_SQLITE_LINE: ColumnClause[Any] = literal_column(
    f"""'{{"actor":' || {_q("actor")} || ',"app":' || {_q("app")} || ',"at":"' || {_AT}"""
    f""" || '","env":' || {_q("env")} || ',"hash":' || {_q("hash")}"""
    f""" || ',"kind":' || {_q("kind")} || ',"os_user":' || {_q("os_user")}"""
    f""" || ',"payload":' || CAST("payload" AS TEXT) || ',"plan":' || {_q("plan")}"""
    f""" || ',"seq":' || "seq" || ',"ssh_client":' || {_q("ssh_client")} || '}}'"""
)


def _sqlite_pages(ctx: Context, flt: AuditFilter, batch: int = 20000) -> Iterator[list[str]]:
    """Export lines as SQLite writes them (`_SQLITE_LINE`), a keyset page at a time."""
    after = 0
    while True:
        query = flt.apply(select(AUDIT_EVENTS.c.seq, _SQLITE_LINE)).where(
            AUDIT_EVENTS.c.seq > after
        )
        with ctx.db.read() as conn:
            page = conn.execute(query.order_by(AUDIT_EVENTS.c.seq).limit(batch)).all()
            lines = [line or _python_line(conn, seq) for seq, line in page]
        yield lines
        if len(page) < batch:
            return
        after = page[-1][0]


def _python_line(conn: Connection, seq: int) -> str:
    return _jsonl_line(_exported(conn.execute(_EXPORT_ONE, {"seq": seq}).one()))


_EXPORT_ONE = select(*_EXPORTED).where(AUDIT_EVENTS.c.seq == bindparam("seq"))


def export(ctx: Context, fmt: str, out: TextIO, flt: AuditFilter = AuditFilter()) -> int:
    if fmt not in ("jsonl", "csv"):
        raise UsageError(f"--format {fmt}: expected jsonl or csv")
    n = 0
    writer = csv.writer(out) if fmt == "csv" else None
    if writer:
        writer.writerow(_EXPORT_KEYS)
    if writer is None and ctx.db.is_sqlite:
        for lines in _sqlite_pages(ctx, flt):
            if lines:
                out.write(json_text("\n".join(lines)) + "\n")  # one scan, one write per page
            n += len(lines)
        return n
    for row in _export_rows(ctx, flt):
        if writer:
            writer.writerow([csv_cell(v) for v in row])  # opened in a spreadsheet
        else:
            out.write(json_text(_jsonl_line(row)) + "\n")
        n += 1
    return n


def export_to_file(ctx: Context, fmt: str, path: Path, flt: AuditFilter = AuditFilter()) -> int:
    """`export` into a new private file (0600: it is the whole log), never through a symlink
    planted where it is written; both front ends export to files through here."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    try:
        fd = open_nofollow(path.absolute(), flags, 0o600, root=ctx.workspace)
        with open(fd, "w", encoding="utf-8", newline="") as fh:
            return export(ctx, fmt, fh, flt)
    except OSError as exc:
        raise UsageError(f"export to {path}: cannot write ({exc.strerror or exc})") from exc


def load_checkpoints(ctx: Context, location: str) -> list[audit.Checkpoint]:
    """The checkpoints kept at `location`; none there is a mistake worth naming (a typo in the
    path would otherwise verify against nothing and pass)."""
    try:
        found = audit.parse_checkpoints(ctx.checkpoints(location).read(), location)
    except audit.CheckpointFormatError as exc:
        raise IntegrityError(f"checkpoint store tampered with: {exc}") from exc
    if not found:
        raise UsageError(f"--checkpoints {location}: no checkpoints there (no such file, or empty)")
    return found


NO_CHECKPOINTS = (
    "no checkpoints given: a truncated log (its newest events removed and the head row fixed) "
    "cannot be detected; pass --checkpoints"
)


def verify(
    ctx: Context, checkpoints: str | None = None, *, require_checkpoints: bool = False
) -> VerifyResult:
    """The chain, the bound state rows and the checkpoints; without checkpoints only what the
    database proves about itself, which `require_checkpoints` turns into a failure."""
    cps = load_checkpoints(ctx, checkpoints) if checkpoints else []
    with ctx.db.read() as conn:
        result = audit.verify(conn, cps)
    if result.ok and require_checkpoints and not cps:
        return replace(result, ok=False, first_bad_seq=result.head_seq + 1, reason=NO_CHECKPOINTS)
    return result


def open_intents(ctx: Context) -> list[Event]:
    """Intents whose outcome was never recorded: effects that may or may not have happened
    (the command died, or the database failed after the effect). A full read of the chain."""
    with ctx.db.read() as conn:
        seqs = audit.verify(conn).open_intents
        if not seqs:
            return []
        query = select(*_EXPORTED).where(AUDIT_EVENTS.c.seq.in_(seqs)).order_by(AUDIT_EVENTS.c.seq)
        return [_event(r) for r in conn.execute(query)]


def verify_warnings(result: VerifyResult) -> list[str]:
    """What a passing verify cannot prove or did not settle, said plainly."""
    out: list[str] = []
    if result.ok and not result.checkpoints:
        out.append(NO_CHECKPOINTS)
    if result.open_intents:
        seqs = ", ".join(str(s) for s in result.open_intents[:10])
        more = " ..." if len(result.open_intents) > 10 else ""
        out.append(
            f"{len(result.open_intents)} intent(s) without an outcome (events {seqs}{more}): "
            "those effects may or may not have happened; see 'shipdeck reconcile'"
        )
    return out


def verify_or_raise(ctx: Context, checkpoints: str | None = None) -> VerifyResult:
    result = verify(ctx, checkpoints)
    if not result.ok:
        raise IntegrityError(f"audit chain broken at event {result.first_bad_seq}: {result.reason}")
    return result


def checkpoint(ctx: Context, to: str) -> audit.Checkpoint:
    """Record the intent, then write the head (which includes that intent) outside the database,
    where a rewrite of the log cannot reach it; the outcome event names what was written."""
    ctx.require("audit.checkpoint")
    store = ctx.checkpoints(to)
    with ctx.effect("audit.checkpoint", {"to": to}) as out:
        with ctx.db.read() as conn:
            seq, digest = audit.head(conn)
        cp = audit.Checkpoint(seq, digest, ctx.now().isoformat())
        store.append(cp.to_json())
        out.update(to=to, seq=seq, hash=digest)
    return cp
