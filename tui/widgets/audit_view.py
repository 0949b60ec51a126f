"""A virtual view over the whole audit log: only the rows on screen (plus a margin) are ever read.

`AuditSource` maps view rows to events in a worker thread. Unfiltered, the log is gapless, so row r
is simply event `top_seq - r` and a page is one primary-key range. Filtered, rows are counted once
(up to `top_seq`, so new events never shift them) and paged by keyset from the nearest row already
seen; a far jump (scrollbar, `G`) starts from an OFFSET lookup of one sequence number or from the
oldest end. `AuditView` is a Line-API ScrollView: `render_line` draws a row from the cache or a
placeholder, and asks for missing rows only when the visible range moves.
"""

from __future__ import annotations

import json
import threading
from typing import ClassVar

from rich.cells import set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import on, work
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from shipdeck.core.domain.redact import strip_controls
from shipdeck.core.services.audit_log import AuditFilter, Event
from shipdeck.core.services.context import Context
from shipdeck.tui.messages import AuditRowsLoaded, AuditShape, AuditShapeLoaded

# A row already seen may anchor a keyset page this many rows below it; further away, one OFFSET
# lookup is cheaper than walking.
ANCHOR_REACH = 2_000
# Cached rows kept around the visible part; the rest is dropped (memory stays flat at 1M events).
CACHE_ROWS = 20_000


class AuditSource:
    """Row -> event for one filter, by keyset. Called from worker threads only."""

    def __init__(self, ctx: Context, flt: AuditFilter) -> None:
        self.ctx = ctx
        self.flt = flt
        self.filtered = flt != AuditFilter()
        self._anchors: dict[int, int] = {}  # row -> seq of rows fetched so far
        self._lock = threading.Lock()

    def measure(self) -> AuditShape:
        from shipdeck.core.services.chain_head import head
        from shipdeck.core.services.views import count_up_to

        top, _ = head(self.ctx)
        total = count_up_to(self.ctx, self.flt, top) if self.filtered else top
        return AuditShape(total, top, self.filtered)

    def window(self, shape: AuditShape, first: int, count: int) -> dict[int, Event]:
        from shipdeck.core.services.audit_log import list_events
        from shipdeck.core.services.views import seq_at_offset

        first = max(0, min(first, shape.total - 1))
        count = max(1, min(count, shape.total - first))
        if shape.total == 0:
            return {}
        if not shape.filtered:
            events = list_events(self.ctx, self.flt, limit=count, before=shape.top_seq - first + 1)
            return {shape.top_seq - e.seq: e for e in events}
        rows: dict[int, Event]
        if first + count >= shape.total:  # the oldest end: page up from the first event
            n = shape.total - first
            events = list_events(self.ctx, self.flt, limit=n, after=0, ascending=True)
            rows = {shape.total - 1 - i: e for i, e in enumerate(events)}
        else:
            start, before = self._start(shape, first)
            if before is None:
                seq = seq_at_offset(self.ctx, self.flt, first, shape.top_seq)
                before = None if seq is None else seq + 1
                start = first
            if before is None:
                return {}
            events = list_events(self.ctx, self.flt, limit=first - start + count, before=before)
            rows = {start + i: e for i, e in enumerate(events)}
        with self._lock:
            if len(self._anchors) > CACHE_ROWS:
                self._anchors.clear()
            self._anchors.update({r: e.seq for r, e in rows.items()})
        return rows

    def _start(self, shape: AuditShape, first: int) -> tuple[int, int | None]:
        """Where a keyset page covering `first` can start: (row, before-seq) or (first, None)."""
        if first == 0:
            return 0, shape.top_seq + 1
        with self._lock:
            near = [r for r in self._anchors if first - ANCHOR_REACH <= r < first]
            if near:
                row = max(near)
                return row + 1, self._anchors[row]
        return first, None


def summary(payload: dict[str, object]) -> str:
    """Compact one-line payload: key=value pairs, JSON for nested values."""
    parts = []
    for key in sorted(payload):
        value = payload[key]
        shown = (
            value
            if isinstance(value, str)
            else json.dumps(value, ensure_ascii=False, sort_keys=True)
        )
        parts.append(f"{key}={shown}")
    return strip_controls(" ".join(parts)).replace("\n", " ").replace("\t", " ")


