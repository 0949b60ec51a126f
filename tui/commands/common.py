"""Helpers every command module shares: opening the context, confirmations, time options."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import TYPE_CHECKING, Any

from shipdeck.core.errors import ConfirmationNeeded, UsageError
from shipdeck.tui import output

if TYPE_CHECKING:  # the services (and SQLAlchemy) load only when a command runs
    from shipdeck.core.services.context import Context


def context(**kwargs: Any) -> Context:
    from shipdeck.core.bootstrap import open_context

    ctx = open_context(output.OPTIONS.workspace, read_only=output.OPTIONS.read_only, **kwargs)
    output.OPTIONS.secrets = ctx.secrets
    return ctx


class InterruptStop(threading.Event):
    """A follower's stop that Ctrl-C sets without taking a lock in the signal handler.

    The KeyboardInterrupt that SIGINT raises can land inside a finaliser (a garbage-collected
    connection or generator), where Python prints and drops it: the follower would then run on
    forever. The handler also sets a plain flag, which `is_set` and `wait` read on the next poll.
    """

    def __init__(self) -> None:
        super().__init__()
        self.interrupted = False

    def is_set(self) -> bool:
        return self.interrupted or super().is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self.interrupted or super().wait(timeout)


@contextmanager
def interrupt_stop() -> Iterator[InterruptStop]:
    """A stop for followers; Ctrl-C ends them with KeyboardInterrupt (exit 130) even when the
    first interrupt was swallowed, and the follower is stopped however the block ends."""
    stop = InterruptStop()

    def on_sigint(signum: int, frame: FrameType | None) -> None:
        stop.interrupted = True
        raise KeyboardInterrupt

    # A follower started with SIGINT ignored (nohup, `cmd &` in a script) stays deaf to it.
    previous = signal.getsignal(signal.SIGINT)
    if previous is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, on_sigint)
    try:
        yield stop
        if stop.interrupted:  # the follower saw the flag: the exception itself was lost
            raise KeyboardInterrupt
    finally:
        signal.signal(signal.SIGINT, previous)
        stop.set()


def confirm(question: str) -> None:
    """Ask on a TTY; without one (or with --no-input) exit 3 unless --yes was given."""
    if output.OPTIONS.yes:
        return
    if output.OPTIONS.no_input or not sys.stdin.isatty():
        raise ConfirmationNeeded(f"{question} needs confirmation: pass --yes")
    import typer

    if not typer.confirm(question, default=False, err=True):
        raise ConfirmationNeeded(f"{question}: not confirmed")


def parse_instant(text: str | None, option: str) -> datetime | None:
    """ISO dates/times (UTC when no offset) or a duration back from now ('2h', '7d')."""
    if text is None:
        return None
    from shipdeck.core.domain.windows import parse_duration

    try:
        return datetime.now(UTC) - parse_duration(text)
    except ValueError:
        pass
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(
            f"{option} '{text}': expected an ISO date/time or a duration like 2h"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def parse_span(text: str | None, option: str) -> timedelta | None:
    """A length of time given to `option` ('90s', '1h'); a bad one is a usage error naming it."""
    if text is None:
        return None
    from shipdeck.core.domain.windows import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise UsageError(f"{option}: {exc}") from None


def utc_when(at: object) -> str:
    """A stored time as the CLI prints it, or "-" when there is none."""
    return f"{at:%Y-%m-%d %H:%M} UTC" if isinstance(at, datetime) else "-"
