"""Helpers every command module shares: opening the context, confirmations, time options."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
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