class AuditView(ScrollView, can_focus=True):
    """The log, newest first, with a sticky column header and a cursor row."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "audit-view--header",
        "audit-view--cursor",
        "audit-view--pending",
        "audit-view--missing",
        "audit-view--kind",
        "audit-view--actor",
        "audit-view--dim",
    }
    DEFAULT_CSS = """
    AuditView { background: $surface; overflow-x: hidden; }
    AuditView > .audit-view--header { text-style: bold; background: $panel; }
    AuditView > .audit-view--cursor { background: $block-cursor-blurred-background; }
    AuditView:focus > .audit-view--cursor { background: $block-cursor-background; color: $block-cursor-foreground; }
    AuditView > .audit-view--pending { color: $text-muted; }
    AuditView > .audit-view--missing { color: $error; text-style: bold; }
    AuditView > .audit-view--kind { color: $accent; }
    AuditView > .audit-view--actor { text-style: bold; }
    AuditView > .audit-view--dim { color: $text-muted; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j,down", "move(1)", "Down", show=False),
        Binding("k,up", "move(-1)", "Up", show=False),
        Binding("pagedown,ctrl+f,space", "page(1)", "Page down", show=False),
        Binding("pageup,ctrl+b", "page(-1)", "Page up", show=False),
        Binding("g,home", "first", "Newest", show=False),
        Binding("G,end", "last", "Oldest", show=False),
    ]

    cursor: reactive[int] = reactive(0, init=False, repaint=False)

    class Highlighted(Message):
        """The cursor is on this event (None while its row is still being read)."""

        def __init__(self, event: Event | None, row: int) -> None:
            super().__init__()
            self.event = event
            self.row = row

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.source: AuditSource | None = None
        self.shape = AuditShape(0, 0, False)
        self.rows: dict[int, Event] = {}
        self.missing: set[int] = set()  # unfiltered rows whose event is gone (a deletion)
        self.generation = 0
        self._styles: dict[str, Style] = {}
        self._pending: tuple[int, int] | None = None
        self._keep_position = False

    # --- loading -------------------------------------------------------------------------------

    def load(self, source: AuditSource, keep_position: bool = False) -> None:
        """Show `source` (a new filter, or the same one after the log grew)."""
        self.generation += 1
        self.source = source
        self._keep_position = keep_position
        self._measure(self.generation, source)

    @work(thread=True, exclusive=True, exit_on_error=False, group="audit-shape")
    def _measure(self, generation: int, source: AuditSource) -> None:
        self.post_message(AuditShapeLoaded(generation, source.measure()))

    @on(AuditShapeLoaded)
    def _shape_loaded(self, message: AuditShapeLoaded) -> None:
        if message.generation != self.generation:
            message.stop()
            return
        old, new = self.shape, message.shape
        self.shape = new
        self.rows = {}
        self.missing = set()
        self._pending = None
        cursor, scroll = 0, 0.0
        if self._keep_position and self.cursor > 0:
            shift = new.total - old.total  # new events arrive on top; stay on the same event
            cursor, scroll = self.cursor + shift, self.scroll_y + shift
        self.virtual_size = Size(self.size.width, new.total + 1)
        self.set_reactive(AuditView.cursor, max(0, min(cursor, new.total - 1)))
        self.scroll_to(y=scroll, animate=False, immediate=True)
        self.refresh()
        self._ensure_rows()
        self.post_message(self.Highlighted(None, self.cursor))

    def _ensure_rows(self) -> None:
        """Fetch the visible rows plus a margin when some are missing (and not already asked)."""
        if self.source is None or self.shape.total == 0:
            return
        height = max(self.size.height, 10)
        top = int(self.scroll_y)
        low = max(0, top - height)
        high = min(self.shape.total, top + 2 * height)
        if all(r in self.rows for r in range(low, high)) and self.cursor in self.rows:
            return
        first = max(0, min(top - 2 * height, self.cursor - height))
        last = min(self.shape.total, max(top + 3 * height, self.cursor + height))
        if self._pending is not None and self._pending[0] <= low and high <= self._pending[1]:
            return
        self._pending = (first, last)
        self._fetch(self.generation, self.source, self.shape, first, last - first)

    @work(thread=True, exclusive=True, exit_on_error=False, group="audit-rows")
    def _fetch(
        self, generation: int, source: AuditSource, shape: AuditShape, first: int, count: int
    ) -> None:
        rows = source.window(shape, first, count)
        self.post_message(AuditRowsLoaded(generation, first, count, rows))

    @on(AuditRowsLoaded)
    def _rows_loaded(self, message: AuditRowsLoaded) -> None:
        if message.generation != self.generation:
            message.stop()
            return
        self._pending = None
        if len(self.rows) > CACHE_ROWS:
            top = int(self.scroll_y)
            self.rows = {r: e for r, e in self.rows.items() if abs(r - top) < CACHE_ROWS // 4}
        had_cursor = self.cursor in self.rows
        self.rows.update(message.rows)
        if not self.shape.filtered:
            end = min(message.first + message.count, self.shape.total)
            self.missing.update(r for r in range(message.first, end) if r not in message.rows)
        self.refresh()
        if not had_cursor and self.cursor in self.rows:
            self.post_message(self.Highlighted(self.rows[self.cursor], self.cursor))
        self._ensure_rows()

    # --- movement ------------------------------------------------------------------------------

    @property
    def page_rows(self) -> int:
        return max(self.size.height - 1, 1)

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        self._ensure_rows()

    def watch_cursor(self, old: int, new: int) -> None:
        top = int(self.scroll_y)
        if new < top:
            self.scroll_to(y=new, animate=False, immediate=True)
        elif new >= top + self.page_rows:
            self.scroll_to(y=new - self.page_rows + 1, animate=False, immediate=True)
        self.refresh_lines(old + 1, 1)
        self.refresh_lines(new + 1, 1)
        self.post_message(self.Highlighted(self.rows.get(new), new))
        self._ensure_rows()

    def move_to(self, row: int) -> None:
        if self.shape.total:
            self.cursor = max(0, min(row, self.shape.total - 1))

    def action_move(self, delta: int) -> None:
        self.move_to(self.cursor + delta)

    def action_page(self, direction: int) -> None:
        step = self.page_rows * direction
        self.scroll_to(y=self.scroll_y + step, animate=False, immediate=True)
        self.move_to(self.cursor + step)

    def action_first(self) -> None:
        self.move_to(0)

    def action_last(self) -> None:
        self.move_to(self.shape.total - 1)

    def goto_seq(self, seq: int) -> bool:
        """Put the cursor on event `seq`; only possible unfiltered, where rows are computable."""
        if self.shape.filtered or not 0 < seq <= self.shape.top_seq:
            return False
        self.move_to(self.shape.top_seq - seq)
        return True

    @property
    def current(self) -> Event | None:
        return self.rows.get(self.cursor)

    # --- drawing -------------------------------------------------------------------------------

    def _columns(self, width: int) -> list[tuple[str, int]]:
        """Column widths for this width; the payload summary only when it has room to say much."""
        wide = width >= 110
        seq = max(len(str(self.shape.top_seq)), 3)
        columns = [("seq", seq), ("time (UTC)", 19 if wide else 11), ("actor", 10 if wide else 8)]
        columns += [("kind", 24 if wide else 22), ("subject", 24 if wide else 16)]
        rest = width - sum(w + 1 for _, w in columns) - 1
        if rest >= 12:
            return [*columns, ("detail", rest)]
        name, w = columns[-1]
        return [*columns[:-1], (name, max(w + rest, 1))]

    def _cells(self, ev: Event, width: int) -> list[tuple[str, str]]:
        wide = width >= 110
        subject = "/".join(x for x in (ev.app, ev.env) if x) or (ev.plan or "-")
        return [
            (str(ev.seq), "audit-view--dim"),
            (f"{ev.at:%Y-%m-%d %H:%M:%S}" if wide else f"{ev.at:%m-%d %H:%M}", ""),
            (strip_controls(ev.actor), "audit-view--actor"),
            (strip_controls(ev.kind), "audit-view--kind"),
            (strip_controls(subject), ""),
            (summary(ev.content), "audit-view--dim"),
        ]

    def _style(self, name: str) -> Style:
        style = self._styles.get(name)
        if style is None:
            style = self._styles[name] = self.get_component_rich_style(name, partial=True)
        return style

    def notify_style_update(self) -> None:
        self._styles.clear()
        super().notify_style_update()

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        base = self.rich_style
        columns = self._columns(width)
        if y == 0:
            text = " " + " ".join(set_cell_size(name, w) for name, w in columns)
            return Strip(
                [Segment(set_cell_size(text, width), base + self._style("audit-view--header"))]
            )
        row = int(self.scroll_y) + y - 1
        if row >= self.shape.total:
            return Strip.blank(width, base)
        on_cursor = row == self.cursor
        line = base + self._style("audit-view--cursor") if on_cursor else base
        ev = self.rows.get(row)
        if ev is None:
            if row in self.missing:
                seq = self.shape.top_seq - row
                text, cls = f" {seq}  event {seq} is missing from the log", "audit-view--missing"
            else:
                text, cls = " …", "audit-view--pending"
            return Strip([Segment(set_cell_size(text, width), line + self._style(cls))])
        segments = [Segment(" ", line)]
        for (text, cls), (_, w) in zip(self._cells(ev, width), columns, strict=False):
            style = line if on_cursor or not cls else line + self._style(cls)
            segments.append(Segment(set_cell_size(text, w) + " ", style))
        return Strip(segments).crop_extend(0, width, line)

    def on_resize(self) -> None:
        self.virtual_size = Size(self.size.width, self.shape.total + 1)
        self._ensure_rows()
