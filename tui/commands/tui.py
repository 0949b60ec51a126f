"""Opening the Textual app: the only path from the CLI that imports textual."""

from __future__ import annotations

import os

from shipdeck.core.errors import UsageError
from shipdeck.tui import output


def require_terminal(command: str, instead: str) -> None:
    """Refuse (exit 2) a full-screen command without a terminal on both ends: Textual would
    otherwise write escape codes into a pipe until killed. A session that textual-serve drives
    (`shipdeck serve` sets TEXTUAL_DRIVER to its web driver) talks to a browser, not a pipe."""
    if not output.on_terminal() and not os.environ.get("TEXTUAL_DRIVER"):
        raise UsageError(f"{command} needs a terminal (stdin and stdout); {instead}")


def open_tui(workspace: str | None, *, read_only: bool = False) -> None:
    require_terminal("shipdeck tui", "run it in a terminal, or use the headless commands")
    try:
        from shipdeck.tui.app import run_app
    except ImportError as exc:
        raise UsageError(
            f"the TUI is not available yet ({exc.name}); use the headless commands"
        ) from exc
    run_app(workspace, read_only=read_only)
    from shipdeck.core.demo import still_running_notice
    from shipdeck.core.workspace import find_workspace

    notice = still_running_notice(find_workspace(workspace))
    if notice:
        output.info(f"shipdeck: {notice}")
