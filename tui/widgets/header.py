"""The top lines every screen shows: where you are, who you are, and whether anything may change.

`HeaderBar` (one line) names the workspace, the database (never with its password), the actor with
roles ("alice (delegated by ci-runner)" when the OS user delegates) and a READ-ONLY badge; `WindowsBar` gives each environment's window state and a countdown to
the next flip, recomputed from the pure window policy on a one-second tick (no IO).
"""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget
from textual.widgets import Static

from shipdeck.core.domain.windows import WindowState, describe_next, window_state
from shipdeck.core.services.context import Context


def session_ctx(widget: Widget, given: Context) -> Context:
    """The app's current context (it is rebuilt when shipdeck.toml changes), else the one given."""
    current = getattr(widget.app, "ctx", None) if widget.is_attached else None
    return current if isinstance(current, Context) else given


def is_read_only(ctx: Context) -> bool:
    return ctx.read_only or not ctx.actor.permissions


class HeaderBar(Static):
    """Workspace, database, actor and roles, READ-ONLY badge."""

    DEFAULT_CSS = """
    HeaderBar { height: 1; background: $panel; color: $text; }
    """

    def __init__(self, ctx: Context, title: str = "", **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._ctx = ctx
        self.title = title

    @property
    def ctx(self) -> Context:
        return session_ctx(self, self._ctx)

    def render(self) -> Text:
        ctx = self.ctx
        roles = ", ".join(ctx.actor.roles) or "no role"
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(" shipdeck ", style="bold reverse")
        if self.title:
            text.append(f" {self.title}", style="bold")
        text.append(f"  {ctx.config.name}", style="bold")
        text.append(f"  {ctx.actor.name}", style="bold")
        if ctx.actor.name != ctx.actor.os_user:
            text.append(f" (delegated by {ctx.actor.os_user})", style="dim")
        text.append(f" ({roles})")
        if is_read_only(ctx):
            text.append("  READ-ONLY ", style="bold black on yellow")
        text.append(f"  {ctx.database_label}", style="dim")
        return text


def env_timezone(ctx: Context, env: str) -> str:
    """Show times in the zone of the environment's first window (people think in that zone)."""
    from shipdeck.core.services.plans import window_tz

    return window_tz(ctx, env)


class WindowsBar(Static):
    """One line per environment: open or closed, why, and when that flips."""

    DEFAULT_CSS = """
    WindowsBar { height: auto; padding: 0 1; }
    """

    def __init__(self, ctx: Context, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._ctx = ctx

    @property
    def ctx(self) -> Context:
        return session_ctx(self, self._ctx)

    def on_mount(self) -> None:
        self.set_interval(1.0, self.refresh)

    def states(self) -> dict[str, WindowState]:
        now = self.ctx.now()
        return {
            e: window_state(*self.ctx.config.window_specs(e), now)
            for e in self.ctx.config.env_order()
        }

    def render(self) -> Text:
        now = self.ctx.now()
        envs = self.ctx.config.env_order()
        width = max((len(e) for e in envs), default=0)
        text = Text(no_wrap=True, overflow="ellipsis")
        for i, (env, state) in enumerate(self.states().items()):
            if i:
                text.append("\n")
            text.append(f"{env:<{width}} ", style="bold")
            if state.open:
                text.append("● open   ", style="green")
            elif state.blocker_kind == "frozen":
                text.append("■ frozen ", style="bold red")
            else:
                text.append("○ closed ", style="yellow")
            text.append(describe_next(state, env_timezone(self.ctx, env), now), style="dim")
        return text
