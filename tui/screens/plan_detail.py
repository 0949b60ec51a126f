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

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import Static
from textual.widgets.option_list import Option

from shipdeck.core.domain.plan import PRE_RUN
from shipdeck.core.services.actions import PLAN_ACTIONS, open_reviews, plan_actions, shown
from shipdeck.core.services.plan_history import PlanHistory
from shipdeck.core.services.plans import PlanView
from shipdeck.tui.screens.base import ShipdeckScreen
from shipdeck.tui.widgets.checklist import Checklist
from shipdeck.tui.widgets.footer import KeysFooter
from shipdeck.tui.widgets.form import FormScreen, Values
from shipdeck.tui.widgets.header import HeaderBar
from shipdeck.tui.widgets.plan_forms import PLAN_FORMS, ack_form
from shipdeck.tui.widgets.plan_render import (
    checklist_prompt,
    checklist_title,
    rest_part,
    summary_text,
    top_part,
)
from shipdeck.tui.widgets.plan_text import safe, state_label, when
from shipdeck.tui.widgets.scroll import VimScroll


class PlanScreen(ShipdeckScreen):
    TITLE = "Plan"
    CSS_PATH = "shipping.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("S", "submit", "Submit", key_display="S"),
        Binding("e", "edit", "Edit"),
        Binding("y", "approve", "Approve"),
        Binding("n", "reject", "Reject"),
        Binding("r", "run", "Run"),
        Binding("Q", "queue", "Queue for window", key_display="Q"),
        Binding("u", "unqueue", "Unqueue"),
        Binding("w", "watch", "Watch run"),
        Binding("P", "promote", "Promote", key_display="P"),
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
        yield KeysFooter()

    def on_mount(self) -> None:
        self.reload()

    def reload(self) -> None:
        self._load()

    @work(thread=True, exclusive=True, exit_on_error=False, group="plan")
    def _load(self) -> None:
        from shipdeck.core.services.chain_head import head
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
        self.query_one("#plan-summary", Static).update(summary_text(view, zone))
        self.query_one("#plan-top", Static).update(top_part(view, zone, self.history))
        self.query_one("#plan-rest", Static).update(rest_part(view, zone, self.history))
        title = checklist_title(view, self.history, bool(self.check_action("tick", ())))
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

    def _ask_plan(self, action: str) -> None:
        """Ask the action's question of the plan as shown (plan_forms), then carry it out."""
        v = self.view
        assert v is not None
        self._ask(PLAN_FORMS[action](v), lambda values: self._act(action, values))

    def action_approve(self) -> None:
        self._ask_plan("approve")

    def action_reject(self) -> None:
        self._ask_plan("reject")

    def action_override(self) -> None:
        self._ask_plan("override")

    def action_run(self) -> None:
        self._ask_plan("run")

    def action_queue(self) -> None:
        self._ask_plan("queue")

    def action_unqueue(self) -> None:
        self._ask_plan("unqueue")

    def action_promote(self) -> None:
        self._ask_plan("promote")

    def action_abort(self) -> None:
        self._ask_plan("abort")

    def action_submit(self) -> None:
        self._ask_plan("submit")

    def action_ack(self) -> None:
        v = self.view
        assert v is not None
        reviews = open_reviews(self.ctx, v)
        if not reviews:
            return
        o = reviews[0]
        self._ask(
            ack_form(o, self.zone),
            lambda values: self._act("ack", {**values, "override": str(o.id)}),
        )

    def action_watch(self) -> None:
        from shipdeck.tui.screens.run import RunScreen

        self.app.push_screen(RunScreen(self.plan_id))

    def action_open_later(self) -> None:
        """Follow history: the plan that replaced what this one shipped."""
        if self.history.superseded:
            self.app.push_screen(PlanScreen(self.history.superseded[0].plan))

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
        if action == "queue":
            return f"plan {pid}: {safe(runs.queue_run(ctx, pid).sentence)}", False
        if action == "unqueue":
            return f"plan {pid}: {safe(runs.unqueue(ctx, pid, values['reason']).sentence)}", False
        if action == "promote":
            runs.promote(ctx, pid)
            return f"promote requested: plan {pid}'s canary moves on at its next look", True
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
