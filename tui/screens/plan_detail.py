"""One plan: its waves, what blocks it (each blocker a sentence), the checklist, approvals,
overrides, how its run went, and the actions the person looking at it may take.

Actions are offered only when this person may take them on this plan now (permission, the
environment's roles, the plan's state); the core checks all of it again and its refusal is shown
as a toast, never a traceback. Every change asks first (FormScreen) and runs in a worker thread.
Runs are started exactly as `shipdeck plan run` does: the lease is taken here, then a detached
runner process ships the plan, so closing the console never stops a run half way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import Footer, Static
from textual.widgets.option_list import Option

from shipdeck.core.domain.plan import PRE_RUN
from shipdeck.core.services.actions import PLAN_ACTIONS, open_reviews, plan_actions, shown
from shipdeck.core.services.plan_history import PlanHistory
from shipdeck.core.services.plans import ApprovalView, ChecklistView, OverrideView, PlanView
from shipdeck.tui.screens.base import ShipdeckScreen
from shipdeck.tui.widgets.form import Field, FormScreen, Values
from shipdeck.tui.widgets.header import HeaderBar
from shipdeck.tui.widgets.plan_text import (
    clock,
    elapsed,
    history_lines,
    safe,
    state_label,
    state_text,
    when,
)
from shipdeck.tui.widgets.scroll import VimScroll
from shipdeck.tui.widgets.vim import VimOptionList


def waves_text(view: PlanView) -> Text:
    """Waves top to bottom, each wave's apps side by side: the order the run will follow."""
    versions = {i.app: safe(i.version) for i in view.items}
    text = Text()
    for n, wave in enumerate(view.waves, 1):
        if n > 1:
            text.append("\n↓\n", style="dim")
        text.append(f"{n} ", style="bold cyan")
        for k, app in enumerate(wave):
            if k:
                text.append(" · ", style="dim")
            text.append(app, style="bold")
            text.append(f" {versions.get(app, '?')}")
    return text


def status_text(view: PlanView, zone: str = "UTC", history: PlanHistory | None = None) -> Text:
    """Why it cannot run (one sentence per blocker), that it can, or how the run went."""
    text = Text()
    if view.state in PRE_RUN:
        lines = [Text.assemble(("✗ ", "bold red"), safe(b.message)) for b in view.blockers]
        if view.state == "draft":
            hint = "draft: submit it (S) to ask for approvals, or edit it (e)"
            lines.insert(0, Text(hint, style="bold"))
        elif not view.blockers:
            lines.append(Text("✓ nothing blocks it: it may run now", style="bold green"))
        return Text("\n").join(lines)
    text.append_text(state_text(view.state))
    if view.started_at is not None:
        end = view.finished_at
        took = elapsed(end - view.started_at) if end else ""
        text.append(f"  started {when(view.started_at, zone)}", style="dim")
        if end is not None:
            text.append(f", took {took}", style="dim")
    if view.abort_requested_by:
        text.append(f"\nabort requested by {safe(view.abort_requested_by)}", style="bold yellow")
    if history is not None and (history.rollback or history.superseded):
        text.append_text(history_lines(history, view.result, zone))
        if history.superseded:
            text.append("\no opens the later plan", style="dim italic")
    elif view.result:
        text.append("\n")
        text.append(safe(view.result))
    return text


def approval_line(a: ApprovalView, zone: str = "UTC") -> Text:
    text = Text()
    if a.decision == "reject":
        text.append("✗ ", style="bold red")
        text.append(safe(a.by), style="bold")
        text.append(f" rejected {when(a.at, zone)}", style="dim")
        text.append(f": {safe(a.comment)}")
        return text
    text.append("✓ " if a.current else "~ ", style="bold green" if a.current else "yellow")
    text.append(safe(a.by), style="bold")
    text.append(f" {when(a.at, zone)}", style="dim")
    if a.comment:
        text.append(f"  “{safe(a.comment)}”")
    if not a.current:
        text.append("  stale: the plan changed after this approval", style="yellow")
    return text


