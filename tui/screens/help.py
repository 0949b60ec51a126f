"""`?`: every key the screen underneath answers to, read from its live bindings.

Built from `Screen.active_bindings`, so it can never drift from what the keys do, and actions the
session may not use (hidden by `check_action`) are not listed.
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


def key_rows(screen: Screen[Any]) -> dict[str, list[tuple[str, str]]]:
    """Keys per action, grouped into this screen's and the app-wide ones: 'k / up: Cursor up'."""
    app = screen.app
    groups: dict[str, dict[str, tuple[str, list[str]]]] = {"here": {}, "everywhere": {}}
    for key, active in screen.active_bindings.items():
        binding = active.binding
        if not binding.description or not active.enabled:
            continue
        group = groups["everywhere" if active.node is app else "here"]
        shown = binding.key_display or app.get_key_display(binding) or key
        _, keys = group.setdefault(binding.action, (binding.description, []))
        if shown not in keys:
            keys.append(shown)
    return {
        name: [(" / ".join(keys), description) for description, keys in group.values()]
        for name, group in groups.items()
    }


class HelpScreen(ModalScreen[None]):
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
                    table.add_row(Text(keys), Text(description))
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
