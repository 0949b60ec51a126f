"""Errors that carry the headless contract's exit codes.

Front ends never decide exit codes themselves: every failure the core can foresee is one of these,
so the CLI maps it to a code and a one-line message, and the TUI shows the same message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any


class ExitCode(IntEnum):
    OK = 0
    BUG = 1
    USAGE = 2
    BLOCKED = 3
    NOT_PERMITTED = 4
    FAILED = 5
    TIMED_OUT = 6
    INTEGRITY = 7
    INTERRUPTED = 130


@dataclass(frozen=True)
class Blocker:
    """One reason a plan may not run now, with a sentence a person can act on."""

    kind: str
    message: str
    detail: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "message": self.message, **self.detail}


def first_of(sentences: Sequence[str]) -> str:
    """The first sentence and how many more there are: one line for an error message."""
    more = f" (and {len(sentences) - 1} more)" if len(sentences) > 1 else ""
    return sentences[0] + more


def first_blocker(blockers: Sequence[Blocker]) -> str:
    return first_of([b.message for b in blockers])


class ShipdeckError(Exception):
    """Base of every foreseen failure; `kind` is the machine-readable name in JSON errors."""

    exit_code: ExitCode = ExitCode.BUG
    kind: str = "error"

    def __init__(self, message: str, *, blockers: list[Blocker] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.blockers = blockers or []


class UsageError(ShipdeckError):
    exit_code = ExitCode.USAGE
    kind = "usage"


class NotFoundError(UsageError):
    kind = "not_found"


class BlockedError(ShipdeckError):
    exit_code = ExitCode.BLOCKED
    kind = "blocked"


class ConfirmationNeeded(BlockedError):
    kind = "confirmation_needed"


class ConfigError(ShipdeckError):
    exit_code = ExitCode.NOT_PERMITTED
    kind = "config_invalid"


class DatabaseUnavailable(ShipdeckError):
    """The configured database cannot be reached: named (password masked), never replaced."""

    exit_code = ExitCode.NOT_PERMITTED
    kind = "database_unavailable"


class SchemaBehindError(ShipdeckError):
    exit_code = ExitCode.NOT_PERMITTED
    kind = "schema_behind"


class PermissionDenied(ShipdeckError):
    exit_code = ExitCode.NOT_PERMITTED
    kind = "not_permitted"


class ConflictError(ShipdeckError):
    """A request contradicts what is already recorded (e.g. same version, other content)."""

    exit_code = ExitCode.NOT_PERMITTED
    kind = "conflict"


class OperationFailed(ShipdeckError):
    exit_code = ExitCode.FAILED
    kind = "failed"


class AdapterError(OperationFailed):
    """An adapter could not do its work; the message names adapter, target and cause."""

    kind = "adapter_failed"


class TimedOut(ShipdeckError):
    exit_code = ExitCode.TIMED_OUT
    kind = "timed_out"


class IntegrityError(ShipdeckError):
    exit_code = ExitCode.INTEGRITY
    kind = "integrity"


class StorageUnwritable(ShipdeckError):
    """The database refuses writes (read-only file or transaction, missing permission): nothing
    was changed and no effect was attempted. Exit 4, like any other "not permitted"."""

    exit_code = ExitCode.NOT_PERMITTED
    kind = "storage_unwritable"


class StorageFailed(ShipdeckError):
    """The database could not finish (disk full, I/O error, connection lost): the operation ran
    and failed before its effect. Exit 5."""

    exit_code = ExitCode.FAILED
    kind = "storage_failed"


class UnsafeFile(AdapterError):
    """A workspace file that shipdeck refuses to open: a symlink planted where it reads or
    writes (exit 4, naming the file). An AdapterError, so the task that met it is audited."""

    exit_code = ExitCode.NOT_PERMITTED
    kind = "unsafe_file"