def override_line(o: OverrideView, zone: str = "UTC") -> Text:
    text = Text()
    text.append(f"#{o.id} ", style="bold")
    text.append(safe(o.by), style="bold")
    text.append(f" until {when(o.until, zone)}", style="dim")
    text.append("  active" if o.active else "  expired", style="bold yellow" if o.active else "dim")
    if o.acknowledged_by:
        text.append(f"  reviewed by {safe(o.acknowledged_by)}", style="green")
    else:
        text.append("  review open", style="bold magenta")
    text.append(f": {safe(o.reason)}")
    return text


def rows(pairs: list[tuple[str, RenderableType]]) -> Table:
    """Label and content side by side; long sentences wrap under their content, not the label."""
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="dim", no_wrap=True, width=9)
    grid.add_column(ratio=1)
    for label, content in pairs:
        grid.add_row(Text(label), content)
    return grid


def top_part(
    view: PlanView, zone: str = "UTC", history: PlanHistory | None = None
) -> RenderableType:
    window = Text(
        "● " if view.window.open else "○ ", style="green" if view.window.open else "yellow"
    )
    window.append(safe(view.window_text))
    return rows(
        [
            ("waves", waves_text(view)),
            ("window", window),
            ("status", status_text(view, zone, history)),
        ]
    )


def rest_part(
    view: PlanView, zone: str = "UTC", history: PlanHistory | None = None
) -> RenderableType:
    need = view.approvals_required
    rollback = history.rollback if history is not None else None
    if rollback is not None:
        head = Text(safe(rollback.approvals_note), style="dim")
    elif need:
        head = Text(
            f"{need} needed from {' or '.join(view.approval_roles) or 'anyone'}", style="dim"
        )
    else:
        head = Text("none needed", style="dim")
    approvals = Text("\n").join([head, *(approval_line(a, zone) for a in view.approvals)])
    pairs: list[tuple[str, RenderableType]] = [("approvals", approvals)]
    if view.overrides:
        pairs.append(("overrides", Text("\n").join(override_line(o, zone) for o in view.overrides)))
    if view.steps:
        first, last = view.steps[0].at, view.steps[-1].at
        journal = Text(
            f"{len(view.steps)} steps, {clock(first, zone)} to {clock(last, zone)}", style="dim"
        )
        journal.append("  w watches the run", style="")
        pairs.append(("journal", journal))
    return Group(rows(pairs))


def checklist_prompt(c: ChecklistView, zone: str = "UTC") -> Text:
    text = Text(no_wrap=True, overflow="ellipsis")
    if c.done:
        text.append("[x] ", style="bold green")
    elif c.ok is False:
        text.append("[!] ", style="bold red")
    else:
        text.append("[ ] ", style="bold yellow")
    text.append(safe(c.text))
    if c.command:
        text.append(f"  runs {safe(' '.join(c.command))}", style="dim")
    if c.by:
        text.append(
            f"  {'ticked' if c.done else 'failed'} by {safe(c.by)} {when(c.at, zone)}", style="dim"
        )
    return text


