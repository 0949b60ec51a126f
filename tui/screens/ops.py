"""Day-2 work on a live app: its logs (tail, follow, search, save), a restart, its token limits.

Pick the app and the environment at the top. Everything goes through core.services.tasks, which
audits each call and enforces the environment's task roles; this screen only offers what the
person may do there. Log lines are remote text: they are shown as rich Text after
strip_controls, so neither escape sequences nor markup such as `[bold]` can change the screen.
Following runs in a worker thread that stops on an Event (`f` again, another app or environment,
or leaving the screen); lines land in a buffer and one collapsing message tells the screen to
drain it, so a burst of lines costs one repaint.
"""

from __future__ import annotations

import threading
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Footer, Input, Select, Static

from shipdeck.core.domain.redact import strip_controls
from shipdeck.core.errors import ShipdeckError
from shipdeck.core.ports import TokenLimits
from shipdeck.tui.screens.base import ShipdeckScreen, error_line
from shipdeck.tui.screens.prompt import PromptScreen
from shipdeck.tui.widgets.form import Field, FormScreen, Values, positive_int
from shipdeck.tui.widgets.header import HeaderBar
from shipdeck.tui.widgets.vim import VimLog

if TYPE_CHECKING:
    from shipdeck.core.services.actions import Action

TAIL_LINES = 200
KEEP_LINES = 5_000


def limit(value: int | None) -> str:
    return "not set" if value is None else f"{value:,}"


def limits_change(old: TokenLimits, new: TokenLimits) -> Text:
    """Current against new, one limit a line, changes bold."""
    text = Text()
    for i, key in enumerate(("tpm", "rpm")):
        before, after = getattr(old, key), getattr(new, key)
        text.append("\n" if i else "")
        text.append(f"{key}  ", style="dim")
        text.append(limit(before))
        if after == before:
            text.append("  (unchanged)", style="dim")
        else:
            text.append("  →  ", style="dim")
            text.append(limit(after), style="bold yellow")
    return text


def marked(line: str, needle: str) -> Text:
    text = Text(strip_controls(line), no_wrap=True)
    if needle:
        text.highlight_words([needle], style="reverse", case_sensitive=False)
    return text


