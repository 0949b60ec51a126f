"""A live app's log lines on the Ops screen: the last lines, following, search, and saving.

Log lines are remote text: they are shown as rich Text after strip_controls, so neither escape
sequences nor markup such as `[bold]` can change the screen. Following runs in a worker thread
that stops on an Event (`f` again, another app or environment, or leaving the screen); lines land
in a buffer and one collapsing message tells the panel to drain it, so a burst of lines costs one
repaint. The screen picks the app and environment and decides whether the person may read logs
there; everything read goes through core.services.tasks, which audits it.
"""

from __future__ import annotations

import threading
from collections import deque
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Input, Static

from shipdeck.core.domain.redact import strip_controls
from shipdeck.core.services.context import Context
from shipdeck.tui.messages import WorkFailed
from shipdeck.tui.screens.prompt import PromptScreen
from shipdeck.tui.widgets.header import session_ctx
from shipdeck.tui.widgets.vim import VimLog
from shipdeck.tui.widgets.working import ReportsFailures

TAIL_LINES = 200
KEEP_LINES = 5_000


def marked(line: str, needle: str) -> Text:
    text = Text(strip_controls(line), no_wrap=True)
    if needle:
        text.highlight_words([needle], style="reverse", case_sensitive=False)
    return text


class LogPanel(Vertical, ReportsFailures):
    """The search box, the status line and the log of one app in one environment."""

    class Pulled(Message):
        """The last lines are shown, read when the audit log stood at `head_seq`."""

        def __init__(self, head_seq: int) -> None:
            super().__init__()
            self.head_seq = head_seq

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
            return isinstance(message, LogPanel.LinesArrived)

    class FollowEnded(Message):
        def __init__(self, generation: int, error: BaseException | None) -> None:
            super().__init__()
            self.generation = generation
            self.error = error

    class Saved(Message):
        def __init__(self, note: str) -> None:
            super().__init__()
            self.note = note

    def __init__(self, ctx: Context, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._ctx = ctx
        self.app_name = ""
        self.env = ""
        self.generation = 0
        self.lines: deque[str] = deque(maxlen=KEEP_LINES)
        self.needle = ""
        self.matching = 0
        self._incoming: deque[str] = deque()
        self._lock = threading.Lock()
        self._stop: threading.Event | None = None

    @property
    def ctx(self) -> Context:
        return session_ctx(self, self._ctx)

    @property
    def following(self) -> bool:
        return self._stop is not None

    def compose(self) -> ComposeResult:
        yield Input(placeholder="search the lines shown (Enter keeps, Esc clears)", id="ops-search")
        yield Static(id="ops-status")
        yield VimLog(max_lines=KEEP_LINES, id="ops-log")

    def on_mount(self) -> None:
        self.query_one("#ops-search", Input).display = False

    def on_unmount(self) -> None:
        self.stop_following()

    def show(self, app: str, env: str) -> None:
        """Another app or environment: stop following and forget the lines of the old one."""
        self.stop_following()
        self.app_name, self.env = app, env
        self.generation += 1
        self.lines.clear()
        self.query_one(VimLog).clear()
        self._status()

    def _shown(self, line: str) -> bool:
        return not self.needle or self.needle in line.lower()

    # --- the last lines and following --------------------------------------------------------

    def pull(self) -> None:
        self.stop_following()
        self.query_one("#ops-status", Static).update(Text("pulling logs…", style="bold"))
        self._pull(self.generation, self.app_name, self.env)

    @work(thread=True, exclusive=True, exit_on_error=False, group="ops-logs")
    def _pull(self, generation: int, app: str, env: str) -> None:
        from shipdeck.core.services.chain_head import head
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
        self._redraw()
        self.post_message(self.Pulled(message.head_seq))

    def toggle_follow(self) -> None:
        if self._stop is not None:
            self.stop_following()
            self._status()
            self.refresh_bindings()
            return
        self._stop = threading.Event()
        self._follow(self.generation, self.app_name, self.env, self._stop, not self.lines)
        self._status()

    @work(thread=True, exit_on_error=False, group="ops-follow")
    def _follow(
        self, generation: int, app: str, env: str, stop: threading.Event, tail_first: bool
    ) -> None:
        from shipdeck.core.services.tasks import follow_logs, pull_logs

        error: BaseException | None = None
        try:
            if tail_first:
                self._arrive(generation, pull_logs(self.ctx, app, env, lines=TAIL_LINES))
            for line in follow_logs(self.ctx, app, env, stop):
                self._arrive(generation, [line])
                if stop.is_set():
                    break
        except Exception as exc:  # shown in the UI like any failure; following just ends
            error = exc
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
        self._write(fresh)
        self._status()
        self.refresh_bindings()

    @on(FollowEnded)
    def _follow_ended(self, message: FollowEnded) -> None:
        if message.generation == self.generation:
            self._stop = None
            self._status()
            self.refresh_bindings()
        if message.error is not None:
            self.post_message(WorkFailed(message.error))

    def stop_following(self) -> None:
        if self._stop is not None:
            self._stop.set()
            self._stop = None

    # --- what is shown -----------------------------------------------------------------------

    def _write(self, lines: list[str] | deque[str]) -> None:
        """Add the lines the search lets through, marked, counting them as matches."""
        log = self.query_one(VimLog)
        for line in lines:
            if self._shown(line):
                log.add(marked(line, self.needle))
                self.matching += 1

    def _redraw(self) -> None:
        self.query_one(VimLog).clear()
        self.matching = 0
        self._write(self.lines)
        self._status()
        self.refresh_bindings()

    def _status(self) -> None:
        text = Text(no_wrap=True, overflow="ellipsis")
        where = f"{self.app_name}/{self.env}"
        if self.lines:
            text.append(f"{len(self.lines):,} lines", style="bold")
            text.append(f" from {where}")
        elif self.screen.check_action("logs", ()):  # may this person read logs here
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

    # --- search and save ---------------------------------------------------------------------

    def search(self) -> None:
        box = self.query_one("#ops-search", Input)
        box.display = True
        box.focus()

    def clear_search(self) -> None:
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

    def save(self) -> None:
        """Ask where, then write the lines shown (those the search lets through)."""
        stamp = f"{self.ctx.now():%Y%m%d-%H%M%S}"
        default = f".shipdeck/logs/{self.app_name}-{self.env}-{stamp}.log"
        shown = [ln for ln in self.lines if self._shown(ln)]
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
        self.post_message(self.Saved(f"saved {len(lines):,} lines to {target}"))

    @on(Saved)
    def _saved(self, message: Saved) -> None:
        self.notify(message.note, title="done", markup=False)
