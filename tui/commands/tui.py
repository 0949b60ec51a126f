"""Opening the Textual app: the only path from the CLI that imports textual."""

from __future__ import annotations

from shipdeck.core.errors import UsageError


def open_tui(workspace: str | None, *, read_only: bool = False) -> None:
    try:
        from shipdeck.tui.app import run_app
    except ImportError as exc:
        raise UsageError(
            f"the TUI is not available yet ({exc.name}); use the headless commands"
        ) from exc
    run_app(workspace, read_only=read_only)
