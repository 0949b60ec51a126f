"""Day-2 work on a live app: its logs (tail, follow, search, save), a restart, its token limits.

Pick the app and the environment at the top. Everything goes through core.services.tasks, which
audits each call and enforces the environment's task roles; this screen only offers what the
person may do there. The screen is the wiring: the choice of app and environment, the keys and
who may press them, and the restart; the log lines are a LogPanel (widgets.log_panel) and the
token limits a TokenLimitsLine (widgets.token_limits), each told what to show when the choice
changes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Select, Static

from shipdeck.core.domain.redact import strip_controls
from shipdeck.tui.screens.base import ShipdeckScreen
from shipdeck.tui.widgets.footer import KeysFooter
from shipdeck.tui.widgets.form import Field, FormScreen, Values
from shipdeck.tui.widgets.header import HeaderBar
from shipdeck.tui.widgets.log_panel import LogPanel
from shipdeck.tui.widgets.token_limits import TokenLimitsLine
from shipdeck.tui.widgets.vim import VimLog

if TYPE_CHECKING:
    from shipdeck.core.services.actions import Action


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

    class Restarted(Message):
        def __init__(self, note: str) -> None:
            super().__init__()
            self.note = note

    def __init__(self) -> None:
        super().__init__()
        config = self.ctx.config
        self.app_name = next(iter(config.apps), "")
        self.env = next(iter(config.env_order()), "")
        self.log_panel = LogPanel(self.ctx, id="ops-logs")
        self.token_limits = TokenLimitsLine(self.ctx, id="ops-limits")

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
        yield self.token_limits
        yield self.log_panel
        yield KeysFooter()

    def on_mount(self) -> None:
        config = self.ctx.config
        for which, names in (("app", list(config.apps)), ("env", config.env_order())):
            # as wide as the longest name, its arrow and padding: room for the target line
            self.query_one(f"#ops-{which}", Select).styles.width = (
                max(map(len, names), default=4) + 5
            )
        self.query_one(VimLog).focus()
        self._picked()
        self.mark_loaded(self.shipdeck.head_seq or 0)

    def on_screen_suspend(self) -> None:
        """Another section (or a screen pushed over this one) ends following, as leaving k9s's
        log view does: a follower nobody watches would keep reading the remote log. A dialog
        asked from here (save, restart, limits) is a modal over it and leaves it running."""
        if not isinstance(self.app.screen, ModalScreen):
            self.log_panel.stop_following()

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
            return action != "limits" or self.token_limits.limits is not None
        if action in ("save", "search"):
            return bool(self.log_panel.lines)
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
        self.log_panel.show(self.app_name, self.env)
        self._describe_target()
        logs, limits = self.task_action("task.logs"), self.task_action("task.token-limit")
        why_not: Text | None = None
        if not logs.allowed:
            why_not = Text(logs.why_not, style="dim")
        elif any(r.kind == "not_configured" for r in limits.reasons):
            why_not = Text("token limits  none configured here", style="dim")
        self.token_limits.show(self.app_name, self.env, why_not)
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

    @on(LogPanel.Pulled)
    def _pulled(self, message: LogPanel.Pulled) -> None:
        self.mark_loaded(message.head_seq)

    # --- the keys --------------------------------------------------------------------------------

    def action_logs(self) -> None:
        self.log_panel.pull()

    def action_follow(self) -> None:
        self.log_panel.toggle_follow()

    def action_search(self) -> None:
        self.log_panel.search()

    def action_clear_search(self) -> None:
        self.log_panel.clear_search()

    def action_save(self) -> None:
        self.log_panel.save()

    def action_limits(self) -> None:
        self.token_limits.change(reason_required=self.protected)

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
        self.post_message(self.Restarted(f"{app}/{env} restarted: {strip_controls(health.detail)}"))

    @on(Restarted)
    def _restarted(self, message: Restarted) -> None:
        self.notify(message.note, title="done", markup=False)
