"""`?`: every key the screen underneath answers to, read from its live bindings.

Built from the screen's live bindings (tui.widgets.keys), so it can never drift from what the keys
do; actions refused to this person are listed disabled, with the reason.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

from shipdeck.tui.widgets.keys import screen_actions


def key_rows(screen: Screen[Any]) -> dict[str, list[tuple[str, Text]]]:
    """Keys per action, grouped into this screen's and the app-wide ones: 'k / up: Cursor up';
    an action refused to this person reads 'disabled: why'."""
    groups: dict[str, list[tuple[str, Text]]] = {"here": [], "everywhere": []}
    for a in screen_actions(screen):
        does = Text(a.description)
        if a.refused:
            does = Text(f"{a.description} (disabled: {a.refused})", style="dim")
        groups["everywhere" if a.app_wide else "here"].append((" / ".join(a.keys), does))
    return groups


class HelpScreen(ModalScreen[None]):
    CSS_PATH = "sections.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "dismiss", "Close", key_display="esc"),
        Binding("j,down", "scroll('down')", "Down", show=False),
        Binding("k,up", "scroll('up')", "Up", show=False),
    ]

    def __init__(self, under: Screen[Any]) -> None:
        super().__init__()
        self.under = under

    def compose(self) -> ComposeResult:
        title = getattr(self.under, "TITLE", None) or type(self.under).__name__
        with VerticalScroll(id="help-body"):
            for group, rows in key_rows(self.under).items():
                table = Table(box=None, show_header=False, pad_edge=False)
                table.add_column("key", style="bold cyan", no_wrap=True, width=18)
                table.add_column("does")
                for keys, description in rows:
                    table.add_row(Text(keys), description)
                heading = f"Keys: {title}" if group == "here" else "Everywhere"
                yield Static(Text(heading, style="bold"), classes="help-heading")
                yield Static(table)
            yield Static(Text("esc, q or ? closes this", style="dim"), classes="help-heading")

    def action_scroll(self, direction: str) -> None:
        body = self.query_one("#help-body", VerticalScroll)
        if direction == "down":
            body.scroll_down()
        else:
            body.scroll_up()
