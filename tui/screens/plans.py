"""Plans: every plan at a glance (live ones first), with what blocks each one, a key from its detail.

Plans that have not run yet carry the policy verdict (their effective state and blockers), read
through get_plan; finished and running plans need only their summary. The line under the table
explains the highlighted plan: its blockers in sentences, or how it ended.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import DataTable, Input, Static

from shipdeck.core.domain.plan import PRE_RUN
from shipdeck.core.errors import Blocker
from shipdeck.core.services.context import Context
from shipdeck.core.services.plan_history import PlanHistory
from shipdeck.core.services.plans import PlanSummary, QueuedView
from shipdeck.tui.screens.base import ShipdeckScreen
from shipdeck.tui.widgets.footer import KeysFooter
from shipdeck.tui.widgets.header import HeaderBar
from shipdeck.tui.widgets.plan_text import clip, history_lines, safe, state_text, when
from shipdeck.tui.widgets.vim import VimTable

LIMIT = 200
# Live plans first: what is running, then what waits for people, then the record.
ORDER = ("running", "awaiting_approval", "approved", "draft")


@dataclass(frozen=True)
class PlanRow:
    summary: PlanSummary
    state: str  # effective: approvals follow the facts
    items: tuple[str, ...]  # "app version" for plans not run yet, app names otherwise
    blockers: tuple[Blocker, ...]
    history: PlanHistory = field(default_factory=PlanHistory)  # what later plans did since
    queued: QueuedView | None = None  # `plan run --when-open`: waiting for its window


def load_rows(ctx: Context) -> list[PlanRow]:
    """Called in a worker thread."""
    from shipdeck.core.services.plan_history import plan_history
    from shipdeck.core.services.plans import get_plan, list_plans

    rows = []
    summaries = list_plans(ctx, limit=LIMIT)
    history = plan_history(ctx, [s.id for s in summaries if s.state not in PRE_RUN])
    for s in summaries:
        if s.state in PRE_RUN:
            v = get_plan(ctx, s.id)
            items = tuple(f"{i.app} {i.version}" for i in v.items)
            queued = v.queued if v.queued is not None and v.queued.waiting else None
            rows.append(PlanRow(s, v.state, items, v.blockers, queued=queued))
        else:
            h = history.get(s.id, PlanHistory())
            shown = (h.rollback.label,) if h.rollback else s.apps
            rows.append(PlanRow(s, s.state, shown, (), h))
    rank = {state: n for n, state in enumerate(ORDER)}
    return sorted(rows, key=lambda r: rank.get(r.summary.state, len(ORDER)))


def items_cell(row: PlanRow, width: int) -> Text:
    """App and version when they fit, else just the apps; what later plans did, after them."""
    after = " ⏲ queued" if row.queued is not None else ""
    if row.history.superseded:
        rolled = any(x.rolled_back for x in row.history.superseded)
        after = " ↺ rolled back" if rolled else " ⤳ superseded"
    room = max(width - len(after), 8)
    full = ", ".join(safe(i) for i in row.items)
    text = Text(full if len(full) <= room else clip(", ".join(row.summary.apps), room))
    if row.history.rollback and len(full) > room:
        text = Text(clip(full, room))
    text.append(after, style="cyan" if row.queued is not None else "magenta")
    return text


def explain(row: PlanRow) -> Text:
    """The highlighted plan in a few lines: why it cannot run, or how it ended."""
    s = row.summary
    text = Text()
    text.append(f"{s.id}  ", style="bold")
    text.append(safe(s.name))
    text.append(f"  drafted by {safe(s.created_by)} {when(s.created_at)} UTC", style="dim")
    if row.queued is not None:
        text.append("\n⏲ ", style="bold cyan")
        text.append(safe(row.queued.sentence))
    if row.blockers:
        for b in row.blockers:
            text.append("\n✗ ", style="bold red")
            text.append(safe(b.message))
    elif row.state in ("awaiting_approval", "approved"):
        text.append("\n✓ nothing blocks it: open it (Enter) and run it (r)", style="green")
    else:
        text.append_text(history_lines(row.history, s.result))
    return text


class PlanTable(VimTable):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("enter", "select_cursor", "Open plan")]


class PlansScreen(ShipdeckScreen):
    TITLE = "Plans"
    CSS_PATH = "shipping.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("n", "new_plan", "New plan"),
        Binding("w", "watch", "Watch run"),
        Binding("slash", "filter", "Filter", key_display="/"),
        Binding("r", "refresh", "Refresh"),
        Binding("escape", "clear_filter", "Clear filter", show=False),
    ]

    class Loaded(Message):
        def __init__(self, rows: list[PlanRow], head_seq: int) -> None:
            super().__init__()
            self.rows = rows
            self.head_seq = head_seq

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[PlanRow] = []
        self.shown: list[PlanRow] = []

    def compose(self) -> ComposeResult:
        yield HeaderBar(self.ctx, self.TITLE)
        yield Input(placeholder="filter: plan, env, state, app or person", id="plans-filter")
        yield PlanTable(id="plans-table", cursor_type="row", zebra_stripes=True)
        yield Static("loading…", id="plans-why")
        yield KeysFooter()

    def on_mount(self) -> None:
        self.query_one("#plans-filter", Input).display = False
        table = self.query_one(PlanTable)
        table.focus()
        self.reload()

    def reload(self) -> None:
        self._load()

    @work(thread=True, exclusive=True, exit_on_error=False, group="plans")
    def _load(self) -> None:
        from shipdeck.core.services.chain_head import head

        seq, _ = head(self.ctx)
        self.post_message(self.Loaded(load_rows(self.ctx), seq))

    @on(Loaded)
    def _loaded(self, message: Loaded) -> None:
        self.rows = message.rows
        self._show()
        self.mark_loaded(message.head_seq)

    def _matches(self, row: PlanRow, needle: str) -> bool:
        s = row.summary
        hay = " ".join((s.id, s.env, row.state.replace("_", " "), s.name, s.created_by, *row.items))
        if row.history.rollback is not None:
            hay += " rollback " + row.history.rollback.reason
        return needle in hay.lower()

    def _show(self) -> None:
        needle = self.query_one("#plans-filter", Input).value.strip().lower()
        self.shown = [r for r in self.rows if self._matches(r, needle)] if needle else self.rows
        table = self.query_one(PlanTable)
        keep = self.current()
        table.clear(columns=True)  # columns sized afresh: the widest rows may be gone
        for label in ("plan", "env", "state", "blk", "items", "UTC"):
            table.add_column(label, key=label)
        narrow = self.size.width < 100  # the day is enough there; items need the room
        others = [  # the widest cell or header of every other column
            max((len(r.summary.id) for r in self.shown), default=4),
            max((len(r.summary.env) for r in self.shown), default=3),
            max((len(state_text(r.state)) for r in self.shown), default=5),
            max((3 + len(str(len(r.blockers))) for r in self.shown), default=3),
            5 if narrow else 11,
        ]
        # each cell is padded by one column either side; leave room for the scrollbar
        items_width = max(self.size.width - sum(others) - 2 * (len(others) + 1) - 2, 16)
        for r in self.shown:
            s = r.summary
            count = len(r.blockers)
            table.add_row(
                Text(s.id, style="bold"),
                Text(s.env),
                state_text(r.state),
                Text(f"✗ {count}", style="bold red") if count else Text("-", style="dim"),
                items_cell(r, items_width),
                Text(f"{s.created_at:%m-%d}" if narrow else when(s.created_at), style="dim"),
                key=s.id,
            )
        ids = [r.summary.id for r in self.shown]
        if ids:
            table.move_cursor(
                row=ids.index(keep.summary.id) if keep and keep.summary.id in ids else 0
            )
        self._explain()

    def current(self) -> PlanRow | None:
        table = self.query_one(PlanTable)
        if not self.shown or not table.row_count:
            return None
        return self.shown[min(table.cursor_row, len(self.shown) - 1)]

    def _explain(self) -> None:
        why = self.query_one("#plans-why", Static)
        row = self.current()
        if row is not None:
            why.update(explain(row))
        elif self.rows:
            why.update(Text("no plan matches the filter (Esc clears it)", style="dim"))
        else:
            why.update(Text("no plans yet: n drafts one", style="dim"))
        self.refresh_bindings()

    @on(DataTable.RowHighlighted)
    def _highlighted(self) -> None:
        self._explain()

    @on(DataTable.RowSelected)
    def _selected(self) -> None:
        self.action_open()

    def on_resize(self) -> None:
        if self.loaded:
            self._show()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "watch":
            row = self.current() if self.is_mounted else None
            return row is not None and row.state not in PRE_RUN
        return super().check_action(action, parameters)

    def action_open(self) -> None:
        from shipdeck.tui.screens.plan_detail import PlanScreen

        row = self.current()
        if row is not None:
            self.app.push_screen(PlanScreen(row.summary.id))

    def denials(self) -> dict[str, str]:
        why = self.ctx.refusal("plan.create")
        return {"new_plan": why} if why else {}

    def action_new_plan(self) -> None:
        from shipdeck.tui.screens.plan_new import PlanEditScreen

        self.app.push_screen(PlanEditScreen())

    def action_watch(self) -> None:
        from shipdeck.tui.screens.run import RunScreen

        row = self.current()
        if row is not None:
            self.app.push_screen(RunScreen(row.summary.id))

    def action_refresh(self) -> None:
        self.reload()

    def action_filter(self) -> None:
        box = self.query_one("#plans-filter", Input)
        box.display = True
        box.focus()

    def action_clear_filter(self) -> None:
        box = self.query_one("#plans-filter", Input)
        box.value = ""
        box.display = False
        self.query_one(PlanTable).focus()

    @on(Input.Changed, "#plans-filter")
    def _filter_changed(self) -> None:
        self._show()

    @on(Input.Submitted, "#plans-filter")
    def _filter_kept(self) -> None:
        box = self.query_one("#plans-filter", Input)
        box.display = bool(box.value)
        self.query_one(PlanTable).focus()
