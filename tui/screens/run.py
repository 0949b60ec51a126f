"""A run as it happens: each app's progress through its steps, wave by wave, the step log, any
automatic rollback, and the outcome.

It follows the run through its journal (run_step rows), the way any other viewer does, so it shows
a run started here, from another console or from the CLI alike. A worker polls the journal every
half second while the plan may still change, and posts everything seen so far; bursts collapse
(`can_replace`) and the handler appends only the steps it has not shown yet.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import ClassVar

from rich.console import RenderableType
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import Static

from shipdeck.core.domain.canary import journal_weights
from shipdeck.core.domain.plan import PRE_RUN, TERMINAL
from shipdeck.core.services.actions import plan_actions, shown
from shipdeck.core.services.plans import PlanView, StepView
from shipdeck.tui.screens.base import ShipdeckScreen
from shipdeck.tui.widgets.footer import KeysFooter
from shipdeck.tui.widgets.header import HeaderBar
from shipdeck.tui.widgets.plan_forms import PLAN_FORMS
from shipdeck.tui.widgets.plan_text import clip, clock, elapsed, safe, state_label, state_text
from shipdeck.tui.widgets.vim import VimLog

POLL_SECONDS = 0.5
FORWARD = ("stage", "health", "eval", "canary", "switch", "verify", "finalize")
# Only some apps go through these (an eval gate, the canary strategy): in an app's way to live
# once its journal has them.
OPTIONAL = ("eval", "canary")
PLAN_LEVEL = "*"
LOG_LINES = 5_000


@dataclass
class AppRun:
    """One app's way through the run, folded from its journal rows."""

    app: str
    version: str
    wave: int
    done: set[str] = field(default_factory=set)
    step: str | None = None  # the step under way (started, not yet done or failed)
    failed_at: str | None = None
    rollback: str | None = None  # started | done | failed
    detail: str = ""
    first: datetime | None = None
    last: datetime | None = None
    optional: set[str] = field(default_factory=set)  # OPTIONAL steps its journal has
    weight: int | None = None  # a running canary's share of traffic (core: journal_weights)

    @property
    def forward(self) -> tuple[str, ...]:
        """The steps this app goes through on its way to live."""
        return tuple(s for s in FORWARD if s not in OPTIONAL or s in self.optional)

    @property
    def busy(self) -> bool:
        return self.step is not None or self.rollback == "started"

    def status(self, finished: bool) -> Text:
        text = Text()
        if self.failed_at is not None:
            text.append(f"✗ failed at {self.failed_at}", style="bold red")
        if self.rollback == "started":
            text.append(" ↺ rolling back…" if text else "↺ rolling back…", style="bold yellow")
        elif self.rollback == "failed":
            text.append(" ✗ rollback failed" if text else "✗ rollback failed", style="bold red")
        elif self.rollback == "done":
            if not text:
                text.append("↺ rolled back", style="bold magenta")
            text.append(f"  {safe(self.detail)}", style="dim")
        if text:
            return text
        if self.step == "canary":
            # its sentence up to the first colon: the measured values follow in the log
            return Text(f"canary: {safe(self.detail).split(':')[0]}…", style="bold magenta")
        if self.step is not None:
            return Text(f"{self.step}…", style="bold cyan")
        if self.weight is not None:
            return Text(f"canary at {self.weight}%", style="magenta")
        if all(s in self.done for s in self.forward):
            return Text("✓ live", style="bold green")
        if "verify" in self.done:
            return Text("✓ verified", style="green")
        last = max((s for s in self.done if s in FORWARD), key=FORWARD.index, default=None)
        if last is not None:
            return Text(f"{last} ✓", style="cyan")
        return Text("not started" if finished else "waiting", style="dim")


def fold(view: PlanView, steps: list[StepView]) -> dict[str, AppRun]:
    """Every app of the plan (in wave order) with what its journal says about it."""
    runs = {i.app: AppRun(i.app, i.version, i.wave) for i in view.items}
    for s in steps:
        if s.app == PLAN_LEVEL or s.step == "prepare":
            continue
        a = runs.setdefault(s.app, AppRun(s.app, "?", s.wave))
        a.first = a.first or s.at
        a.last = s.at
        if s.step in OPTIONAL:
            a.optional.add(s.step)
        if s.step == "rollback":
            a.rollback = "started" if s.state == "started" else s.state
            a.step = None
        elif s.state == "started":
            a.step = s.step
        elif s.state == "done":
            a.done.add(s.step)
            a.step = None
        else:
            a.failed_at = s.step
            a.step = None
        if s.detail:
            a.detail = s.detail
    for app, weight in journal_weights((s.app, s.step, s.state, s.detail) for s in steps).items():
        if app in runs:
            runs[app].weight = weight
    return dict(sorted(runs.items(), key=lambda kv: (kv[1].wave, kv[0])))


