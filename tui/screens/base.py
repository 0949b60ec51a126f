"""What every shipdeck screen shares: its services, live refresh, permission-gated actions, errors.

A screen subclass declares `MUTATING = {"action_name": "permission"}`; those actions disappear
(footer, help, palette) and refuse to run when the session is read-only or the actor lacks the
permission. The core refuses them anyway; hiding them keeps auditors from meeting dead ends.

Live refresh: the app polls the audit head and calls `reload()` on the visible screen when it
moved; a screen that was hidden meanwhile reloads when it becomes visible again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from textual import events, on
from textual.screen import Screen
from textual.widget import Widget
from textual.worker import Worker, WorkerState

from shipdeck.core.domain.redact import shown
from shipdeck.core.errors import ShipdeckError
from shipdeck.core.services.context import Context
from shipdeck.tui.messages import WorkFailed

if TYPE_CHECKING:
    from shipdeck.tui.app import ShipdeckApp


def error_line(exc: BaseException) -> str:
    """One line for people: a shipdeck error's own message, anything else named as a bug."""
    if isinstance(exc, ShipdeckError):
        return shown(exc.message)  # the CLI's rule: messages quote remote text and user input
    return shown(f"unexpected {type(exc).__name__}: {exc} (a bug: please report it)")


class ShipdeckScreen(Screen[None]):
    MUTATING: ClassVar[dict[str, str]] = {}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.loaded = False  # first data shown; tests and benches wait for it
        self.seen_head: int | None = None

    @property
    def shipdeck(self) -> ShipdeckApp:
        return self.app  # type: ignore[return-value]

    @property
    def ctx(self) -> Context:
        return self.shipdeck.ctx

    def denials(self) -> dict[str, str]:
        """Actions of this screen refused to this person now, each with the core's reason.

        They leave the footer (80 columns hold only what may be done), stay listed in help and
        the palette as disabled with the reason, and pressing their key says the reason."""
        return {}

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in self.denials():
            return False
        permission = self.MUTATING.get(action)
        return permission is None or self.shipdeck.may(permission)

    def on_key(self, event: events.Key) -> None:
        """A key whose action is refused here says why, instead of doing nothing."""
        denied = self.denials()
        if not denied:
            return
        for node, bindings in self._modal_binding_chain:
            for binding in bindings.key_to_bindings.get(event.key, ()):
                if binding.action not in denied:
                    if self.app._check_action_state(binding.action, node):
                        return  # the key does something else here
                    continue
                event.stop()
                self.notify(
                    f"{binding.description}: {denied[binding.action]}",
                    severity="warning",
                    markup=False,
                )
                return

    def reload(self) -> None:
        """Fetch this screen's data again (in a worker); called on live changes."""

    def mark_loaded(self, head_seq: int) -> None:
        self.loaded = True
        self.seen_head = head_seq

    def on_screen_resume(self) -> None:
        head = self.shipdeck.head_seq
        if self.loaded and head is not None and head != self.seen_head:
            self.reload()

    @on(Worker.StateChanged)
    def _worker_failed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            self.show_error(error_line(event.worker.error))

    @on(WorkFailed)
    def _widget_work_failed(self, message: WorkFailed) -> None:
        self.show_error(error_line(message.error))

    def focus_now(self, widget: Widget) -> None:
        """Move focus before the next key is handled. Widget.focus() defers the move, so keys
        typed ahead (a burst over SSH, a paste) would still reach the old widget and fire its
        bindings: '/' then 'actor:…' must not trigger 'a' and 'c'."""
        self.set_focus(widget)

    def show_error(self, message: str) -> None:
        self.notify(message, title="error", severity="error", timeout=8, markup=False)
