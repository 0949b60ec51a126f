"""The audit log: a virtual view over every event, filters, the payload, verify and export.

Filters are typed as `key:value` words in one bar (actor, app, env, kind, plan, since, until), the
way people already say them; `since`/`until` take an ISO time or a duration back from now (2h, 7d).
"""

from __future__ import annotations

import json
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

from rich.highlighter import JSONHighlighter
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Container
from textual.timer import Timer
from textual.widgets import Input, Static

from shipdeck.core.domain.redact import strip_controls
from shipdeck.core.errors import UsageError
from shipdeck.core.services.audit_log import AuditFilter, Event, VerifyResult
from shipdeck.tui.messages import (
    AuditRowsLoaded,
    AuditShapeLoaded,
    CheckpointWritten,
    ExportFinished,
    VerifyFinished,
)
from shipdeck.tui.screens.base import ShipdeckScreen
from shipdeck.tui.screens.prompt import PromptScreen
from shipdeck.tui.widgets.audit_view import AuditSource, AuditView
from shipdeck.tui.widgets.footer import KeysFooter
from shipdeck.tui.widgets.header import HeaderBar
from shipdeck.tui.widgets.scroll import VimScroll

# Keys closer together than this update the payload pane once they pause (_highlighted).
DETAIL_QUIET_S = 0.08
FILTER_KEYS = ("actor", "app", "env", "kind", "plan", "since", "until")
FILTER_HINT = "actor:NAME app:APP env:ENV kind:plan.* since:2h until:2026-11-01"


def parse_instant(text: str, key: str, now: datetime) -> datetime:
    from shipdeck.core.domain.windows import parse_duration

    try:
        return now - parse_duration(text)
    except ValueError:
        pass
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{key}:{text}: expected an ISO date/time or a duration like 2h") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def parse_filter(text: str, now: datetime) -> AuditFilter:
    values: dict[str, object] = {}
    for token in text.split():
        key, sep, value = token.partition(":")
        if not sep or key not in FILTER_KEYS or not value:
            raise UsageError(
                f"filter '{token}': use key:value with key one of {', '.join(FILTER_KEYS)}"
            )
        values[key] = parse_instant(value, key, now) if key in ("since", "until") else value
    return AuditFilter(**values)  # type: ignore[arg-type]


def describe_filter(flt: AuditFilter) -> str:
    parts = []
    for f in fields(flt):
        value = getattr(flt, f.name)
        if value is not None:
            shown = f"{value:%Y-%m-%d %H:%M}" if isinstance(value, datetime) else str(value)
            parts.append(f"{f.name}={shown}")
    return " ".join(parts)


def detail_text(ev: Event) -> Text:
    """Everything recorded about one event; the payload as pretty JSON, never as markup."""
    text = Text()
    text.append(f"event {ev.seq}", style="bold")
    text.append(f"  {ev.at:%Y-%m-%d %H:%M:%S} UTC\n", style="dim")
    text.append("kind    ", style="dim")
    text.append(strip_controls(ev.kind) + "\n", style="bold")
    text.append("actor   ", style="dim")
    text.append(strip_controls(ev.actor), style="bold")
    text.append(f"  os {strip_controls(ev.os_user)}  ssh {strip_controls(ev.ssh_client or '-')}\n")
    subject = [
        f"{k} {strip_controls(v)}"
        for k, v in (("app", ev.app), ("env", ev.env), ("plan", ev.plan))
        if v
    ]
    if subject:
        text.append("subject ", style="dim")
        text.append("  ".join(subject) + "\n")
    text.append("hash    ", style="dim")
    text.append(ev.hash + "\n")
    pretty = json.dumps(ev.payload, indent=2, sort_keys=True, ensure_ascii=False)
    text.append_text(JSONHighlighter()(Text(strip_controls(pretty))))
    return text


def verify_line(r: VerifyResult) -> Text:
    if r.ok:
        return Text(
            f"✓ chain verified: {r.events:,} events, head {r.head_seq} {r.head_hash[:12]}",
            style="green",
        )
    return Text(
        f"✗ chain broken at event {r.first_bad_seq}: {strip_controls(r.reason or '')}",
        style="bold red",
    )