def plan_activity(steps: list[StepView]) -> Text | None:
    """What the run as a whole is doing now: rolling back after a failure, holding for a
    window, or keeping the old colors warm."""
    latest: dict[str, StepView] = {}
    failure: StepView | None = None
    for s in steps:
        if s.app == PLAN_LEVEL:
            latest[s.step] = s
        elif s.state == "failed" and failure is None:
            failure = s
    if failure is not None:
        text = Text(f"✗ {failure.app} failed at {failure.step}, rolling back: ", style="bold red")
        text.append(safe(failure.detail))
        return text
    for name, word in (("hold", "holding"), ("warm", "warm")):
        step = latest.get(name)
        if step is not None and step.state == "started":
            text = Text(f"{word}: ", style="bold yellow")
            text.append(safe(step.detail))
            return text
    return None


def prepared(detail: str) -> str:
    """The prepare step records where an app starts, as JSON: say it in words."""
    try:
        p = json.loads(detail)
        live = f"{p['from_color']} {p['from_version']}" if p.get("from_color") else "nothing"
        return f"live now: {live}; ships to {p['to_color']}"
    except (ValueError, KeyError, TypeError):
        return detail


def step_line(s: StepView, waves: int) -> Text:
    """One journal row; steps after the last wave (warm, finalize, the end) carry no wave."""
    text = Text()
    text.append(f"{clock(s.at)} ", style="dim")
    if s.app == PLAN_LEVEL:
        text.append(f"{'plan':<14} ", style="bold")
    else:
        text.append(f"{s.wave + 1 if s.wave < waves else ' '} ", style="dim")
        text.append(f"{clip(s.app, 12):<12} ", style="bold")
    style = {"done": "green", "failed": "bold red", "started": "cyan"}.get(s.state, "")
    if s.step == "rollback":
        style = "bold yellow" if s.state != "failed" else "bold red"
    if s.step == "run":
        text.append_text(state_text(s.state))
    else:
        text.append(f"{s.step:<8} ", style=style)
        text.append(f"{s.state:<7} ", style=style)
    detail = prepared(s.detail) if s.step == "prepare" else s.detail
    if detail:
        text.append(f" {safe(detail)}" if s.step == "run" else safe(detail))
    return text


