"""The dashboard matrix: apps down, environments across, one compact cell per deployment.

A cell reads left to right: deployed version, live colour, age, commits behind the latest release
(✓ when current), Δ when artifacts or config differ from the latest, and the state word
(live, last run ✗, running, canary N%, locked, failed, drift: core.services.status.MARKS
decides which). A couple of hundred rows is well inside what DataTable
draws quickly; the audit log, which is not, has its own Line-API view.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.text import Text
from textual.binding import Binding
from textual.reactive import reactive
from textual.widgets import DataTable

from shipdeck.core.domain.redact import strip_controls
from shipdeck.core.services.status import AppStatus, Cell
from shipdeck.tui.widgets.tables import replace_rows

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
        parts.append(("?  ", "dim"))
    else:
        parts.append((f"↓{behind:<2}", "yellow"))
    parts.append(("Δ" if cell.artifacts or cell.config else " ", "bold magenta"))
    parts.append((f" {word}", style))
    return parts


def cell_text(cell: Cell, now: datetime, version_width: int = 8) -> Text:
    text = Text(no_wrap=True, overflow="ellipsis")
    for piece, style in cell_parts(cell, now, version_width):
        text.append(piece, style=style)
    return text


def name_text(app: str) -> Text:
    return Text(strip_controls(app), style="bold", no_wrap=True, overflow="ellipsis")


@dataclass(frozen=True)
class MatrixCell:
    """A cell whose Text is built when DataTable draws it, i.e. only for rows on screen.

    DataTable measures every cell it is given, and a Text measures itself through the console:
    at 1000 apps, building and measuring 4,000 Texts up front cost the first frame ~60 ms for
    the ~35 rows it shows (bench/tui_start.py). Without `__rich_measure__` DataTable takes the
    column's set width, which replace_rows computes from `cell_len`, known without the Text.
    """

    draw: Callable[[], Text]
    cell_len: int

    @property
    def plain(self) -> str:
        return self.draw().plain

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self.draw()


EMPTY = MatrixCell(Text, 0)  # an environment the app has no cell in


def name_cell(app: str) -> MatrixCell:
    return MatrixCell(partial(name_text, app), cell_len(strip_controls(app)))


def status_cell(cell: Cell, now: datetime, version_width: int) -> MatrixCell:
    plain = "".join(piece for piece, _ in cell_parts(cell, now, version_width))
    return MatrixCell(partial(cell_text, cell, now, version_width), cell_len(plain))


@dataclass(frozen=True)
class MatrixRows:
    """What the matrix shows: these apps, with ages counted from `now`."""

    apps: tuple[AppStatus, ...]
    now: datetime


class StatusMatrix(DataTable[MatrixCell]):
    """Cursor over cells; arrows and hjkl move it, Enter opens the app under it.

    Attributes down: the screen binds its `matrix_rows` here (data_bind), and this widget draws them
    itself once mounted, columns first. Nobody calls into it with data, so a status result that
    arrives before the widget is ready (a busy machine) is drawn at full width, not into a table
    without columns.
    """

    matrix_rows: reactive[MatrixRows | None] = reactive(None, always_update=True, init=False)

    BINDINGS = [
        Binding("enter", "select_cursor", "Open app"),
        Binding("h", "cursor_left", "Left", show=False),
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
        Binding("l", "cursor_right", "Right", show=False),
        Binding("g", "scroll_top", "Top", show=False),
        Binding("G", "scroll_bottom", "Bottom", show=False),
    ]

    def __init__(self, envs: list[str], **kwargs: object) -> None:
        super().__init__(cursor_type="cell", fixed_columns=1, zebra_stripes=True, **kwargs)  # type: ignore[arg-type]
        self.envs = envs
        self._widths: dict[str, int] = {}

    def on_mount(self) -> None:
        replace_rows(self, ["app", *self.envs], [], self._widths)

    def watch_matrix_rows(self, rows: MatrixRows | None) -> None:
        # data_bind delivers values only once this widget is mounted.
        if rows is not None:
            self._draw(rows.apps, rows.now)

    def _draw(self, apps: tuple[AppStatus, ...], now: datetime) -> None:
        """Replace the rows, keeping the cursor on the same app and env when it is still shown."""
        keep = self.current_app()
        column = self.cursor_coordinate.column
        width = max(
            (len(c.deployed.version) for a in apps for c in a.cells if c.deployed), default=5
        )
        rows: list[tuple[str | None, list[MatrixCell]]] = []
        for a in apps:
            by_env = {c.env: c for c in a.cells}
            row = [name_cell(a.app)]
            row += [status_cell(by_env[e], now, width) if e in by_env else EMPTY for e in self.envs]
            rows.append((a.app, row))
        replace_rows(self, ["app", *self.envs], rows, self._widths)
        names = [a.app for a in apps]
        if names:
            line = names.index(keep) if keep in names else 0
            self.move_cursor(row=line, column=column, animate=False)

    def current_app(self) -> str | None:
        if not self.row_count:
            return None
        row_key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        return None if row_key.value is None else str(row_key.value)

    def current_env(self) -> str | None:
        column = self.cursor_coordinate.column
        return self.envs[column - 1] if 0 < column <= len(self.envs) else None
