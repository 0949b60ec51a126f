"""Typed messages that thread workers post back to the UI thread.

Workers never touch widgets: they compute, then post one of these; the `@on` handlers of the screen
that started them update widgets. Each carries a `generation` where results can arrive out of order
(a thread worker cannot be stopped, only ignored), so a handler drops answers to stale questions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from textual.message import Message

if TYPE_CHECKING:
    from shipdeck.core.services.audit_log import Event, VerifyResult
    from shipdeck.core.services.context import Context
    from shipdeck.core.services.status import AppStatus
    from shipdeck.core.services.views import AppView
    from shipdeck.core.workspace import ConfigStamp


class HeadChanged(Message):
    """Someone (this session, another one, the CLI) appended to the audit log: state changed."""

    def __init__(self, seq: int, digest: str) -> None:
        super().__init__()
        self.seq = seq
        self.digest = digest

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, HeadChanged)


class ConfigChanged(Message):
    """shipdeck.toml changed on disk: the session rebuilt on it (ctx), or why it cannot be."""

    def __init__(self, ctx: Context | None, problem: str, stamp: ConfigStamp | None) -> None:
        super().__init__()
        self.ctx = ctx
        self.problem = problem
        self.stamp = stamp


class StatusLoaded(Message):
    """The dashboard's matrix data: one `AppStatus` per app."""

    def __init__(self, apps: list[AppStatus], head_seq: int) -> None:
        super().__init__()
        self.apps = apps
        self.head_seq = head_seq


class AppViewLoaded(Message):
    def __init__(self, view: AppView, head_seq: int) -> None:
        super().__init__()
        self.view = view
        self.head_seq = head_seq


@dataclass(frozen=True)
class AuditShape:
    """How many rows the audit view has and how rows map to sequence numbers.

    Unfiltered, the log is gapless, so row r is event `top_seq - r` and no count is needed.
    """

    total: int
    top_seq: int
    filtered: bool


class AuditShapeLoaded(Message):
    def __init__(self, generation: int, shape: AuditShape) -> None:
        super().__init__()
        self.generation = generation
        self.shape = shape


class AuditRowsLoaded(Message):
    """A window of audit rows (row index -> event), fetched by keyset for the visible part."""

    def __init__(self, generation: int, first: int, count: int, rows: dict[int, Event]) -> None:
        super().__init__()
        self.generation = generation
        self.first = first
        self.count = count
        self.rows = rows


class VerifyFinished(Message):
    def __init__(self, result: VerifyResult) -> None:
        super().__init__()
        self.result = result


class ExportFinished(Message):
    def __init__(self, path: str, count: int) -> None:
        super().__init__()
        self.path = path
        self.count = count


class CheckpointWritten(Message):
    def __init__(self, seq: int, digest: str, location: str) -> None:
        super().__init__()
        self.seq = seq
        self.digest = digest
        self.location = location


class MetricsLoaded(Message):
    def __init__(self, report: Any, head_seq: int) -> None:
        super().__init__()
        self.report = report
        self.head_seq = head_seq


class WorkFailed(Message):
    """A widget's own worker failed: its screen shows why (ShipdeckScreen), as for its own.

    Textual sends Worker.StateChanged only to the node that started the worker (it does not
    bubble), so a widget with workers forwards their failures with this (widgets.working)."""

    def __init__(self, error: BaseException) -> None:
        super().__init__()
        self.error = error