class RunScreen(ShipdeckScreen):
    TITLE = "Run"
    CSS_PATH = "shipping.tcss"
    MUTATING: ClassVar[dict[str, str]] = {"abort": "plan.abort", "promote": "plan.run"}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("P", "promote", "Promote", key_display="P"),
        Binding("x", "abort", "Abort"),
        Binding("escape", "app.go_back", "Back", show=False),
    ]

    class Opened(Message):
        def __init__(self, view: PlanView) -> None:
            super().__init__()
            self.view = view

    class Progress(Message):
        """Everything seen so far; a newer one replaces one not yet handled."""

        def __init__(
            self,
            steps: tuple[StepView, ...],
            state: str,
            result: str,
            abort_by: str | None,
            head_seq: int,
        ) -> None:
            super().__init__()
            self.steps = steps
            self.state = state
            self.result = result
            self.abort_by = abort_by
            self.head_seq = head_seq

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, RunScreen.Progress)

    def __init__(self, plan_id: str) -> None:
        super().__init__()
        self.plan_id = plan_id
        self.view: PlanView | None = None
        self.steps: list[StepView] = []
        self.state = ""
        self.result = ""
        self.abort_by: str | None = None
        self.actions: dict[str, str | None] = {}  # core.services.actions.plan_actions
        self.logged = 0  # id of the last step written to the log
        self._stop = threading.Event()

    def compose(self) -> ComposeResult:
        yield HeaderBar(self.ctx, f"Run {self.plan_id}")
        yield Static("reading the journal…", id="run-head")
        yield Static(id="run-outcome")
        yield Static(id="run-apps")
        yield VimLog(max_lines=LOG_LINES, wrap=True, id="run-log")
        yield KeysFooter()

    def on_mount(self) -> None:
        self.query_one(VimLog).focus()
        self.set_interval(1.0, self._tick)
        self._follow()

    def on_unmount(self) -> None:
        self._stop.set()

    @work(thread=True, exclusive=True, exit_on_error=False, group="run-follow")
    def _follow(self) -> None:
        """Read the journal until the run has ended; called once, in a worker thread."""
        from shipdeck.core.services.chain_head import head
        from shipdeck.core.services.plans import get_plan
        from shipdeck.core.services.run_watch import watch

        view = get_plan(self.ctx, self.plan_id)
        self.post_message(self.Opened(view))
        state, steps = view.state, list[StepView]()
        for p in watch(self.ctx, self.plan_id, wait=lambda: not self._stop.wait(POLL_SECONDS)):
            steps += p.fresh
            if p.state != state:  # what may be done (promote, abort) depends on the state
                state = p.state
                self.post_message(self.Opened(get_plan(self.ctx, self.plan_id)))
            seq, _ = head(self.ctx)
            self.post_message(
                self.Progress(tuple(steps), p.state, p.result, p.abort_requested_by, seq)
            )

    @on(Opened)
    def _opened(self, message: Opened) -> None:
        self.view = message.view
        self.actions = shown(plan_actions(self.ctx, message.view))
        self.refresh_bindings()

    @on(Progress)
    def _progress(self, message: Progress) -> None:
        self.steps = list(message.steps)
        self.state, self.result = message.state, message.result
        self.abort_by = message.abort_by
        log = self.query_one(VimLog)
        for s in message.steps:
            if s.id > self.logged:
                log.add(step_line(s, len(self.view.waves) if self.view else 0))
                self.logged = s.id
        self._paint()
        self.mark_loaded(message.head_seq)
        self.refresh_bindings()

    def on_resize(self) -> None:
        self.call_after_refresh(self._reflow)  # once the log has its new size

    def _reflow(self) -> None:
        """Lines are wrapped when written: written again at the new width, the log reflows."""
        log = self.query_one(VimLog)
        if not self.steps or not log.scrollable_content_region.width:
            return
        waves = len(self.view.waves) if self.view else 0
        log.clear()
        for s in self.steps:
            log.add(step_line(s, waves))
        self._paint()

    def _tick(self) -> None:
        if self.state == "running":
            self._paint()

    def _paint(self) -> None:
        view = self.view
        if view is None:
            return
        now = self.ctx.now()
        finished = self.state in TERMINAL
        head = Text()
        head.append(f"{view.id}  {view.env}  ", style="bold")
        head.append_text(state_text(self.state))
        first = next((s.at for s in self.steps), None)
        if first is not None:
            end = self.steps[-1].at if finished else now
            head.append(f"  {'took' if finished else 'elapsed'} {elapsed(end - first)}")
        waves = len(view.waves)
        apps = len(view.items)
        head.append(
            f"  {apps} app{'s' if apps != 1 else ''} in {waves} wave{'s' if waves != 1 else ''}"
        )
        head.append("  times UTC", style="dim")
        self.query_one("#run-head", Static).update(head)
        outcome = Text()
        if self.state in PRE_RUN:
            outcome.append("not started yet: this view follows the run once anyone starts it")
            outcome.stylize("dim")
        elif finished and self.result:
            outcome.append(safe(self.result), style=self._outcome_style())
        elif self.abort_by:
            outcome.append(
                f"■ abort requested by {safe(self.abort_by)}: the runner stops at its next step "
                "and rolls back",
                style="bold yellow",
            )
        elif (activity := plan_activity(self.steps)) is not None:
            outcome = activity
        box = self.query_one("#run-outcome", Static)
        box.update(outcome)
        box.display = bool(outcome)
        self.query_one("#run-apps", Static).update(self._apps_table(view, now, finished))

    def _outcome_style(self) -> str:
        return {"succeeded": "green", "rolled_back": "magenta", "aborted": "yellow"}.get(
            self.state, "red"
        )

    def _apps_table(self, view: PlanView, now: datetime, finished: bool) -> RenderableType:
        runs = fold(view, self.steps)
        name_width = min(max((len(a) for a in runs), default=4), 18)
        grid = Table.grid(padding=(0, 1), expand=True)
        grid.add_column(width=1, style="dim")
        grid.add_column(width=name_width, no_wrap=True)
        grid.add_column(max_width=10, no_wrap=True)
        grid.add_column(ratio=1, min_width=8, max_width=30)
        grid.add_column(ratio=2, no_wrap=True)
        grid.add_column(width=7, justify="right", style="dim")
        wave = -1
        for a in runs.values():
            bad = a.failed_at is not None or a.rollback is not None
            bar = ProgressBar(
                total=len(a.forward),
                completed=len(a.done & set(a.forward)),
                complete_style="red" if bad else "cyan",
                finished_style="green",
            )
            end = now if a.busy and not finished else a.last
            took = elapsed(end - a.first) if a.first and end else ""
            grid.add_row(
                Text(str(a.wave + 1) if a.wave != wave else ""),
                Text(clip(a.app, name_width), style="bold"),
                Text(clip(safe(a.version), 10)),
                bar,
                a.status(finished),
                Text(took),
            )
            wave = a.wave
        return grid

    # --- promote and abort ------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("abort", "promote") and self.actions.get(action, "") is not None:
            return False
        return super().check_action(action, parameters)

    def action_promote(self) -> None:
        self._ask("promote")

    def action_abort(self) -> None:
        self._ask("abort")

    def _ask(self, action: str) -> None:
        """The plan screen's question for the action (plan_forms), then the one service call."""
        if self.view is None:
            return

        def answered(values: dict[str, str] | None) -> None:
            if values is not None:
                self._act(action)

        # The question reads the plan as this view follows it, not as it was when opened.
        now = replace(self.view, state=self.state, steps=tuple(self.steps))
        self.app.push_screen(PLAN_FORMS[action](now), answered)

    @work(thread=True, exit_on_error=False, group="run-action")
    def _act(self, action: str) -> None:
        from shipdeck.core.services.runs import abort, promote

        if action == "promote":
            promote(self.ctx, self.plan_id)
            note = "promote requested: the canary moves on at the runner's next look"
        elif (result := abort(self.ctx, self.plan_id)).state == "running":
            note = "abort requested: the runner stops at its next step and rolls back"
        else:
            note = f"plan {self.plan_id} {state_label(result.state)}"
        self.notify(note, title="done", markup=False)
