"""The dashboard matrix: apps down, environments across, one compact cell per deployment.

A cell reads left to right: deployed version, live colour, age, commits behind the latest release
(✓ when current, … while git counts them, ? when it cannot), Δ when artifacts or config differ
from the latest, and the state word (live, last run ✗, running, canary N%, locked, failed, drift:
core.services.status.MARKS decides which).

The matrix is a Line-API view (a ScrollView, as the audit log is): it draws the rows on screen
straight from each cell's pieces, and looks and moves as the DataTable it replaces did (a header,
the app column fixed while the rest scrolls, zebra rows, a cell cursor, the same keys, its
component styles). DataTable filled, measured and rendered every cell through Rich: at a thousand
apps filling and measuring it was ~45 ms of the first frame, and drawing its first screen ~30 ms
at any size (bench/tui_start.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import ClassVar

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.color import Color
from textual.coordinate import Coordinate
from textual.geometry import Region, Size, Spacing, clamp
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from shipdeck.core.domain.redact import strip_controls
from shipdeck.core.services.status import AppStatus, Cell

COLOR_STYLE = {"blue": "bold dodger_blue1", "green": "bold green3"}


def age(delta: timedelta) -> str:
    """Largest unit only: 45s, 12m, 5h, 3d, 7w."""
    seconds = max(int(delta.total_seconds()), 0)
    for unit, size in (("w", 7 * 86400), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


# How each core mark (core.services.status.MARKS) reads in a cell: its word and style.
MARK_WORD: dict[str, tuple[str, str]] = {
    "drift": ("drift", "bold white on red"),
    "canary": ("canary", "bold magenta"),
    "running": ("running", "bold cyan"),
    "locked": ("locked", "bold yellow"),
    "last_failed": ("last run ✗", "yellow"),
    "failed": ("failed", "bold red"),
    "live": ("live", "dim"),
    "none": ("", ""),
}


def cell_state(cell: Cell) -> tuple[str, str]:
    """The one word that matters most for this cell (the core decides which), and its style;
    a canary's word carries its share of traffic."""
    word, style = MARK_WORD[cell.mark]
    if cell.mark == "canary":
        word = f"canary {cell.canary_weight}%"
    return word, style


def cell_parts(cell: Cell, now: datetime, version_width: int = 8) -> list[tuple[str, str]]:
    """What a cell reads, as (piece, style) from left to right."""
    d = cell.deployed
    word, style = cell_state(cell)
    if d is None:
        parts = [("—", "dim")]
        if cell.latest is not None:
            parts.append((f" latest {strip_controls(cell.latest.version)}", "dim"))
        if word:
            parts.append((f" {word}", style))
        return parts
    parts = [
        (f"{strip_controls(d.version):<{version_width}}", "bold"),
        (f" {d.color or '-':<5}", COLOR_STYLE.get(d.color or "", "dim")),
        (f" {age(now - d.at):>3} ", "dim"),
    ]
    behind = cell.commits_behind
    if cell.latest is not None and cell.latest.digest == d.digest:
        parts.append(("✓  ", "green"))
    elif behind is None:
        parts.append(("…  " if cell.counting else "?  ", "dim"))  # being counted / unknown
    else:
        parts.append((f"↓{behind:<2}", "yellow"))
    parts.append(("Δ" if cell.artifacts or cell.config else " ", "bold magenta"))
    parts.append((f" {word}", style))
    return parts


@dataclass(frozen=True)
class MatrixCell:
    """What a cell shows: its pieces (text, style) left to right, and their width in cells."""

    parts: tuple[tuple[str, str], ...]
    cell_len: int

    @property
    def plain(self) -> str:
        return "".join(piece for piece, _ in self.parts)


EMPTY = MatrixCell((), 0)  # an environment the app has no cell in


def name_cell(app: str) -> MatrixCell:
    name = strip_controls(app)
    return MatrixCell(((name, "bold"),), cell_len(name))


def status_cell(cell: Cell, now: datetime, version_width: int) -> MatrixCell:
    parts = tuple(cell_parts(cell, now, version_width))
    return MatrixCell(parts, cell_len("".join(piece for piece, _ in parts)))


@dataclass(frozen=True)
class MatrixRows:
    """What the matrix shows: these apps, with ages counted from `now`."""

    apps: tuple[AppStatus, ...]
    now: datetime


PADDING = 1  # blank cells on each side of a cell's text, as DataTable's cell_padding
HEADER = -1  # the row index of the header, as DataTable numbers it