class AuditScreen(ShipdeckScreen):
    TITLE = "Audit log"
    CSS_PATH = "sections.tcss"
    MUTATING: ClassVar[dict[str, str]] = {"checkpoint": "audit.checkpoint"}
    BINDINGS: ClassVar[list[BindingType]] = [
        # priority: handled as the key arrives, so what is typed next already lands in the bar
        Binding("slash", "edit_filter", "Filter", key_display="/", priority=True),
        Binding("v", "verify", "Verify"),
        Binding("x", "export", "Export"),
        Binding("c", "checkpoint", "Checkpoint"),
        Binding("r", "refresh", "Refresh", show=False),
        Binding("tab", "switch_pane", "List/detail", show=False),
        Binding("escape", "clear_filter", "Clear filter", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.flt = AuditFilter()
        self.verified: VerifyResult | None = None
        self._detail: Event | None = None  # the event under the cursor, for the payload pane
        self._detail_due = False
        self._detail_timer: Timer | None = None

    def compose(self) -> ComposeResult:
        yield HeaderBar(self.ctx, self.TITLE)
        yield Input(placeholder=f"/ filter: {FILTER_HINT}", id="audit-filter")
        yield Static("reading the log…", id="audit-status")
        with Container(id="audit-body"):
            yield AuditView(id="audit-view")
            with VimScroll(id="audit-detail", can_focus=True):
                yield Static(id="audit-payload")
        yield KeysFooter()

    @property
    def view(self) -> AuditView:
        return self.query_one(AuditView)

    def on_mount(self) -> None:
        self.view.load(AuditSource(self.ctx, self.flt))
        self.view.focus()

    def reload(self) -> None:
        self.view.load(AuditSource(self.ctx, self.flt), keep_position=True)

    # --- view updates --------------------------------------------------------------------------

    @on(AuditShapeLoaded)
    def _shape(self) -> None:
        self._status()

    @on(AuditRowsLoaded)
    def _rows(self) -> None:
        self.mark_loaded(self.view.shape.top_seq)

    @on(AuditView.Highlighted)
    def _highlighted(self, message: AuditView.Highlighted) -> None:
        """The payload pane follows the cursor: at once for a key on its own, and, while keys
        come faster than DETAIL_QUIET_S apart (j held down), once they pause. Its update lays the
        screen out again and repaints the pane, half of what a key cost (bench/tui_audit_keys.py),
        and a held key must move the list, not wait for details it runs past."""
        self._detail = message.event
        if self._detail_timer is not None:
            self._detail_due = True
            self._detail_timer.reset()
            return
        self._show_detail()
        self._detail_timer = self.set_timer(DETAIL_QUIET_S, self._detail_quiet)

    def _detail_quiet(self) -> None:
        self._detail_timer = None
        if self._detail_due:
            self._detail_due = False
            self._show_detail()

    def _show_detail(self) -> None:
        pane = self.query_one("#audit-payload", Static)
        if self._detail is not None:
            pane.update(detail_text(self._detail))
        elif self.view.shape.total == 0:
            pane.update(Text("no events match", style="dim"))
        else:
            pane.update(Text("…", style="dim"))

    def _status(self) -> None:
        shape = self.view.shape
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(f"{shape.total:,} events", style="bold")
        if shape.filtered:
            text.append(f"  filter {describe_filter(self.flt)}", style="cyan")
        if self.verified is not None:
            text.append("  ")
            text.append_text(verify_line(self.verified))
        self.query_one("#audit-status", Static).update(text)

    # --- filter --------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if (
            action == "edit_filter"
            and self.focused is not None
            and self.focused.id == "audit-filter"
        ):
            return False  # '/' is just a character while typing a filter
        return super().check_action(action, parameters)

    def action_edit_filter(self) -> None:
        self.focus_now(self.query_one("#audit-filter", Input))

    @on(Input.Submitted, "#audit-filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        try:
            flt = parse_filter(event.value, self.ctx.now())
        except UsageError as exc:
            self.show_error(exc.message)
            return
        self.apply_filter(flt)

    def apply_filter(self, flt: AuditFilter) -> None:
        self.flt = flt
        self.view.load(AuditSource(self.ctx, flt))
        self.focus_now(self.view)

    def action_clear_filter(self) -> None:
        box = self.query_one("#audit-filter", Input)
        if box.value or self.flt != AuditFilter():
            box.value = ""
            self.apply_filter(AuditFilter())
        self.focus_now(self.view)

    def action_refresh(self) -> None:
        self.reload()

    def action_switch_pane(self) -> None:
        if self.view.has_focus:
            self.focus_now(self.query_one("#audit-detail", VimScroll))
        else:
            self.focus_now(self.view)

    # --- verify --------------------------------------------------------------------------------

    def action_verify(self) -> None:
        self.query_one("#audit-status", Static).update(Text("verifying the chain…", style="bold"))
        self._verify()

    @work(thread=True, exclusive=True, exit_on_error=False, group="verify")
    def _verify(self) -> None:
        from shipdeck.core.services.audit_log import verify

        self.post_message(VerifyFinished(verify(self.ctx)))

    @on(VerifyFinished)
    def _verified(self, message: VerifyFinished) -> None:
        r = message.result
        self.verified = r
        self._status()
        if r.ok:
            self.notify(verify_line(r).plain, title="verify", markup=False)
            return
        self.notify(
            verify_line(r).plain, title="verify", severity="error", timeout=10, markup=False
        )
        if r.first_bad_seq is not None and not self.view.goto_seq(r.first_bad_seq):
            self.notify("clear the filter (Esc) to jump to that event", markup=False)

    # --- export and checkpoint -----------------------------------------------------------------

    def action_export(self) -> None:
        default = Path.cwd() / f"shipdeck-audit-{self.ctx.now():%Y%m%d-%H%M%S}.jsonl"
        scope = f" ({describe_filter(self.flt)})" if self.flt != AuditFilter() else ""
        self.app.push_screen(
            PromptScreen(
                f"Export the log{scope} to",
                str(default),
                "a .csv name writes CSV, anything else JSON lines",
            ),
            self._export_to,
        )

    def _export_to(self, path: str | None) -> None:
        if path:
            self._export(Path(path).expanduser(), self.flt)

    @work(thread=True, exclusive=True, exit_on_error=False, group="export")
    def _export(self, path: Path, flt: AuditFilter) -> None:
        from shipdeck.core.services.audit_log import export_to_file

        fmt = "csv" if path.suffix.lower() == ".csv" else "jsonl"
        count = export_to_file(self.ctx, fmt, path, flt)
        self.post_message(ExportFinished(str(path), count))

    @on(ExportFinished)
    def _exported(self, message: ExportFinished) -> None:
        self.notify(
            f"exported {message.count:,} events to {message.path}", title="export", markup=False
        )

    def action_checkpoint(self) -> None:
        default = self.ctx.state_dir / "checkpoints.jsonl"
        self.app.push_screen(
            PromptScreen(
                "Write the chain head (a checkpoint) to",
                str(default),
                "a file path or s3://bucket/key",
            ),
            self._checkpoint_to,
        )

    def _checkpoint_to(self, location: str | None) -> None:
        if location:
            self._checkpoint(location)

    @work(thread=True, exclusive=True, exit_on_error=False, group="checkpoint")
    def _checkpoint(self, location: str) -> None:
        from shipdeck.core.services.audit_log import checkpoint

        cp = checkpoint(self.ctx, location)
        self.post_message(CheckpointWritten(cp.seq, cp.hash, location))

    @on(CheckpointWritten)
    def _checkpointed(self, message: CheckpointWritten) -> None:
        self.notify(
            f"checkpoint {message.seq} {message.digest[:12]} written to {message.location}",
            title="checkpoint",
            markup=False,
        )
