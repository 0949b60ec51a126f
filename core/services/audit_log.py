"""Reading, exporting, verifying and checkpointing the audit log (auditors' work)."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, TextIO

from shipdeck.core.domain.checkpoints import Checkpoint, CheckpointFormatError, parse_checkpoints
from shipdeck.core.domain.redact import csv_cell, json_lines
from shipdeck.core.errors import IntegrityError, UsageError
from shipdeck.core.services.context import Context
from shipdeck.core.storage import audit, audit_head, audit_reads
from shipdeck.core.storage.audit import VerifyResult as VerifyResult  # the front ends' type
from shipdeck.core.storage.audit_reads import AuditFilter as AuditFilter  # the front ends' type
from shipdeck.core.storage.audit_reads import Event as Event  # the front ends' type
from shipdeck.core.storage.nofollow import open_nofollow


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
    with ctx.db.read() as conn:
        return audit_reads.page(
            conn, flt, limit=limit, before=before, after=after, ascending=ascending
        )


def count_events(ctx: Context, flt: AuditFilter = AuditFilter()) -> int:
    with ctx.db.read() as conn:
        return audit_reads.count(conn, flt)


def _export_rows(ctx: Context, flt: AuditFilter, batch: int = 5000) -> Iterator[tuple[Any, ...]]:
    """Events in sequence order as exported (audit_reads.export_page), in keyset pages of one
    read transaction each."""
    after = 0
    while True:
        with ctx.db.read() as conn:
            page = audit_reads.export_page(conn, flt, after, batch)
        yield from page
        if len(page) < batch:
            return
        after = page[-1][0]


def _line_pages(ctx: Context, flt: AuditFilter, batch: int = 20000) -> Iterator[list[bytes]]:
    """Export lines (UTF-8) as the database writes them (audit_reads.export_lines), a keyset page
    at a time."""
    after = 0
    while True:
        with ctx.db.read() as conn:
            lines, after = audit_reads.export_lines(conn, flt, after, batch)
        yield lines
        if len(lines) < batch:
            return


def _check_format(fmt: str) -> None:
    if fmt not in ("jsonl", "csv"):
        raise UsageError(f"--format {fmt}: expected jsonl or csv")


def _write_jsonl(ctx: Context, write: Callable[[bytes], object], flt: AuditFilter) -> int:
    """The JSONL export as UTF-8 pages: the database's lines as they came (json_lines looks at
    a line only in a page that may hold a character to escape), one write per page."""
    n = 0
    for lines in _line_pages(ctx, flt):
        if lines:
            write(json_lines(lines))
            write(b"\n")  # not `+ b"\n"`: that copies the page
        n += len(lines)
    return n


def _write_csv(ctx: Context, out: TextIO, flt: AuditFilter) -> int:
    writer = csv.writer(out)
    writer.writerow(audit_reads.EXPORT_KEYS)
    n = 0
    for row in _export_rows(ctx, flt):
        writer.writerow([csv_cell(v) for v in row])  # opened in a spreadsheet
        n += 1
    return n


def export(ctx: Context, fmt: str, out: TextIO, flt: AuditFilter = AuditFilter()) -> int:
    """The log into a text stream (the CLI's stdout without --out)."""
    _check_format(fmt)
    if fmt == "jsonl":
        return _write_jsonl(ctx, lambda page: out.write(page.decode()), flt)
    return _write_csv(ctx, out, flt)


def export_to_file(ctx: Context, fmt: str, path: Path, flt: AuditFilter = AuditFilter()) -> int:
    """The log into a new private file (0600: it is the whole log), never through a symlink
    planted where it is written; both front ends export to files through here. JSONL pages go
    to the file as the bytes the database wrote, never decoded and encoded again."""
    _check_format(fmt)
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    try:
        fd = open_nofollow(path.absolute(), flags, 0o600, root=ctx.workspace)
    except OSError as exc:
        raise UsageError(f"export to {path}: cannot write ({exc.strerror or exc})") from exc
    try:
        with open(fd, "wb") as fh:
            if fmt == "jsonl":
                return _write_jsonl(ctx, fh.write, flt)
            with io.TextIOWrapper(fh, encoding="utf-8", newline="") as text:
                return _write_csv(ctx, text, flt)
    except OSError as exc:
        # A cut-off export would pass for the whole log: it goes (the name, never a target).
        path.absolute().unlink(missing_ok=True)
        raise UsageError(
            f"export to {path}: cannot write ({exc.strerror or exc}); the partial file is removed"
        ) from exc


def load_checkpoints(ctx: Context, location: str) -> list[audit.Checkpoint]:
    """The checkpoints kept at `location`; none there is a mistake worth naming (a typo in the
    path would otherwise verify against nothing and pass)."""
    try:
        found = parse_checkpoints(ctx.checkpoints(location).read(), location)
    except CheckpointFormatError as exc:
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
        return audit_reads.events(conn, seqs) if seqs else []


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
            seq, digest = audit_head.head(conn)
        cp = Checkpoint(seq, digest, ctx.now().isoformat())
        store.append(cp.to_json())
        out.update(to=to, seq=seq, hash=digest)
    return cp
