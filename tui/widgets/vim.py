"""Lists, tables and logs that answer to vim keys as well as arrows (no mouse needed).

The built-in widgets bind arrows, Home/End and PageUp/PageDown; these add j/k, g/G and
Ctrl-F/Ctrl-B so every list in the shipping screens moves the same way as the dashboard.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.widgets import DataTable, OptionList, RichLog


class VimTable(DataTable[Text]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
        Binding("g", "scroll_top", "Top", show=False),
        Binding("G", "scroll_bottom", "Bottom", show=False),
        Binding("ctrl+f", "page_down", "Page down", show=False),
        Binding("ctrl+b", "page_up", "Page up", show=False),
    ]


class VimOptionList(OptionList):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
        Binding("g", "first", "First", show=False),
        Binding("G", "last", "Last", show=False),
    ]


class VimLog(RichLog, can_focus=True):
    """A streaming log of rich Text lines (never markup: remote text shows verbatim)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j", "scroll_down", "Down", show=False),
        Binding("k", "scroll_up", "Up", show=False),
        Binding("g", "scroll_home", "Top", show=False),
        Binding("G", "scroll_end", "Bottom", show=False),
        Binding("ctrl+f", "page_down", "Page down", show=False),
        Binding("ctrl+b", "page_up", "Page up", show=False),
    ]

    def __init__(
        self, *, max_lines: int | None = None, wrap: bool = False, id: str | None = None
    ) -> None:
        super().__init__(
            max_lines=max_lines, wrap=wrap, min_width=20, markup=False, highlight=False, id=id
        )

    def add(self, line: Text) -> None:
        """Write one line at the log's own width: wrapped to it, or whole (scroll sideways).

        RichLog would measure against the console, whose width need not be the widget's."""
        room = self.scrollable_content_region.width
        if not room:
            self.write(line)
        else:
            self.write(line, width=room if self.wrap else max(room, line.cell_len))
