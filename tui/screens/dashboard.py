"""Home: every app in every environment at a glance, with the windows that govern shipping."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.reactive import reactive
from textual.widgets import Input, Static

from shipdeck.core.services.status import AppStatus
from shipdeck.tui.messages import StatusLoaded
from shipdeck.tui.screens.base import ShipdeckScreen
from shipdeck.tui.widgets.footer import KeysFooter
from shipdeck.tui.widgets.header import HeaderBar, WindowsBar
from shipdeck.tui.widgets.matrix import MARK_WORD, MatrixRows, StatusMatrix


def legend(lead: str, width: int) -> Text:
    """`lead`, then every mark a cell can show, each explained (MARKS says what the core means
    by each), packed into lines of `width` so no entry is split across two."""
    entries = [
        ("✓", "green", "latest"),
        ("↓n", "yellow", "commits behind"),
        ("Δ", "bold magenta", "artifacts/config differ"),
        *((word, style, SHORT[mark]) for mark, (word, style) in MARK_WORD.items() if word),
    ]
    text = Text(lead.rstrip(), no_wrap=True)
    used = len(lead.rstrip())
    for word, style, meaning in entries:
        size = len(word) + 1 + len(meaning)
        if used and used + 2 + size > width:
            text.append("\n")
            used = 0
        elif used:
            text.append("  ")
            used += 2
        text.append(word, style=style)
        text.append(f" {meaning}", style="dim")
        used += size
    return text


# The legend says what the marks mean before there is data to mark, under this lead: the frame
# that brings the data then keeps the note's height, and the layout.
LOADING = "loading…  "

SHORT = {
    "drift": "colour switched by hand",
    "canary": "N% of traffic on the new release",
    "running": "in the running plan",
    "locked": "env locked",
    "last_failed": "live; the last run failed",
    "failed": "nothing live",
    "live": "serving",
}


class DashboardScreen(ShipdeckScreen):
    TITLE = "Dashboard"
    # Focus the matrix from the first frame: the filter box (hidden until '/', in app.tcss) must
    # never hold focus, or keys typed during start-up would vanish into it.
    AUTO_FOCUS = "#matrix"
    BINDINGS: ClassVar[list[BindingType]] = [
        # priority: handled as the key arrives, so what is typed next already lands in the box
        Binding("slash", "filter", "Filter", key_display="/", priority=True),
        Binding("r", "refresh", "Refresh", show=False),  # live refresh does it: room for q and ?
        Binding("n", "new_plan", "New plan"),
        Binding("R", "rollback", "Roll back", key_display="R"),
        Binding("escape", "clear_filter", "Clear filter", show=False),
    ]

    matrix_rows: reactive[MatrixRows | None] = reactive(None, always_update=True, init=False)

    def __init__(self) -> None:
        super().__init__()
        self.apps: list[AppStatus] = []

    def compose(self) -> ComposeResult:
        yield HeaderBar(self.ctx, self.TITLE)
        yield WindowsBar(self.ctx, id="windows")
        yield Input(placeholder="filter apps (Enter to keep, Esc to clear)", id="filter")
        cfg = self.ctx.config
        yield StatusMatrix(cfg.env_order(), rows=len(cfg.apps), id="matrix").data_bind(
            DashboardScreen.matrix_rows
        )
        yield Static(legend(LOADING, self._note_width(self.app.size.width)), id="note")
        yield KeysFooter()

    def on_mount(self) -> None:
        self.reload()

    def reload(self) -> None:
        self._load()

    @work(thread=True, exclusive=True, exit_on_error=False, group="status")
    def _load(self) -> None:
        """What is recorded first; commit counts the cache does not hold yet (a new release)
        are asked of git after that frame, those cells saying they are still counting."""
        from shipdeck.core.services.chain_head import head
        from shipdeck.core.services.status import status

        seq, _ = head(self.ctx)
        apps = status(self.ctx, count_missing=False)
        self.post_message(StatusLoaded(apps, seq))
        if any(c.counting for a in apps for c in a.cells):
            self.post_message(StatusLoaded(status(self.ctx), seq))

    @on(StatusLoaded)
    def _loaded(self, message: StatusLoaded) -> None:
        self.apps = message.apps
        self._show()
        self.mark_loaded(message.head_seq)

    def _show(self) -> None:
        needle = self.query_one("#filter", Input).value.strip().lower()
        shown = [a for a in self.apps if needle in a.app.lower()] if needle else self.apps
        self.matrix_rows = MatrixRows(tuple(shown), self.ctx.now())
        self._note(len(shown), needle)

    @staticmethod
    def _note_width(width: int) -> int:
        return max(width - 2, 40)  # the note's padding

    def _note(self, shown: int, needle: str) -> None:
        note = self.query_one("#note", Static)
        width = self._note_width(self.size.width)
        if self.matrix_rows is None:
            note.update(legend(LOADING, width))
        elif not self.apps:
            note.update("no apps in shipdeck.toml yet: add [apps.NAME] and reload (r)")
        elif needle:
            note.update(legend(f"{shown} of {len(self.apps)} apps match '{needle}'  ", width))
        else:
            note.update(legend(f"{len(self.apps)} apps  ", width))

    def on_resize(self) -> None:
        """The legend is packed to the width: packed again (the matrix resizes by itself)."""
        rows = self.matrix_rows
        needle = self.query_one("#filter", Input).value.strip().lower()
        self._note(len(rows.apps) if rows else 0, needle)

    def denials(self) -> dict[str, str]:
        refused = {
            "new_plan": self.ctx.refusal("plan.create"),
            "rollback": self.ctx.refusal("rollback"),
        }
        return {a: why for a, why in refused.items() if why}

    def action_new_plan(self) -> None:
        from shipdeck.tui.screens.plan_new import PlanEditScreen

        self.app.push_screen(PlanEditScreen(self.query_one(StatusMatrix).current_env()))

    def action_rollback(self) -> None:
        from shipdeck.tui.screens.rollback import offer_rollback

        matrix = self.query_one(StatusMatrix)
        app, env = matrix.current_app(), matrix.current_env()
        if app is None or env is None:
            self.notify("Roll back: move to an app's cell in an environment first", markup=False)
            return
        offer_rollback(self, app, env)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "filter" and self.focused is not None and self.focused.id == "filter":
            return False  # '/' is just a character while typing a filter
        return super().check_action(action, parameters)

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.display = True
        self.focus_now(box)

    def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.value = ""
        box.display = False
        self.focus_now(self.query_one(StatusMatrix))

    def action_refresh(self) -> None:
        self.reload()

    def action_open(self) -> None:
        matrix = self.query_one(StatusMatrix)
        app = matrix.current_app()
        if app is not None:
            self.shipdeck.open_app(app, matrix.current_env())

    @on(Input.Changed, "#filter")
    def _filter_changed(self) -> None:
        self._show()

    @on(Input.Submitted, "#filter")
    def _filter_kept(self) -> None:
        box = self.query_one("#filter", Input)
        box.display = bool(box.value)
        self.focus_now(self.query_one(StatusMatrix))

    @on(StatusMatrix.CellSelected)
    def _cell_selected(self) -> None:
        self.action_open()
