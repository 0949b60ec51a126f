"""Widgets that run workers of their own, whose failures must still reach the person.

A failed worker is reported to the node that started it and to nothing else. Screens show those
reports (ShipdeckScreen); a widget that starts workers mixes this in so its failures travel up as
`WorkFailed` and are shown the same way, instead of vanishing.
"""

from __future__ import annotations

from textual import on
from textual.widget import Widget
from textual.worker import Worker, WorkerState

from shipdeck.tui.messages import WorkFailed


class ReportsFailures(Widget):
    """Mix in before the widget's own base: `class LogPanel(Vertical, ReportsFailures)`."""

    @on(Worker.StateChanged)
    def _worker_failed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            self.post_message(WorkFailed(event.worker.error))
