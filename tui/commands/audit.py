"""`shipdeck audit ...`: browse, export, verify and checkpoint the audit log."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from shipdeck.core.errors import ExitCode, UsageError
from shipdeck.tui import output
from shipdeck.tui.commands.common import context, parse_instant


def register(app: typer.Typer) -> None:
    aud = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)
    app.add_typer(aud, name="audit")

    @aud.command("list")
    def list_(
        actor: str | None = typer.Option(None, "--actor"),
        app_name: str | None = typer.Option(None, "--app"),
        env: str | None = typer.Option(None, "--env"),
        kind: str | None = typer.Option(
            None, "--kind", help="Exact kind, or a prefix like 'plan.*'."
        ),
        since: str | None = typer.Option(
            None, "--since", help="ISO time or duration back (2h, 7d)."
        ),
        until: str | None = typer.Option(None, "--until"),
        limit: int = typer.Option(50, "--limit"),
        before: int | None = typer.Option(
            None, "--before", help="Page: events older than this seq."
        ),
    ) -> None:
        """Newest events first, filtered."""
        from shipdeck.core.services.audit_log import AuditFilter, list_events

        flt = AuditFilter(
            actor,
            app_name,
            env,
            kind,
            parse_instant(since, "--since"),
            parse_instant(until, "--until"),
        )
        events = list_events(context(), flt, limit=limit, before=before)
        if output.OPTIONS.machine:
            output.emit({"events": [e.as_dict() for e in events]})
            return
        output.table(
            ["SEQ", "AT (UTC)", "ACTOR", "KIND", "SUBJECT", "DETAIL"],
            [
                [
                    e.seq,
                    f"{e.at:%Y-%m-%d %H:%M:%S}",
                    e.actor,
                    e.kind,
                    "/".join(x for x in (e.app, e.env) if x) or "-",
                    json.dumps(e.payload, ensure_ascii=False, sort_keys=True),
                ]
                for e in events
            ],
        )

    @aud.command("verify")
    def verify(
        checkpoints: str | None = typer.Option(
            None, "--checkpoints", help="Checkpoint file or s3:// URI."
        ),
        require_checkpoints: bool = typer.Option(
            False,
            "--require-checkpoints",
            help="Fail (exit 7) without checkpoints: truncation cannot be detected then.",
        ),
    ) -> None:
        """Verify the hash chain, the state rows bound to it and the checkpoints (exit 7 naming
        the first bad sequence number)."""
        from shipdeck.core.services.audit_log import verify as run_verify
        from shipdeck.core.services.audit_log import verify_warnings

        r = run_verify(context(), checkpoints, require_checkpoints=require_checkpoints)
        warnings = verify_warnings(r)
        doc = {
            "ok": r.ok,
            "events": r.events,
            "head": {"seq": r.head_seq, "hash": r.head_hash},
            "first_bad_seq": r.first_bad_seq,
            "reason": r.reason,
            "checkpoints": r.checkpoints,
            "state_rows": r.state_rows,
            "open_intents": list(r.open_intents),
            "warnings": warnings,
        }
        if output.OPTIONS.machine:
            output.emit(doc)
        elif r.ok:
            output.say(
                f"ok: {r.events} events, head {r.head_seq} {r.head_hash[:16]}, "
                f"{r.state_rows} state rows bound, {r.checkpoints} checkpoint(s) match"
            )
        for w in warnings:
            output.info(f"shipdeck: warning: {w}")
        if not r.ok:
            output.info(f"shipdeck: integrity failure at event {r.first_bad_seq}: {r.reason}")
            raise typer.Exit(int(ExitCode.INTEGRITY))

    @aud.command("export")
    def export(
        fmt: str = typer.Option("jsonl", "--format", help="jsonl or csv."),
        out: str | None = typer.Option(None, "--out", help="File (default: stdout)."),
    ) -> None:
        """Export the whole log."""
        from shipdeck.core.services.audit_log import export as run_export

        ctx = context()
        if fmt not in ("jsonl", "csv"):
            raise UsageError(f"--format {fmt}: expected jsonl or csv")
        if out is None:
            n = run_export(ctx, fmt, sys.stdout)
        else:
            from shipdeck.core.services.audit_log import export_to_file

            n = export_to_file(ctx, fmt, Path(out))
        output.info(f"exported {n} events")

    @aud.command("checkpoint")
    def checkpoint(
        to: str = typer.Option(..., "--to", help="File or s3://bucket/key to append the head to."),
    ) -> None:
        """Write the chain head outside the database (catches truncation and rewrites)."""
        from shipdeck.core.services.audit_log import checkpoint as run_checkpoint

        cp = run_checkpoint(context(), to)
        if output.OPTIONS.machine:
            output.emit({"checkpoint": {"seq": cp.seq, "hash": cp.hash, "at": cp.at, "to": to}})
        else:
            output.say(f"checkpoint {cp.seq} {cp.hash[:16]} → {to}")
