"""`shipdeck serve`: the TUI in a browser (textual-serve), for auditors reached through SSH.

Each browser session starts its own `shipdeck tui` process as this server's OS user: that user is
the identity shown and recorded (SHIPDECK_ACTOR is dropped, so a delegation in the server's own
environment never leaks into the sessions). Read-only unless `--writable`; bound to loopback
unless `--allow-remote`, since the intended path in is `ssh -L PORT:127.0.0.1:PORT host`.
"""

from __future__ import annotations

import ipaddress
import os
import shlex
import sys

import typer

from shipdeck.core.errors import UsageError
from shipdeck.tui import output
from shipdeck.tui.commands.common import context

DEFAULT_PORT = 8765


def check_bind(host: str, allow_remote: bool) -> None:
    """Loopback only, unless the operator says otherwise on the command line."""
    if allow_remote or host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        raise UsageError(
            f"--host '{host}': give a loopback IP address (127.0.0.1 or ::1), "
            "or pass --allow-remote to bind another address"
        ) from None
    if not loopback:
        raise UsageError(
            f"--host {host}: not a loopback address; reach shipdeck serve through an SSH tunnel "
            f"(ssh -L {DEFAULT_PORT}:127.0.0.1:{DEFAULT_PORT} HOST) or pass --allow-remote"
        )


def session_command(workspace: str, writable: bool) -> str:
    """The shell command textual-serve runs for each browser session."""
    argv = [sys.executable, "-m", "shipdeck", "--workspace", workspace]
    return shlex.join([*argv, *([] if writable else ["--read-only"]), "tui"])


def register(app: typer.Typer) -> None:
    @app.command("serve")
    def serve(
        host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (loopback)."),
        port: int = typer.Option(DEFAULT_PORT, "--port", min=1, max=65535),
        allow_remote: bool = typer.Option(
            False, "--allow-remote", help="Allow a non-loopback --host (no tunnel in front)."
        ),
        writable: bool = typer.Option(
            False, "--writable", help="Sessions may change state (default: read-only)."
        ),
    ) -> None:
        """The TUI in a browser, read-only, on 127.0.0.1 (open it through an SSH tunnel)."""
        check_bind(host, allow_remote)
        try:
            from textual_serve.server import Server
        except ImportError:
            raise UsageError(
                "shipdeck serve needs textual-serve: pip install 'shipdeck[serve]'"
            ) from None
        os.environ.pop("SHIPDECK_ACTOR", None)
        ctx = context()  # validates the workspace and its config before anyone connects
        mode = "read-write" if writable and not output.OPTIONS.read_only else "read-only"
        output.info(
            f"serving {ctx.workspace} as OS user {ctx.actor.os_user} ({mode}) on "
            f"http://{host}:{port}/ — from your machine: ssh -L {port}:127.0.0.1:{port} HOST"
        )
        command = session_command(str(ctx.workspace), writable and not output.OPTIONS.read_only)
        server = Server(command, host=host, port=port, title="shipdeck")
        try:
            server.serve()
        except OSError as exc:
            raise UsageError(f"--port {port}: cannot listen on {host}: {exc.strerror}") from None
