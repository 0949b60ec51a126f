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
from textual.widgets import DataTable, Static

from shipdeck.core.domain.redact import strip_controls
from shipdeck.core.services.views import AppView, EnvDiff
from shipdeck.tui.messages import AppViewLoaded
from shipdeck.tui.screens.base import ShipdeckScreen
from shipdeck.tui.widgets.diff_text import count_words, diff_body
from shipdeck.tui.widgets.footer import KeysFooter
from shipdeck.tui.widgets.header import HeaderBar
from shipdeck.tui.widgets.matrix import COLOR_STYLE, age
from shipdeck.tui.widgets.plan_text import clip_words, when
from shipdeck.tui.widgets.scroll import VimScroll
from shipdeck.tui.widgets.tables import replace_rows
from shipdeck.tui.widgets.vim import VimTable

NOTES_WIDTH = 30
RELEASE_COLUMNS = ("version", "commit", "created UTC", "by", "live in", "notes")


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
    text.append(f"{count_words(count)} behind", style="yellow")
    text.append("\n")
    text.append_text(diff_body(d, more_commits=diff.more_commits))
    return text


class ReleaseTable(VimTable):
    # Enter is what a list does anyway: the footer keeps its room for the release keys and q, ?.
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select_cursor", "Open release", show=False)
    ]


class AppScreen(ShipdeckScreen):
    TITLE = "App"
    CSS_PATH = "sections.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("x", "mark", "Mark"),
        Binding("c", "compare", "Diff"),
        Binding("D", "deploy", "Deploy", key_display="D"),
        Binding("R", "rollback", "Roll back", key_display="R"),
        Binding("r", "refresh", "Refresh", show=False),
        Binding("tab", "switch_pane", "Releases/diff", show=False),
        Binding("escape", "app.go_back", "Back", show=False),
    ]

    def __init__(self, app_name: str, env: str | None = None) -> None:
        super().__init__()
        self.app_name = app_name
        self.env = env
        self.view: AppView | None = None
        self.marked: str | None = None  # a version picked with x, to diff against
        self._widths: dict[str, int] = {}  # the release table's column widths (never shrink)

    def compose(self) -> ComposeResult:
        yield HeaderBar(self.ctx, f"App {self.app_name}")
        yield Static("loading…", id="app-info")
        table = ReleaseTable(id="releases", cursor_type="row", zebra_stripes=True)
        yield table
        with VimScroll(id="diffs", can_focus=True):
            yield Static(id="diff-text")
        yield KeysFooter()

    def on_mount(self) -> None:
        table = self.query_one("#releases", DataTable)
        replace_rows(table, RELEASE_COLUMNS, [], self._widths)
        table.focus()
        self.reload()

    def reload(self) -> None:
        self._load()

    @work(thread=True, exclusive=True, exit_on_error=False, group="app")
    def _load(self) -> None:
        from shipdeck.core.services.chain_head import head
        from shipdeck.core.services.views import app_view

        seq, _ = head(self.ctx)
        self.post_message(AppViewLoaded(app_view(self.ctx, self.app_name), seq))

    @on(AppViewLoaded)
    def _loaded(self, message: AppViewLoaded) -> None:
        self._show(message.view)
        self.mark_loaded(message.head_seq)

    def _show(self, view: AppView) -> None:
        self.view = view
        spec = view.app
        info = Text(no_wrap=True, overflow="ellipsis")
        info.append(spec.name, style="bold")
        if spec.owner:
            info.append(f"  owner {_safe(spec.owner)}")
        if spec.oncall:
            info.append(f"  on-call {_safe(spec.oncall)}")
        if spec.depends_on:
            info.append(f"  depends on {', '.join(spec.depends_on)}", style="dim")
        info.append(f"  {len(view.releases)} releases · times UTC", style="dim")
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
            version = Text(_safe(rec.version), style="bold")
            if rec.version == self.marked:
                version.append(" ×", style="bold magenta")
            cells = [
                version,
                Text(rec.commit[:7], style="cyan"),
                Text(when(rec.created_at)),
                Text(_safe(rec.created_by)),
                live,
                Text(clip_words(notes, NOTES_WIDTH)),
            ]
            rows.append((None, cells))
        # Widths from the cells before any row lands: a frame drawn under load never keeps
        # header-only widths (the dashboard's fix, tui/widgets/tables.py).
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

    # --- releases: detail, diff, deploy; and rollback ------------------------------------------

    def _release(self) -> str | None:
        table = self.query_one("#releases", DataTable)
        if self.view is None or not self.view.releases or not table.has_focus:
            return None
        return self.view.releases[min(table.cursor_row, len(self.view.releases) - 1)].record.version

    def _target_env(self) -> str | None:
        """The environment asked about, else the first this app is deployed in."""
        if self.env is not None:
            return self.env
        view = self.view
        return next((e.env for e in view.envs if e.deployed is not None), None) if view else None

    def denials(self) -> dict[str, str]:
        refused = {"deploy": self.ctx.refusal("deploy"), "rollback": self.ctx.refusal("rollback")}
        return {a: why for a, why in refused.items() if why}

    def action_open_release(self) -> None:
        from shipdeck.tui.screens.release import ReleaseScreen

        version = self._release()
        if version is not None:
            self.app.push_screen(ReleaseScreen(self.app_name, version))

    @on(DataTable.RowSelected, "#releases")
    def _row_selected(self) -> None:
        self.action_open_release()

    def action_mark(self) -> None:
        version = self._release()
        if version is None or self.view is None:
            return
        self.marked = None if self.marked == version else version
        self._show(self.view)
        if self.marked:
            self.notify(f"{version} marked: c on another release diffs them", markup=False)

    def action_compare(self) -> None:
        from shipdeck.tui.screens.release import ReleaseScreen

        version = self._release()
        if version is None:
            return
        if self.marked is None or self.marked == version:
            self.notify("mark a release with x, then press c on another one", markup=False)
            return
        self.app.push_screen(ReleaseScreen(self.app_name, version, against=self.marked))

    def action_deploy(self) -> None:
        from shipdeck.tui.screens.plan_new import PlanEditScreen

        version = self._release()
        if version is not None:
            self.app.push_screen(
                PlanEditScreen(self._target_env(), pick={self.app_name: version}, deploy=True)
            )

    def action_rollback(self) -> None:
        from shipdeck.tui.screens.rollback import offer_rollback

        env = self._target_env()
        if env is None:
            self.notify(f"{self.app_name} is not deployed anywhere: nothing to roll back")
            return
        offer_rollback(self, self.app_name, env)

    def action_switch_pane(self) -> None:
        table = self.query_one("#releases", DataTable)
        if table.has_focus:
            self.focus_now(self.query_one("#diffs", VimScroll))
        else:
            self.focus_now(table)
