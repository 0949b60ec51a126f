"""Reading, exporting, verifying and checkpointing the audit log (auditors' work)."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, fields, replace
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import Select, and_, func, select

from shipdeck.core.domain.redact import csv_cell, json_text
from shipdeck.core.errors import IntegrityError, UsageError
from shipdeck.core.services.context import Context
from shipdeck.core.storage import audit
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


def _event(row: Any) -> Event:
    return Event(
        row.seq,
        row.at,
        row.actor,
        row.os_user,
        row.ssh_client,
        row.kind,
        row.app,
        row.env,
        row.plan,
        json.loads(row.payload),
        row.hash,
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
    query = flt.apply(select(AUDIT_EVENTS))
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


def iter_events(
    ctx: Context, flt: AuditFilter = AuditFilter(), batch: int = 5000
) -> Iterator[Event]:
    after = 0
    while True:
        page = list_events(ctx, flt, limit=batch, after=after, ascending=True)
        yield from page
        if len(page) < batch:
            return
        after = page[-1].seq


def export(ctx: Context, fmt: str, out: TextIO, flt: AuditFilter = AuditFilter()) -> int:
    if fmt not in ("jsonl", "csv"):
        raise UsageError(f"--format {fmt}: expected jsonl or csv")
    n = 0
    columns = [f.name for f in fields(Event)]  # the CSV header is the exported event
    writer = csv.DictWriter(out, fieldnames=columns) if fmt == "csv" else None
    if writer:
        writer.writeheader()
    for ev in iter_events(ctx, flt):
        d = ev.as_dict()
        if writer:
            d["payload"] = json.dumps(d["payload"], sort_keys=True, ensure_ascii=False)
            writer.writerow({k: csv_cell(v) for k, v in d.items()})  # opened in a spreadsheet
        else:
            out.write(json_text(json.dumps(d, sort_keys=True, ensure_ascii=False)) + "\n")
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
) -> audit.VerifyResult:
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
        query = (
            select(AUDIT_EVENTS).where(AUDIT_EVENTS.c.seq.in_(seqs)).order_by(AUDIT_EVENTS.c.seq)
        )
        return [_event(r) for r in conn.execute(query)]


def verify_warnings(result: audit.VerifyResult) -> list[str]:
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


def verify_or_raise(ctx: Context, checkpoints: str | None = None) -> audit.VerifyResult:
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
