"""The shipdeck Textual app: a shell of sections (dashboard, audit, ...) over one Context.

The app owns no business rules. It receives its services (a core Context, which carries the clock)
in the constructor, so tests build it on a real database with a fixed clock. Each section is a
Textual mode with its own screen stack; adding one (plans, runs, ops) is one `Section` entry and
one screen module. Live refresh is a single cheap poll of the audit head in a thread worker.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar

from textual import on, work
from textual.app import App
from textual.binding import Binding, BindingType
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.screen import Screen
from textual.worker import Worker, WorkerFailed, WorkerState

from shipdeck.core.services.context import Context
from shipdeck.tui import opened
from shipdeck.tui.messages import ConfigChanged, HeadChanged

if TYPE_CHECKING:
    from shipdeck.core.domain.release import ReleaseRecord
    from shipdeck.core.services.plans import PlanSummary
    from shipdeck.core.workspace import ConfigStamp

POLL_SECONDS = 2.0


@dataclass(frozen=True)
class Section:
    """A top-level part of the console: a mode with its own screen stack and a key to reach it."""

    mode: str
    key: str
    title: str
    screen: str  # "module:Class", imported on first visit so startup pays only for the dashboard


SECTIONS: tuple[Section, ...] = (
    Section("dashboard", "d", "Dashboard", "shipdeck.tui.screens.dashboard:DashboardScreen"),
    Section("plans", "p", "Plans", "shipdeck.tui.screens.plans:PlansScreen"),
    Section("ops", "o", "Ops", "shipdeck.tui.screens.ops:OpsScreen"),
    Section("audit", "a", "Audit log", "shipdeck.tui.screens.audit:AuditScreen"),
    Section("metrics", "m", "Metrics", "shipdeck.tui.screens.metrics:MetricsScreen"),
)


def _load_screen(path: str, *, first: bool = False) -> Callable[[], Screen[Any]]:
    def build() -> Screen[Any]:
        module, _, name = path.partition(":")
        cls: type[Screen[Any]] = getattr(importlib.import_module(module), name)
        screen = cls()
        if first:
            # Textual restyles the whole app (App.refresh_css: the stylesheet parsed afresh, its
            # parse cache dropped, every node styled again) for a mode's screen it has not styled
            # yet. The first screen is built before anything is styled, with the variables the
            # stylesheet already has: that refresh would change nothing (~10 ms of the first
            # frame, bench/tui_start.py). Later sections keep it (a theme may have changed).
            screen._css_update_count = screen.app._css_update_count
        return screen

    return build


class ActionsProvider(Provider):
    """The command palette: every shipdeck action of the current screen with its key (refused
    ones too, saying why), and a jump to any app, plan, release or run. Textual's own entries
    (theme, scrolling, screenshots) are not shipdeck actions and are left out."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.jumps: list[tuple[str, Callable[[], Any], str]] = []

    async def startup(self) -> None:
        app = self.app
        assert isinstance(app, ShipdeckApp)
        worker = app.run_worker(
            partial(jump_targets, app.ctx), thread=True, exit_on_error=False, group="palette"
        )
        try:
            self.jumps = list(jump_commands(app, await worker.wait()))
        except WorkerFailed as failed:
            from shipdeck.tui.screens.base import error_line

            app.notify(f"palette: {error_line(failed.error)}", severity="warning", markup=False)

    def _commands(self) -> Iterator[tuple[str, Callable[[], Any], str]]:
        from shipdeck.tui.widgets.keys import screen_actions

        app = self.app
        assert isinstance(app, ShipdeckApp)
        for a in screen_actions(self.screen):
            if a.action == "command_palette" or a.movement:
                continue
            keys = " / ".join(a.keys)
            if a.refused:
                say = partial(app.notify, f"{a.description}: {a.refused}", severity="warning")
                yield f"{a.description} (disabled)", say, f"key: {keys} · {a.refused}"
            else:
                yield a.description, partial(app.run_action, a.action, a.node), f"key: {keys}"
        for name in app.ctx.config.apps:
            yield f"Open app {name}", partial(app.open_app, name), "releases and diffs"
        yield from self.jumps

    async def discover(self) -> Hits:
        for name, command, help_text in self._commands():
            yield DiscoveryHit(name, command, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, command, help_text in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), command, help=help_text)


@dataclass(frozen=True)
class JumpTargets:
    plans: list[PlanSummary]
    releases: list[ReleaseRecord]


def jump_targets(ctx: Context) -> JumpTargets:
    """What the palette can jump to; read in a worker thread when the palette opens."""
    from shipdeck.core.services.plans import list_plans
    from shipdeck.core.services.releases import list_releases

    return JumpTargets(list_plans(ctx, limit=200), list_releases(ctx))


