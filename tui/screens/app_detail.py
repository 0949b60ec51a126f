"""One app: its releases and where each is live, and what each environment lacks of the latest.

Commit subjects, authors and notes come from repositories and people: they are shown as
rich Text after strip_controls, never interpreted as markup.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, Footer, Static

from shipdeck.core.domain.redact import strip_controls
from shipdeck.core.services.views import AppView, EnvDiff
from shipdeck.tui.messages import AppViewLoaded
from shipdeck.tui.screens.base import ShipdeckScreen
from shipdeck.tui.widgets.header import HeaderBar
from shipdeck.tui.widgets.matrix import COLOR_STYLE, age
from shipdeck.tui.widgets.scroll import VimScroll
from shipdeck.tui.widgets.tables import replace_rows

NOTES_WIDTH = 30
RELEASE_COLUMNS = ("version", "commit", "created", "by", "live in", "notes")


def _safe(value: object) -> str:
    return strip_controls(str(value))


def env_section(diff: EnvDiff, now: datetime) -> Text:
    """One environment against the latest release, as lines of plain text with styles."""
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(f"{diff.env}  ", style="bold underline")
    deployed, live, latest = diff.deployed, diff.live, diff.latest
    if deployed is None or live is None:
        text.append("not deployed", style="dim")
        if latest is not None:
            text.append(f"  (latest release {_safe(latest.version)})", style="dim")
        return text
    text.append(_safe(deployed.version), style="bold")
    text.append(f"  {live.color or '-'}", style=COLOR_STYLE.get(live.color or "", ""))
    text.append(f"  {age(now - live.at)} ago by {_safe(live.by)}", style="dim")
    if diff.diff is None:
        text.append("  = latest release", style="green")
        return text
    d = diff.diff
    count = len(d.commits) + diff.more_commits
    text.append(f"  → latest {_safe(d.new.version)}: ", style="")
    text.append(f"{count} commit{'s' if count != 1 else ''} behind", style="yellow")
    for c in d.commits:
        text.append("\n  ")
        text.append(c.sha[:7], style="cyan")
        text.append(f"  {c.date:%Y-%m-%d %H:%M}  ", style="dim")
        text.append(f"{_safe(c.author)[:16]:<16}", style="bold")
        text.append(f"  {_safe(c.subject)}")
    if diff.more_commits:
        text.append(f"\n  … and {diff.more_commits} older commits", style="dim")
    for a in d.artifacts:
        text.append("\n  artifact ", style="magenta")
        text.append(_safe(a.summary))
    for cfg in d.config:
        text.append("\n  config ", style="magenta")
        text.append(f"{_safe(cfg.key)}: {_safe(cfg.old)} → {_safe(cfg.new)}")
    if not (d.artifacts or d.config):
        text.append("\n  no artifact or config changes", style="dim")
    return text


class AppScreen(ShipdeckScreen):
    TITLE = "App"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "refresh", "Refresh"),
        Binding("tab", "switch_pane", "Releases/diff", show=False),
        Binding("escape", "app.go_back", "Back", show=False),
    ]

    def __init__(self, app_name: str, env: str | None = None) -> None:
        super().__init__()
        self.app_name = app_name
        self.env = env
        self._widths: dict[str, int] = {}

    def compose(self) -> ComposeResult:
        yield HeaderBar(self.ctx, f"App {self.app_name}")
        yield Static("loading…", id="app-info")
        table: DataTable[Text] = DataTable(id="releases", cursor_type="row", zebra_stripes=True)
        yield table
        with VimScroll(id="diffs", can_focus=True):
            yield Static(id="diff-text")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#releases", DataTable)
        replace_rows(table, RELEASE_COLUMNS, [], self._widths)
        table.focus()
        self.reload()

    def reload(self) -> None:
        self._load()

    @work(thread=True, exclusive=True, exit_on_error=False, group="app")
    def _load(self) -> None:
        from shipdeck.core.services.audit_log import head
        from shipdeck.core.services.views import app_view

        seq, _ = head(self.ctx)
        self.post_message(AppViewLoaded(app_view(self.ctx, self.app_name), seq))

    @on(AppViewLoaded)
    def _loaded(self, message: AppViewLoaded) -> None:
        self._show(message.view)
        self.mark_loaded(message.head_seq)

    def _show(self, view: AppView) -> None:
        spec = view.app
        info = Text(no_wrap=True, overflow="ellipsis")
        info.append(spec.name, style="bold")
        if spec.owner:
            info.append(f"  owner {_safe(spec.owner)}")
        if spec.oncall:
            info.append(f"  on-call {_safe(spec.oncall)}")
        if spec.depends_on:
            info.append(f"  depends on {', '.join(spec.depends_on)}", style="dim")
        info.append(f"  {len(view.releases)} releases", style="dim")
        self.query_one("#app-info", Static).update(info)

        table = self.query_one("#releases", DataTable)
        row = table.cursor_row
        rows: list[tuple[str | None, list[Text]]] = []
        for r in view.releases:
            rec = r.record
            live = Text()
            for i, lv in enumerate(r.live):
                if i:
                    live.append(" ")
                live.append(lv.env, style=COLOR_STYLE.get(lv.color or "", "bold"))
            notes = _safe(rec.notes).replace("\n", " ")
            cells = [
                Text(_safe(rec.version), style="bold"),
                Text(rec.commit[:7], style="cyan"),
                Text(f"{rec.created_at:%m-%d %H:%M}"),
                Text(_safe(rec.created_by)),
                live,
                Text(notes[:NOTES_WIDTH] + ("…" if len(notes) > NOTES_WIDTH else "")),
            ]
            rows.append((None, cells))
        replace_rows(table, RELEASE_COLUMNS, rows, self._widths)
        if view.releases:
            table.move_cursor(row=min(row, len(view.releases) - 1), animate=False)

        envs = sorted(view.envs, key=lambda e: e.env != self.env)  # the one asked about first
        body = Text("\n\n", no_wrap=True, overflow="ellipsis").join(
            env_section(e, self.ctx.now()) for e in envs
        )
        if not view.releases:
            body = Text(
                f"no releases yet: shipdeck release create {spec.name} VERSION", style="dim"
            )
        self.query_one("#diff-text", Static).update(body)

    def action_refresh(self) -> None:
        self.reload()

    def action_switch_pane(self) -> None:
        table = self.query_one("#releases", DataTable)
        if table.has_focus:
            self.focus_now(self.query_one("#diffs", VimScroll))
        else:
            self.focus_now(table)