class Checklist(VimOptionList):
    """The plan's checklist; space ticks the highlighted item (runs its command, if it has one)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space", "tick", "Tick item", key_display="space"),
    ]

    class Tick(Message):
        def __init__(self, item: str) -> None:
            super().__init__()
            self.item = item

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "tick":
            return self.screen.check_action("tick", ())
        return True

    def action_tick(self) -> None:
        option = self.highlighted_option
        if option is not None and option.id is not None:
            self.post_message(self.Tick(option.id))


class PlanScreen(ShipdeckScreen):
    TITLE = "Plan"
    CSS_PATH = "shipping.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("S", "submit", "Submit", key_display="S"),
        Binding("e", "edit", "Edit"),
        Binding("y", "approve", "Approve"),
        Binding("n", "reject", "Reject"),
        Binding("r", "run", "Run"),
        Binding("w", "watch", "Watch run"),
        Binding("x", "abort", "Abort"),
        Binding("b", "override", "Override"),
        Binding("v", "ack", "Ack override"),
        Binding("o", "open_later", "Open later plan"),
        Binding("escape", "app.go_back", "Back", show=False),
    ]

    class Loaded(Message):
        def __init__(self, view: PlanView, head_seq: int, history: PlanHistory) -> None:
            super().__init__()
            self.view = view
            self.head_seq = head_seq
            self.history = history

    class Done(Message):
        """An action went through: say so, and show the plan as it is now."""

        def __init__(self, note: str, watch: bool = False) -> None:
            super().__init__()
            self.note = note
            self.watch = watch

    def __init__(self, plan_id: str) -> None:
        super().__init__()
        self.plan_id = plan_id
        self.view: PlanView | None = None
        self.actions: dict[str, str | None] = {}  # core.services.actions.plan_actions
        self.history = PlanHistory()  # what later plans did to what this one shipped

    def compose(self) -> ComposeResult:
        yield HeaderBar(self.ctx, f"Plan {self.plan_id}")
        yield Static("loading…", id="plan-summary")
        with VimScroll(id="plan-body", can_focus=True):
            yield Static(id="plan-top")
            yield Static(id="checklist-title")
            yield Checklist(id="plan-checklist")
            yield Static(id="plan-rest")
        yield Footer()

    def on_mount(self) -> None:
        self.reload()

    def reload(self) -> None:
        self._load()

    @work(thread=True, exclusive=True, exit_on_error=False, group="plan")
    def _load(self) -> None:
        from shipdeck.core.services.audit_log import head
        from shipdeck.core.services.plan_history import plan_history
        from shipdeck.core.services.plans import get_plan

        seq, _ = head(self.ctx)
        view = get_plan(self.ctx, self.plan_id)
        history = plan_history(self.ctx, [self.plan_id]).get(self.plan_id, PlanHistory())
        self.post_message(self.Loaded(view, seq, history))

    @on(Loaded)
    def _loaded(self, message: Loaded) -> None:
        first = self.view is None
        self.view = message.view
        self.history = message.history
        self.actions = shown(plan_actions(self.ctx, message.view))
        self._show(message.view)
        self.mark_loaded(message.head_seq)
        self.refresh_bindings()
        if first:
            checklist = self.query_one(Checklist)
            (checklist if checklist.option_count else self.query_one(VimScroll)).focus()

    @property
    def zone(self) -> str:
        """This screen's one zone: the plan's environment's window zone (as its window line)."""
        from shipdeck.core.services.plans import window_tz

        return window_tz(self.ctx, self.view.env) if self.view is not None else "UTC"

    def _show(self, view: PlanView) -> None:
        zone = self.zone
        summary = Text(no_wrap=True, overflow="ellipsis")
        summary.append(f"{view.id}  ", style="bold")
        summary.append(f"{view.env}  ", style="bold")
        summary.append_text(state_text(view.state))
        summary.append(f"  {safe(view.name)}")
        summary.append(
            f"\ndrafted by {safe(view.created_by)} {when(view.created_at, zone)} {zone} (all times)"
            f" · on failure {view.failure_policy} · digest {view.digest.removeprefix('sha256:')[:12]}",
            style="dim",
        )
        self.query_one("#plan-summary", Static).update(summary)
        self.query_one("#plan-top", Static).update(top_part(view, zone, self.history))
        self.query_one("#plan-rest", Static).update(rest_part(view, zone, self.history))
        title = Text("checklist", style="dim")
        if self.history.rollback is not None:
            title.append("  not asked of a rollback (it is how incidents end)", style="dim")
        elif not view.checklist:
            title.append("  none for this plan", style="dim")
        elif self.check_action("tick", ()):
            title.append("  space ticks the highlighted item", style="dim italic")
        self.query_one("#checklist-title", Static).update(title)
        checklist = self.query_one(Checklist)
        at = checklist.highlighted
        checklist.set_options(Option(checklist_prompt(c, zone), id=c.item) for c in view.checklist)
        checklist.display = bool(view.checklist)
        if view.checklist:
            checklist.highlighted = min(at or 0, len(view.checklist) - 1)

    # --- who may do what, now (the core decides: core.services.actions) ---------------------

    def denials(self) -> dict[str, str]:
        return {a: why for a, why in self.actions.items() if why}

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        v = self.view
        if action == "watch":
            return v is not None and (v.state not in PRE_RUN or bool(v.steps))
        if action == "open_later":
            return bool(self.history.superseded)
        if action not in PLAN_ACTIONS:
            return super().check_action(action, parameters)
        return v is not None and action in self.actions and self.actions[action] is None

    # --- actions -----------------------------------------------------------------------------

    def _ask(self, form: FormScreen, then: Callable[[Values], object]) -> None:
        def answered(values: Values | None) -> None:
            if values is not None:
                then(values)

        self.app.push_screen(form, answered)

    def _items_line(self, view: PlanView) -> str:
        return ", ".join(f"{i.app} {safe(i.version)}" for i in view.items)

    def action_approve(self) -> None:
        v = self.view
        assert v is not None
        body = Text(f"{self._items_line(v)} in {v.env}.\n", style="bold")
        body.append(
            f"You approve exactly this plan (digest {v.digest[:19]}): any change to it "
            "voids your approval.",
            style="",
        )
        form = FormScreen(
            f"Approve plan {v.id}?",
            body,
            [Field("comment", "Comment", placeholder="optional: what you checked")],
            confirm="approve",
        )
        self._ask(form, lambda values: self._act("approve", values))

    def action_reject(self) -> None:
        v = self.view
        assert v is not None
        form = FormScreen(
            f"Reject plan {v.id}?",
            Text("A rejected plan stops for good: it is aborted and cannot run."),
            [Field("reason", "Reason", placeholder="why it must not ship", required=True)],
            confirm="reject",
            danger=True,
        )
        self._ask(form, lambda values: self._act("reject", values))

    def action_override(self) -> None:
        from shipdeck.core.domain.windows import parse_duration

        v = self.view
        assert v is not None

        def duration(value: str) -> str | None:
            try:
                parse_duration(value)
            except ValueError as exc:
                return str(exc)
            return None

        body = Text(
            f"Break-glass: {v.env} may ship this plan outside its window or freeze until the "
            "override ends (at most 24h). It is recorded, announced, and stays open for review "
            "until someone else acknowledges it."
        )
        form = FormScreen(
            f"Override for plan {v.id}?",
            body,
            [
                Field("reason", "Reason", placeholder="incident, ticket, who asked", required=True),
                Field("until", "Lasts for", value="1h", required=True, check=duration),
            ],
            confirm="override",
            danger=True,
        )
        self._ask(form, lambda values: self._act("override", values))

    def action_run(self) -> None:
        v = self.view
        assert v is not None
        body = Text()
        body.append_text(waves_text(v))
        body.append(
            f"\n\nships to {v.env} wave by wave, blue/green; on failure: {v.failure_policy}. "
            "A background runner does it, so the run goes on if you close shipdeck.",
            style="",
        )
        form = FormScreen(f"Run plan {v.id} in {v.env}?", body, confirm="run", danger=True)
        self._ask(form, lambda values: self._act("run", values))

    def action_abort(self) -> None:
        v = self.view
        assert v is not None
        if v.state == "running":
            what = "The runner stops at its next step and rolls back what this run switched."
        else:
            what = "The plan stops for good: it cannot run afterwards."
        form = FormScreen(f"Abort plan {v.id}?", Text(what), confirm="abort", danger=True)
        self._ask(form, lambda values: self._act("abort", values))

    def action_ack(self) -> None:
        v = self.view
        assert v is not None
        reviews = open_reviews(self.ctx, v)
        if not reviews:
            return
        o = reviews[0]
        form = FormScreen(
            f"Acknowledge override #{o.id}?",
            override_line(o, self.zone),
            [Field("note", "Note", placeholder="optional: what you checked")],
            confirm="acknowledge",
        )
        self._ask(form, lambda values: self._act("ack", {**values, "override": str(o.id)}))

    def action_watch(self) -> None:
        from shipdeck.tui.screens.run import RunScreen

        self.app.push_screen(RunScreen(self.plan_id))

    def action_open_later(self) -> None:
        """Follow history: the plan that replaced what this one shipped."""
        if self.history.superseded:
            self.app.push_screen(PlanScreen(self.history.superseded[0].plan))

    def action_submit(self) -> None:
        v = self.view
        assert v is not None
        need = v.approvals_required
        then = f"it then needs {need} approval(s)" if need else "it is approved at once"
        form = FormScreen(
            f"Submit plan {v.id}?",
            Text(f"{self._items_line(v)} in {v.env}: {then}."),
            confirm="submit",
        )
        self._ask(form, lambda values: self._act("submit", values))

    def action_edit(self) -> None:
        from shipdeck.tui.screens.plan_new import PlanEditScreen

        v = self.view
        assert v is not None
        self.app.push_screen(PlanEditScreen(v.env, plan=v))

    @on(Checklist.Tick)
    def _tick(self, message: Checklist.Tick) -> None:
        v = self.view
        if v is None or not self.check_action("tick", ()):
            return
        item = next((c for c in v.checklist if c.item == message.item), None)
        if item is None:
            return
        if item.done and not item.command:
            self.notify(f"'{safe(item.text)}' is already ticked by {safe(item.by)}", markup=False)
            return
        if item.command:
            self.notify(f"running {safe(' '.join(item.command))}…", markup=False)
        self._act("tick", {"item": item.item})

    @work(thread=True, exit_on_error=False, group="plan-action")
    def _act(self, action: str, values: dict[str, str]) -> None:
        self.post_message(self.Done(*self._carry_out(action, values)))

    def _carry_out(self, action: str, values: dict[str, str]) -> tuple[str, bool]:
        """Call the one service the action stands for; runs in the worker thread."""
        from shipdeck.core.services import plans, runs

        ctx, pid = self.ctx, self.plan_id
        if action == "submit":
            view = plans.submit_plan(ctx, pid)
            return f"plan {pid} submitted: it is {state_label(view.state)}", False
        if action == "tick":
            tick = plans.check_item(ctx, pid, values["item"])
            return f"ticked '{safe(tick.text)}'", False
        if action == "approve":
            view = plans.approve(ctx, pid, values["comment"])
            return f"you approved plan {pid}: it is {state_label(view.state)}", False
        if action == "reject":
            plans.reject(ctx, pid, values["reason"])
            return f"you rejected plan {pid}: it is aborted", False
        if action == "override":
            from shipdeck.core.domain.windows import parse_duration

            o = plans.override(ctx, pid, values["reason"], parse_duration(values["until"]))
            return f"override #{o.id} until {when(o.until, self.zone)}: a review is open", False
        if action == "run":
            launched = runs.launch_run(ctx, pid)
            return f"plan {pid} is running (runner pid {launched.pid})", True
        if action == "abort":
            result = runs.abort(ctx, pid)
            if result.state == "running":
                return f"abort requested: plan {pid} stops at its next step", True
            return f"plan {pid} {state_label(result.state)}", False
        o = plans.acknowledge_override(ctx, int(values["override"]), values["note"])
        return f"override #{o.id} acknowledged", False

    @on(Done)
    def _done(self, message: Done) -> None:
        self.notify(message.note, title="done", markup=False)
        self.reload()
        if message.watch:
            self.action_watch()