def jump_commands(
    app: ShipdeckApp, targets: JumpTargets
) -> Iterator[tuple[str, Callable[[], Any], str]]:
    from shipdeck.core.domain.plan import PRE_RUN
    from shipdeck.core.domain.redact import strip_controls

    for p in targets.plans:
        what = f"{p.env} · {p.state.replace('_', ' ')} · {strip_controls(p.name)}"
        yield f"Open plan {p.id}", partial(app.open_plan, p.id), what
        if p.state not in PRE_RUN:
            yield f"Watch run {p.id}", partial(app.open_run, p.id), what
    for r in targets.releases:
        name = f"Open release {r.app} {strip_controls(r.version)}"
        yield name, partial(app.open_release, r.app, r.version), f"commit {r.commit[:7]}"


class ShipdeckApp(App[None]):
    TITLE = "shipdeck"
    # Start in the dashboard's mode: Textual mounts it before it handles the first key, so keys
    # typed during start-up reach the dashboard instead of a blank screen that is being replaced.
    DEFAULT_MODE = "dashboard"
    CSS_PATH = "app.tcss"
    COMMANDS: ClassVar[set[type[Provider] | Callable[[], type[Provider]]]] = {ActionsProvider}
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "go_back", "Back/Quit"),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True),
        *(
            # Not in the footer: five sections do not fit 80 columns beside a screen's own keys;
            # `?` and the palette list them.
            Binding(s.key, f"section('{s.mode}')", s.title, show=False)
            for s in SECTIONS
        ),
    ]

    def __init__(self, ctx: Context, *, poll_seconds: float = POLL_SECONDS) -> None:
        super().__init__()
        self.ctx = ctx
        self.poll_seconds = poll_seconds
        self.head_seq: int | None = None
        self.poll_failing = False
        self.config_stamp: ConfigStamp | None = None  # shipdeck.toml as this session read it
        self.config_problem = ""  # the last broken shipdeck.toml said so once
        self.sections = {s.mode: s for s in SECTIONS}
        for s in self.sections.values():
            self.add_mode(s.mode, _load_screen(s.screen, first=s.mode == self.DEFAULT_MODE))

    # --- permissions ---------------------------------------------------------------------------

    def may(self, permission: str) -> bool:
        """Whether mutating actions needing `permission` are offered at all in this session."""
        return not self.ctx.read_only and permission in self.ctx.actor.permissions

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "section":
            mode = parameters[0] if parameters else None
            return mode in self.sections and mode != self.current_mode
        return True

    # --- navigation ----------------------------------------------------------------------------

    def on_mount(self) -> None:
        self.set_interval(self.poll_seconds, self.poll_head)
        self.poll_head()

    def action_section(self, mode: str) -> None:
        if mode in self.sections and mode != self.current_mode:
            self.switch_mode(mode)

    def action_go_back(self) -> None:
        """q pops a pushed screen, leaves a section for the dashboard, and quits from there."""
        if len(self.screen_stack) > 1:
            self.pop_screen()
        elif self.current_mode != "dashboard":
            self.switch_mode("dashboard")
        else:
            self.exit()

    def action_help(self) -> None:
        from shipdeck.tui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen))

    def open_app(self, name: str, env: str | None = None) -> None:
        from shipdeck.tui.screens.app_detail import AppScreen

        if self.current_mode != "dashboard":
            self.switch_mode("dashboard")
        self.push_screen(AppScreen(name, env))

    def open_plan(self, plan_id: str) -> None:
        from shipdeck.tui.screens.plan_detail import PlanScreen

        if self.current_mode != "plans":
            self.switch_mode("plans")
        self.push_screen(PlanScreen(plan_id))

    def open_run(self, plan_id: str) -> None:
        from shipdeck.tui.screens.run import RunScreen

        if self.current_mode != "plans":
            self.switch_mode("plans")
        self.push_screen(RunScreen(plan_id))

    def open_release(self, app: str, version: str) -> None:
        from shipdeck.tui.screens.release import ReleaseScreen

        self.open_app(app)
        self.push_screen(ReleaseScreen(app, version))

    # --- live refresh --------------------------------------------------------------------------

    @work(thread=True, exclusive=True, exit_on_error=False, group="poll")
    def poll_head(self) -> None:
        from shipdeck.core.services.chain_head import head

        self._poll_config()
        seq, digest = head(self.ctx)
        if seq != self.head_seq:
            self.post_message(HeadChanged(seq, digest))

    def _poll_config(self) -> None:
        """In the poll worker: a changed shipdeck.toml is read again and the session rebuilt on
        it (windows, freezes, policy, roles); a broken one is named and the old one kept."""
        from shipdeck.core.bootstrap import reconfigure
        from shipdeck.core.errors import ShipdeckError
        from shipdeck.core.workspace import CONFIG_NAME, config_stamp, load_config

        path = self.ctx.workspace / CONFIG_NAME
        try:
            stamp = config_stamp(path, self.config_stamp)
        except OSError as exc:
            stamp = None
            problem = f"{path}: {exc.strerror or exc}"
        else:
            problem = ""
        if stamp is not None and self.config_stamp is None:
            self.config_stamp = stamp  # the first look: what this session started with
            return
        if stamp is None or stamp.sha256 == self.config_stamp_hash:
            if problem and problem != self.config_problem:
                self.post_message(ConfigChanged(None, problem, stamp))
            return
        try:
            ctx = reconfigure(self.ctx, load_config(path))
        except ShipdeckError as exc:
            if exc.message != self.config_problem:
                self.post_message(ConfigChanged(None, exc.message, stamp))
            return
        self.post_message(ConfigChanged(ctx, "", stamp))

    @property
    def config_stamp_hash(self) -> str | None:
        return None if self.config_stamp is None else self.config_stamp.sha256

    @on(ConfigChanged)
    def _config_changed(self, message: ConfigChanged) -> None:
        from shipdeck.tui.screens.base import ShipdeckScreen

        if message.stamp is not None:
            self.config_stamp = message.stamp
        if message.ctx is None:
            self.config_problem = message.problem
            self.notify(
                f"shipdeck.toml changed but cannot be used: {message.problem} "
                "(still showing the previous one)",
                severity="error",
                timeout=10,
                markup=False,
            )
            return
        self.config_problem = ""
        self.ctx = message.ctx
        self.notify("shipdeck.toml changed: re-evaluated", markup=False)
        for stack in self._screen_stacks.values():
            for screen in stack:
                if isinstance(screen, ShipdeckScreen):
                    screen.seen_head = None  # hidden screens catch up when shown again
        screen = self.screen
        if isinstance(screen, ShipdeckScreen) and screen.loaded:
            screen.reload()

    @on(Worker.StateChanged)
    def _poll_state(self, event: Worker.StateChanged) -> None:
        """Say once that live refresh stopped working (database gone), and once that it is back."""
        if event.worker.group != "poll":
            return
        if event.state == WorkerState.ERROR and not self.poll_failing:
            from shipdeck.tui.screens.base import error_line

            self.poll_failing = True
            error = event.worker.error or RuntimeError("unknown")
            self.notify(
                f"live refresh paused: {error_line(error)}", severity="warning", markup=False
            )
        elif event.state == WorkerState.SUCCESS and self.poll_failing:
            self.poll_failing = False
            self.notify("live refresh resumed", markup=False)

    @on(HeadChanged)
    def _head_changed(self, message: HeadChanged) -> None:
        from shipdeck.tui.screens.base import ShipdeckScreen

        self.head_seq = message.seq
        if not self.screen_stack:
            return  # starting or closing: the first screen loads what is current anyway
        screen = self.screen  # screens underneath catch up when they are shown again
        if isinstance(screen, ShipdeckScreen) and screen.loaded and screen.seen_head != message.seq:
            screen.reload()


def start_app(workspace: str | None = None, read_only: bool = False) -> ShipdeckApp:
    """The app as `shipdeck tui` opens it, ready to run (bench/tui_start.py times this path).
    The TUI may bring the schema up to date itself, for those who may upgrade it (the same rule
    as `db upgrade`).

    What is loaded by now (Textual, SQLAlchemy, the workspace) lives until exit: the process is
    open (tui.opened), as the CLI's main says, so no garbage collection walks it again while the
    first frame is built nor at exit."""
    from shipdeck.core.bootstrap import open_context
    from shipdeck.core.services.admin import bring_schema_up

    ctx = open_context(workspace, read_only=read_only, check_schema=False)
    bring_schema_up(ctx, read_only)
    opened()
    return ShipdeckApp(ctx)


def run_app(workspace: str | None, read_only: bool = False) -> None:
    """Open the TUI on a workspace and run it until it quits."""
    app = start_app(workspace, read_only)
    ctx = app.ctx  # the one it opened (a changed shipdeck.toml replaces app.ctx, same database)
    try:
        app.run()
    finally:
        ctx.close()


__all__ = ["SECTIONS", "Section", "ShipdeckApp", "run_app", "start_app"]