class OpsScreen(ShipdeckScreen):
    TITLE = "Ops"
    CSS_PATH = "shipping.tcss"
    MUTATING: ClassVar[dict[str, str]] = {
        "logs": "task.logs",
        "follow": "task.logs",
        "restart": "task.restart",
        "limits": "task.token-limit",
    }
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("l", "logs", "Logs"),
        # Not in the footer, so Back/Quit and Help keep their place at 80 columns; `?` and the
        # palette list them.
        Binding("f", "follow", "Follow", show=False),
        Binding("slash", "search", "Search", key_display="/", show=False),
        Binding("s", "save", "Save", show=False),
        Binding("t", "limits", "Token limits"),
        Binding("R", "restart", "Restart"),
        Binding("escape", "clear_search", "Clear search", show=False),
    ]

    class LimitsRead(Message):
        def __init__(self, generation: int, limits: TokenLimits | None, note: str) -> None:
            super().__init__()
            self.generation = generation
            self.limits = limits
            self.note = note

    class LinesPulled(Message):
        def __init__(self, generation: int, lines: list[str], head_seq: int) -> None:
            super().__init__()
            self.generation = generation
            self.lines = lines
            self.head_seq = head_seq

    class LinesArrived(Message):
        """New followed lines wait in the buffer; one of these stands for any number of them."""

        def __init__(self, generation: int) -> None:
            super().__init__()
            self.generation = generation

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, OpsScreen.LinesArrived)

    class FollowEnded(Message):
        def __init__(self, generation: int, error: str) -> None:
            super().__init__()
            self.generation = generation
            self.error = error

    class Done(Message):
        def __init__(
            self, note: str, limits: TokenLimits | None = None, where: tuple[str, str] = ("", "")
        ) -> None:
            super().__init__()
            self.note = note
            self.limits = limits
            self.where = where  # the app and environment the new limits belong to

    def __init__(self) -> None:
        super().__init__()
        config = self.ctx.config
        self.app_name = next(iter(config.apps), "")
        self.env = next(iter(config.env_order()), "")
        self.generation = 0
        self.limits: TokenLimits | None = None
        self.lines: deque[str] = deque(maxlen=KEEP_LINES)
        self.needle = ""
        self.matching = 0
        self.source = ""  # what the lines are: "", "tail" or "follow"
        self._incoming: deque[str] = deque()
        self._lock = threading.Lock()
        self._stop: threading.Event | None = None

    # --- layout ------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        config = self.ctx.config
        yield HeaderBar(self.ctx, self.TITLE)
        with Horizontal(id="ops-pick"):
            yield Select(
                [(name, name) for name in config.apps],
                value=self.app_name or Select.NULL,
                allow_blank=False,
                compact=True,
                id="ops-app",
            )
            yield Select(
                [(name, name) for name in config.env_order()],
                value=self.env or Select.NULL,
                allow_blank=False,
                compact=True,
                id="ops-env",
            )
            yield Static(id="ops-target")
        yield Static(id="ops-limits")
        yield Input(placeholder="search the lines shown (Enter keeps, Esc clears)", id="ops-search")
        yield Static(id="ops-status")
        yield VimLog(max_lines=KEEP_LINES, id="ops-log")
        yield Footer()

    def on_mount(self) -> None:
        config = self.ctx.config
        for which, names in (("app", list(config.apps)), ("env", config.env_order())):
            # as wide as the longest name, its arrow and padding: room for the target line
            self.query_one(f"#ops-{which}", Select).styles.width = (
                max(map(len, names), default=4) + 5
            )
        self.query_one("#ops-search", Input).display = False
        self.query_one(VimLog).focus()
        self._picked()
        self.mark_loaded(self.shipdeck.head_seq or 0)

    def on_unmount(self) -> None:
        self._stop_following()

    # --- who may do what, where ----------------------------------------------------------------

    def task_action(self, name: str) -> Action:
        """May this actor run the task here, and why not: the core's answer, asked afresh
        (it reads only the configuration) so a reloaded shipdeck.toml counts at once."""
        from shipdeck.core.services.actions import Action, Reason, task_actions

        if self.env not in self.ctx.config.environments:
            return Action(name, (Reason("no_target", f"no environment {self.env}"),))
        return task_actions(self.ctx, self.app_name, self.env)[name]

    @property
    def protected(self) -> bool:
        env = self.ctx.config.environments.get(self.env)
        return bool(env and env.protected)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        permission = self.MUTATING.get(action)
        if permission is not None:
            if not self.task_action(permission).allowed:
                return False
            return action != "limits" or self.limits is not None
        if action in ("save", "search"):
            return bool(self.lines)
        return super().check_action(action, parameters)

    # --- choosing app and environment ----------------------------------------------------------

    @on(Select.Changed)
    def _select_changed(self, event: Select.Changed) -> None:
        value = event.value
        if not isinstance(value, str):
            return
        if event.select.id == "ops-app":
            self.app_name = value
        else:
            self.env = value
        self._picked()

    def _picked(self) -> None:
        """A new app or environment: forget the old lines, read the limits the person may see."""
        self._stop_following()
        self.generation += 1
        self.lines.clear()
        self.source = ""
        self.limits = None
        self.query_one(VimLog).clear()
        self._describe_target()
        line = self.query_one("#ops-limits", Static)
        logs, limits = self.task_action("task.logs"), self.task_action("task.token-limit")
        if not logs.allowed:
            line.update(Text(logs.why_not, style="dim"))
        elif any(r.kind == "not_configured" for r in limits.reasons):
            line.update(Text("token limits  none configured here", style="dim"))
        else:
            line.update(Text("token limits: reading…", style="dim"))
            self._read_limits(self.generation, self.app_name, self.env)
        self._status()
        self.refresh_bindings()

    def _describe_target(self) -> None:
        text = Text(no_wrap=True, overflow="ellipsis")
        spec = self.ctx.config.apps.get(self.app_name)
        target = spec.targets.get(self.env) if spec else None
        if target is not None:
            text.append(f"{target.adapter} target", style="dim")
        env = self.ctx.config.environments.get(self.env)
        if env is not None and env.protected:
            roles = " or ".join(env.task_roles) or "nobody"
            text.append(f", protected: {roles}", style="yellow")
        self.query_one("#ops-target", Static).update(text)

    @work(thread=True, exclusive=True, exit_on_error=False, group="ops-limits")
    def _read_limits(self, generation: int, app: str, env: str) -> None:
        from shipdeck.core.services.tasks import read_limits

        try:
            self.post_message(self.LimitsRead(generation, read_limits(self.ctx, app, env), ""))
        except ShipdeckError as exc:
            self.post_message(self.LimitsRead(generation, None, exc.message))

    @on(LimitsRead)
    def _limits_read(self, message: LimitsRead) -> None:
        if message.generation != self.generation:
            return
        self.limits = message.limits
        self._show_limits(message.note)
        self.refresh_bindings()

    def _show_limits(self, note: str = "") -> None:
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append("token limits  ", style="dim")
        if self.limits is None:
            text.append(strip_controls(note) or "unknown", style="dim")
        else:
            text.append("tpm ", style="dim")
            text.append(limit(self.limits.tpm), style="bold")
            text.append("  rpm ", style="dim")
            text.append(limit(self.limits.rpm), style="bold")
        self.query_one("#ops-limits", Static).update(text)

    # --- logs ----------------------------------------------------------------------------------

    def action_logs(self) -> None:
        self._stop_following()
        self.query_one("#ops-status", Static).update(Text("pulling logs…", style="bold"))
        self._pull(self.generation, self.app_name, self.env)

    @work(thread=True, exclusive=True, exit_on_error=False, group="ops-logs")
    def _pull(self, generation: int, app: str, env: str) -> None:
        from shipdeck.core.services.audit_log import head
        from shipdeck.core.services.tasks import pull_logs

        lines = pull_logs(self.ctx, app, env, lines=TAIL_LINES)
        seq, _ = head(self.ctx)
        self.post_message(self.LinesPulled(generation, lines, seq))

    @on(LinesPulled)
    def _pulled(self, message: LinesPulled) -> None:
        if message.generation != self.generation:
            return
        self.lines.clear()
        self.lines.extend(message.lines)
        self.source = "tail"
        self._redraw()
        self.mark_loaded(message.head_seq)

    def action_follow(self) -> None:
        if self._stop is not None:
            self._stop_following()
            self._status()
            self.refresh_bindings()
            return
        self._stop = threading.Event()
        self.source = "follow"
        self._follow(self.generation, self.app_name, self.env, self._stop, not self.lines)
        self._status()

    @work(thread=True, exit_on_error=False, group="ops-follow")
    def _follow(
        self, generation: int, app: str, env: str, stop: threading.Event, tail_first: bool
    ) -> None:
        from shipdeck.core.services.tasks import follow_logs, pull_logs

        error = ""
        try:
            if tail_first:
                self._arrive(generation, pull_logs(self.ctx, app, env, lines=TAIL_LINES))
            for line in follow_logs(self.ctx, app, env, stop):
                self._arrive(generation, [line])
                if stop.is_set():
                    break
        except Exception as exc:  # shown in the UI like any failure; following just ends
            error = error_line(exc)
        self.post_message(self.FollowEnded(generation, error))

    def _arrive(self, generation: int, lines: list[str]) -> None:
        with self._lock:
            self._incoming.extend(lines)
        self.post_message(self.LinesArrived(generation))

    @on(LinesArrived)
    def _drain(self, message: LinesArrived) -> None:
        with self._lock:
            fresh = list(self._incoming)
            self._incoming.clear()
        if message.generation != self.generation:
            return
        self.lines.extend(fresh)
        log = self.query_one(VimLog)
        for line in fresh:
            if not self.needle or self.needle in line.lower():
                log.add(marked(line, self.needle))
                self.matching += 1
        self._status()
        self.refresh_bindings()

    @on(FollowEnded)
    def _follow_ended(self, message: FollowEnded) -> None:
        if message.generation == self.generation:
            self._stop = None
            self._status()
            self.refresh_bindings()
        if message.error:
            self.show_error(message.error)

    def _stop_following(self) -> None:
        if self._stop is not None:
            self._stop.set()
            self._stop = None

    def _redraw(self) -> None:
        log = self.query_one(VimLog)
        log.clear()
        self.matching = 0
        for line in self.lines:
            if not self.needle or self.needle in line.lower():
                log.add(marked(line, self.needle))
                self.matching += 1
        self._status()
        self.refresh_bindings()

    def _status(self) -> None:
        text = Text(no_wrap=True, overflow="ellipsis")
        where = f"{self.app_name}/{self.env}"
        if self.lines:
            text.append(f"{len(self.lines):,} lines", style="bold")
            text.append(f" from {where}")
        elif self.task_action("task.logs").allowed:
            text.append(
                f"{where}: l pulls the last {TAIL_LINES} lines, f follows;"
                " shift+tab picks app and environment",
                style="dim",
            )
        if self._stop is not None:
            text.append("  ● following", style="bold green")
        if self.needle:
            text.append(f"  {self.matching:,} match '{self.needle}'", style="cyan")
        self.query_one("#ops-status", Static).update(text)

    # --- search and save -----------------------------------------------------------------------

    def action_search(self) -> None:
        box = self.query_one("#ops-search", Input)
        box.display = True
        box.focus()

    def action_clear_search(self) -> None:
        box = self.query_one("#ops-search", Input)
        box.value = ""
        box.display = False
        self.query_one(VimLog).focus()

    @on(Input.Changed, "#ops-search")
    def _search_changed(self, event: Input.Changed) -> None:
        self.needle = event.value.strip().lower()
        self._redraw()

    @on(Input.Submitted, "#ops-search")
    def _search_kept(self) -> None:
        box = self.query_one("#ops-search", Input)
        box.display = bool(box.value)
        self.query_one(VimLog).focus()

    def action_save(self) -> None:
        stamp = f"{self.ctx.now():%Y%m%d-%H%M%S}"
        default = f".shipdeck/logs/{self.app_name}-{self.env}-{stamp}.log"
        shown = [ln for ln in self.lines if not self.needle or self.needle in ln.lower()]
        what = f"the {len(shown):,} lines shown" + (
            f" (matching '{self.needle}')" if self.needle else ""
        )

        def answered(path: str | None) -> None:
            if path:
                self._save(path, shown)

        self.app.push_screen(
            PromptScreen(f"Save {what} to (relative to the workspace):", default), answered
        )

    @work(thread=True, exit_on_error=False, group="ops-save")
    def _save(self, path: str, lines: list[str]) -> None:
        from shipdeck.core.errors import UsageError

        target = Path(path).expanduser()
        if not target.is_absolute():
            target = self.ctx.workspace / target
        if target.exists():
            raise UsageError(f"{target} exists: choose another name")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text("".join(f"{ln}\n" for ln in lines), encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot write {target}: {exc.strerror or exc}") from None
        self.post_message(self.Done(f"saved {len(lines):,} lines to {target}"))

    # --- restart and token limits ----------------------------------------------------------------

    def action_restart(self) -> None:
        app, env = self.app_name, self.env
        fields = (
            [Field("reason", "Reason", placeholder="why (recorded)", required=True)]
            if self.protected
            else []
        )
        form = FormScreen(
            f"Restart {app} in {env}?",
            Text(
                f"Restarts the live color of {app} in place, then checks its health. "
                "Requests in flight may fail."
            ),
            fields,
            confirm="restart",
            danger=True,
        )

        def answered(values: Values | None) -> None:
            if values is not None:
                self._restart(app, env, values.get("reason") or None)

        self.app.push_screen(form, answered)

    @work(thread=True, exit_on_error=False, group="ops-task")
    def _restart(self, app: str, env: str, reason: str | None) -> None:
        from shipdeck.core.services.tasks import restart

        health = restart(self.ctx, app, env, reason=reason)
        self.post_message(self.Done(f"{app}/{env} restarted: {strip_controls(health.detail)}"))

    def action_limits(self) -> None:
        old = self.limits
        if old is None:
            return
        app, env = self.app_name, self.env

        def wanted(values: Values) -> TokenLimits:
            tpm, rpm = values.get("tpm", ""), values.get("rpm", "")
            return TokenLimits(
                int(tpm) if tpm.isdigit() and int(tpm) > 0 else old.tpm,
                int(rpm) if rpm.isdigit() and int(rpm) > 0 else old.rpm,
            )

        fields = [
            Field("tpm", "Tokens per minute", str(old.tpm or ""), check=positive_int),
            Field("rpm", "Requests per minute", str(old.rpm or ""), check=positive_int),
            Field(
                "reason",
                "Reason",
                placeholder="why (recorded)",
                required=self.protected,
            ),
        ]
        form = FormScreen(
            f"Token limits of {app} in {env}",
            Text("Empty keeps a value. Current and new:"),
            fields,
            confirm="review",
            preview=lambda values: limits_change(old, wanted(values)),
        )

        def answered(values: Values | None) -> None:
            if values is None:
                return
            new = wanted(values)
            if new == old:
                self.notify("nothing to change: the limits stay as they are", markup=False)
                return
            confirm = FormScreen(
                f"Change token limits of {app} in {env}?",
                limits_change(old, new),
                confirm="apply",
                danger=True,
            )
            reason = values.get("reason") or None

            def confirmed(ok: Values | None) -> None:
                if ok is not None:
                    self._set_limits(app, env, old, new, reason)

            self.app.push_screen(confirm, confirmed)

        self.app.push_screen(form, answered)

    @work(thread=True, exit_on_error=False, group="ops-task")
    def _set_limits(
        self, app: str, env: str, old: TokenLimits, new: TokenLimits, reason: str | None
    ) -> None:
        from shipdeck.core.services.tasks import set_limits

        change = set_limits(
            self.ctx,
            app,
            env,
            tpm=new.tpm if new.tpm != old.tpm else None,
            rpm=new.rpm if new.rpm != old.rpm else None,
            reason=reason,
        )
        note = f"{app}/{env}: tpm {limit(change.new.tpm)}, rpm {limit(change.new.rpm)}"
        self.post_message(self.Done(note, change.new, (app, env)))

    @on(Done)
    def _done(self, message: Done) -> None:
        self.notify(message.note, title="done", markup=False)
        if message.limits is not None and message.where == (self.app_name, self.env):
            self.limits = message.limits
            self._show_limits()