class StatusMatrix(ScrollView, can_focus=True):
    """Cursor over cells; arrows and hjkl move it, Enter opens the app under it.

    Attributes down: the screen binds its `matrix_rows` here (data_bind), and this widget draws them
    itself once mounted. Nobody calls into it with data, so a status result that arrives before
    the widget is ready (a busy machine) is drawn at full width, not into a table without columns.

    Column widths come from the cells (and never shrink, so columns do not jump while a filter is
    typed): the first frame with data already has its final widths.
    """

    ALLOW_SELECT = False  # a click moves the cursor; it selects no text
    # DataTable's component classes and their rules (textual 8.2.8), under this widget's names.
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "matrix--header",
        "matrix--header-hover",
        "matrix--fixed",
        "matrix--even-row",
        "matrix--odd-row",
        "matrix--cursor",
        "matrix--fixed-cursor",
        "matrix--hover",
    }
    DEFAULT_CSS = """
    StatusMatrix {
        background: $surface;
        color: $foreground;
        height: auto;
        max-height: 100%;
        &:focus {
            background-tint: $foreground 5%;
            & > .matrix--cursor {
                background: $block-cursor-background;
                color: $block-cursor-foreground;
                text-style: $block-cursor-text-style;
            }
            & > .matrix--header {
                background-tint: $foreground 5%;
            }
            & > .matrix--fixed-cursor {
                color: $block-cursor-foreground;
                background: $block-cursor-background;
            }
        }
        &:dark {
            & > .matrix--even-row {
                background: $surface-darken-1 40%;
            }
        }
        & > .matrix--header {
            text-style: bold;
            background: $panel;
            color: $foreground;
        }
        &:ansi > .matrix--header {
            background: ansi_bright_blue;
            color: ansi_default;
        }
        & > .matrix--fixed {
            background: $secondary-muted;
            color: $foreground;
        }
        & > .matrix--odd-row {
        }
        & > .matrix--even-row {
            background: $surface-lighten-1 50%;
        }
        & > .matrix--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
        & > .matrix--fixed-cursor {
            background: $block-cursor-blurred-background;
            color: $foreground;
        }
        & > .matrix--header-hover {
            background: $accent 30%;
        }
        & > .matrix--hover {
            background: $block-hover-background;
        }
    }
    """

    # The keys DataTable had, in its order (help lists them so); pageup/pagedown and home/end
    # are the scrolling container's bindings, whose actions move the cursor here.
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select_cursor", "Open app"),
        Binding("up", "cursor_up", "Up", show=False),
        Binding("down", "cursor_down", "Down", show=False),
        Binding("right", "cursor_right", "Right", show=False),
        Binding("left", "cursor_left", "Left", show=False),
        Binding("ctrl+home", "scroll_top", "Top", show=False),
        Binding("ctrl+end", "scroll_bottom", "Bottom", show=False),
        Binding("h", "cursor_left", "Left", show=False),
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
        Binding("l", "cursor_right", "Right", show=False),
        Binding("g", "scroll_top", "Top", show=False),
        Binding("G", "scroll_bottom", "Bottom", show=False),
    ]

    matrix_rows: reactive[MatrixRows | None] = reactive(None, always_update=True, init=False)
    cursor_coordinate: reactive[Coordinate] = reactive(
        Coordinate(0, 0), repaint=False, always_update=True
    )
    hover_coordinate: reactive[Coordinate] = reactive(
        Coordinate(0, 0), repaint=False, always_update=True
    )

    class CellSelected(Message):
        """Enter on a cell, or a click on the cell the cursor is on."""

        def __init__(self, coordinate: Coordinate) -> None:
            super().__init__()
            self.coordinate = coordinate

    def __init__(self, envs: list[str], *, rows: int = 0, **kwargs: object) -> None:
        """`rows`: how many the first data will bring (the workspace's apps). The view has that
        height, its scrollbar included, before the data arrives, so the frame with the data is
        laid out once instead of settling its scrollbar over three more screen updates."""
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.envs = envs
        self.columns = ["app", *envs]
        self._widths = {name: len(name) for name in self.columns}  # never shrink
        self._keys: list[str] = []  # app per row
        self._cells: list[list[MatrixCell]] = []
        self._show_hover = False
        self._parsed: dict[str, Style] = {}
        self._fit(rows)

    # --- data ----------------------------------------------------------------------------------

    @property
    def row_count(self) -> int:
        return len(self._keys)

    def get_cell(self, app: str, column: str) -> MatrixCell:
        """The cell of `app` in `column` ("app" or an environment)."""
        return self._cells[self._keys.index(app)][self.columns.index(column)]

    def column_width(self, column: str) -> int:
        """Room for text in `column`, in cells (its padding aside)."""
        return self._widths[column]

    def watch_matrix_rows(self, rows: MatrixRows | None) -> None:
        # data_bind delivers values only once this widget is mounted.
        if rows is not None:
            self._draw(rows.apps, rows.now)

    def _draw(self, apps: tuple[AppStatus, ...], now: datetime) -> None:
        """Replace the rows, keeping the cursor on the same app and env when it is still shown
        (and, as DataTable did, scrolled back to where the cursor can be seen)."""
        keep = self.current_app()
        column = self.cursor_coordinate.column
        version = max(
            (len(c.deployed.version) for a in apps for c in a.cells if c.deployed), default=5
        )
        self._keys = [a.app for a in apps]
        self._cells = []
        for a in apps:
            by_env = {c.env: c for c in a.cells}
            row = [name_cell(a.app)]
            row += [
                status_cell(by_env[e], now, version) if e in by_env else EMPTY for e in self.envs
            ]
            self._cells.append(row)
        for i, name in enumerate(self.columns):
            need = max((cells[i].cell_len for cells in self._cells), default=0)
            self._widths[name] = max(need, self._widths[name])
        self._fit(len(self._keys))
        self.scroll_to(0, 0, animate=False, immediate=True)
        line = self._keys.index(keep) if keep in self._keys else 0
        self.set_reactive(StatusMatrix.cursor_coordinate, Coordinate(0, 0))
        self.set_reactive(StatusMatrix.hover_coordinate, Coordinate(0, 0))
        self.refresh()
        if self._keys:
            self.move_cursor(row=line, column=column)
            # Once laid out with the new size, as DataTable did after adding rows.
            self.call_after_refresh(self._scroll_cursor_into_view)

    def _fit(self, rows: int) -> None:
        self._render_widths = [self._widths[c] + 2 * PADDING for c in self.columns]
        self.virtual_size = Size(sum(self._render_widths), rows + 1)

    def current_app(self) -> str | None:
        return self._keys[self.cursor_coordinate.row] if self._keys else None

    def current_env(self) -> str | None:
        column = self.cursor_coordinate.column
        return self.envs[column - 1] if 0 < column <= len(self.envs) else None

    # --- the cursor ----------------------------------------------------------------------------

    def validate_cursor_coordinate(self, value: Coordinate) -> Coordinate:
        row = clamp(value.row, 0, self.row_count - 1)
        return Coordinate(max(row, 0), clamp(value.column, 0, len(self.columns) - 1))

    def watch_cursor_coordinate(self, old: Coordinate, new: Coordinate) -> None:
        if old != new:
            self._refresh_row(old.row)
            self._refresh_row(new.row)
            self._scroll_cursor_into_view()

    def watch_hover_coordinate(self, old: Coordinate, new: Coordinate) -> None:
        self._refresh_row(old.row)
        self._refresh_row(new.row)

    def _refresh_row(self, row: int) -> None:
        self.refresh_line(row + 1)

    def move_cursor(self, *, row: int | None = None, column: int | None = None) -> None:
        here = self.cursor_coordinate
        self.cursor_coordinate = Coordinate(
            here.row if row is None else row, here.column if column is None else column
        )

    def _scroll_cursor_into_view(self, animate: bool = False) -> None:
        """The cursor's cell in view, beside the header and the fixed app column."""
        row, column = self.cursor_coordinate
        x = sum(self._render_widths[:column])
        region = Region(x, row + 1, self._render_widths[column], 1)
        spacing = Spacing(1, 0, 0, self._render_widths[0])
        self.scroll_to_region(region, animate=animate, spacing=spacing, force=True)

    def _set_hover(self, active: bool) -> None:
        self._show_hover = active
        self._refresh_row(self.hover_coordinate.row)

    def _page_rows(self) -> int:
        return max(self.scrollable_content_region.height - 1, 1)

    def action_cursor_up(self) -> None:
        self._set_hover(False)
        self.cursor_coordinate = self.cursor_coordinate.up()

    def action_cursor_down(self) -> None:
        self._set_hover(False)
        self.cursor_coordinate = self.cursor_coordinate.down()

    def action_cursor_left(self) -> None:
        self._set_hover(False)
        self.cursor_coordinate = self.cursor_coordinate.left()
        self._scroll_cursor_into_view(animate=True)

    def action_cursor_right(self) -> None:
        self._set_hover(False)
        self.cursor_coordinate = self.cursor_coordinate.right()
        self._scroll_cursor_into_view(animate=True)

    def action_page_down(self) -> None:
        self._set_hover(False)
        height = self._page_rows()
        self.scroll_relative(y=height, animate=False, force=True)
        self.move_cursor(row=self.cursor_coordinate.row + height)

    def action_page_up(self) -> None:
        self._set_hover(False)
        height = self._page_rows()
        self.scroll_relative(y=-height, animate=False)
        self.move_cursor(row=self.cursor_coordinate.row - height)

    def action_scroll_top(self) -> None:
        self._set_hover(False)
        self.move_cursor(row=0)

    def action_scroll_bottom(self) -> None:
        self._set_hover(False)
        self.move_cursor(row=self.row_count - 1)

    def action_scroll_home(self) -> None:
        self._set_hover(False)
        self.move_cursor(column=0)

    def action_scroll_end(self) -> None:
        self._set_hover(False)
        self.move_cursor(column=len(self.columns) - 1)

    def action_select_cursor(self) -> None:
        self._set_hover(False)
        if self._keys:
            self.post_message(self.CellSelected(self.cursor_coordinate))

    # --- the mouse -----------------------------------------------------------------------------

    def _on_mouse_move(self, event: events.MouseMove) -> None:
        meta = event.style.meta
        if "row" not in meta or meta.get("out_of_bounds", False):
            self._set_hover(False)
            return
        self._set_hover(True)
        self.hover_coordinate = Coordinate(meta["row"], meta["column"])

    def _on_leave(self, _: events.Leave) -> None:
        self._set_hover(False)

    async def _on_click(self, event: events.Click) -> None:
        self._set_hover(True)
        meta = event.style.meta
        if "row" not in meta or meta.get("out_of_bounds", False) or meta["row"] == HEADER:
            return
        clicked = Coordinate(meta["row"], meta["column"])
        again = clicked == self.cursor_coordinate
        self.cursor_coordinate = clicked
        if again:
            self.post_message(self.CellSelected(clicked))
        self._scroll_cursor_into_view(animate=True)
        event.stop()

    # --- drawing -------------------------------------------------------------------------------

    def notify_style_update(self) -> None:
        self._parsed.clear()
        super().notify_style_update()

    def _style(self, text: str) -> Style:
        """A piece's style, parsed once."""
        style = self._parsed.get(text)
        if style is None:
            style = self._parsed[text] = Style.parse(text)
        return style

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        scroll_x, scroll_y = self.scroll_offset
        row = HEADER if y == 0 else y - 1 + scroll_y
        if row >= self.row_count:
            return Strip.blank(width, self.rich_style)
        component = self.get_component_rich_style
        header = component("matrix--header")
        if row == HEADER:
            fixed_style = row_style = header
        else:
            fixed_style = component("matrix--fixed") + Style.from_meta({"fixed": True})
            row_style = component("matrix--odd-row" if row % 2 else "matrix--even-row")
        segments = self._cell(row, 0, fixed_style)
        scrollable = [s for c in range(1, len(self.columns)) for s in self._cell(row, c, row_style)]
        remaining = max(0, width - sum(self._render_widths[1:]))
        scrollable.append(Segment(" " * remaining, self._extend_style(row, row_style)))
        fixed_width = self._render_widths[0]
        segments += Strip(scrollable).crop(scroll_x, scroll_x + width - fixed_width)
        return Strip(segments).adjust_cell_length(width, self.rich_style).simplify()

    def _extend_style(self, row: int, row_style: Style) -> Style:
        """Right of the last column: the row's colour, faded (DataTable's rule)."""
        if row_style.bgcolor is not None:
            faded = Color.from_rich_color(row_style.bgcolor).blend(
                self.background_colors[1], factor=0.25
            )
            style = Style.from_color(color=row_style.color, bgcolor=faded.rich_color)
        else:
            style = Style.from_color(row_style.color, row_style.bgcolor)
        return style + Style.from_meta({"row": row, "column": 0, "out_of_bounds": True})

    def _cell(self, row: int, column: int, base: Style) -> list[Segment]:
        """One cell's segments: its pieces between padding, under the row's style and, where the
        cursor or the mouse is, theirs (the cursor's colour over the pieces' own, as DataTable)."""
        base += Style.from_meta({"row": row, "column": column})
        component = self.get_component_rich_style
        extra = Style()
        if self._show_hover and self.hover_coordinate == (row, column):
            extra += component("matrix--hover")
            if row == HEADER:
                extra += component("matrix--header-hover")
        if self.cursor_coordinate == (row, column):
            extra += component("matrix--cursor")
            if column == 0:
                extra += component("matrix--fixed-cursor")
        pre = base + extra
        post = Style.from_color(color=extra.color)
        if row == HEADER:
            parts: tuple[tuple[str, str], ...] = ((self.columns[column], ""),)
        else:
            parts = self._cells[row][column].parts
        fill = self._widths[self.columns[column]] + PADDING - sum(cell_len(p) for p, _ in parts)
        pieces = [(" " * PADDING, pre), *((p, pre + self._style(s)) for p, s in parts)]
        pieces.append((" " * fill, pre))
        return [Segment(text, style + post if post else style) for text, style in pieces]
