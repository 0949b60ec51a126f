"""The `shipdeck` entry point: global options, command registration, exit codes.

Commands live in tui/commands/ (one module per noun). Textual is imported only by the commands that
open the TUI, so scripts never pay for it.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import typer

from shipdeck import __version__
from shipdeck.core.errors import ExitCode, ShipdeckError
from shipdeck.tui import opened, output
from shipdeck.tui.argv import hoist_global_options
from shipdeck.tui.commands import (
    audit,
    meta,
    overrides,
    plans,
    releases,
    serve,
    shipping,
    status,
    tasks,
    workspace,
)

app = typer.Typer(
    name="shipdeck",
    help="Release console for AI-enabled apps: see what is live, ship plans, prove who did what.",
    no_args_is_help=False,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"shipdeck {__version__}")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def _root(
    ctx: typer.Context,
    workspace_dir: str | None = typer.Option(
        None,
        "--workspace",
        "-w",
        help="Workspace folder (default: SHIPDECK_WORKSPACE or nearest shipdeck.toml).",
    ),
    out: str = typer.Option(
        "table", "--output", "-o", help="table, wide (never cut cells), json or yaml."
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="Answer yes to confirmations."),
    no_input: bool = typer.Option(False, "--no-input", help="Never prompt; fail instead."),
    read_only: bool = typer.Option(False, "--read-only", help="Refuse every change (auditors)."),
    _version: bool = typer.Option(
        False,
        "--version",
        is_eager=True,
        callback=_print_version,
        help="Print the version and exit.",
    ),
) -> None:
    """Global options go before or after the command (`shipdeck status -o json`)."""
    if out not in output.FORMATS:
        raise typer.BadParameter(
            f"'{out}': expected {', '.join(output.FORMATS)}", param_hint="--output"
        )
    output.OPTIONS.workspace = workspace_dir
    output.OPTIONS.output = out
    output.OPTIONS.yes = yes
    output.OPTIONS.no_input = no_input
    output.OPTIONS.read_only = read_only
    if ctx.invoked_subcommand is None:
        if output.on_terminal():
            from shipdeck.tui.commands.tui import open_tui

            open_tui(workspace_dir, read_only=read_only)
        else:
            typer.echo(ctx.get_help())


workspace.register(app)
status.register(app)
releases.register(app)
plans.register(app)
overrides.register(app)
shipping.register(app)
tasks.register(app)
audit.register(app)
meta.register(app)
serve.register(app)


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and return the exit code instead of raising (tests call this in-process)."""
    # Reset in place (modules may hold the object): nothing leaks from a previous in-process run.
    vars(output.OPTIONS).update(vars(output.Options()))
    command = typer.main.get_group(app)
    meta.prepare_completion()
    args = hoist_global_options(command, sys.argv[1:] if argv is None else argv)
    try:
        result: Any = command.main(args=args, prog_name="shipdeck", standalone_mode=False)
        code = int(result) if isinstance(result, int) else 0
        if code == ExitCode.INTERRUPTED:  # Typer turns Ctrl-C into a silent Exit(130)
            return output.fail(ExitCode.INTERRUPTED, "interrupted", "interrupted")
        return code
    except ShipdeckError as exc:
        return output.fail(exc.exit_code, exc.kind, exc.message, exc.blockers)
    except typer.Abort:
        return output.fail(ExitCode.INTERRUPTED, "interrupted", "aborted")
    except typer.TyperException as exc:
        # Typer vendors click: its UsageError/ClickException derive from TyperException, not from
        # the `click` package's classes. An unknown command fails before the root callback has
        # stored -o, so take it from the parsed root context for the JSON error document.
        ctx = getattr(exc, "ctx", None)
        where = ""
        if ctx is not None:
            out = ctx.find_root().params.get("out")
            if out in output.FORMATS:
                output.OPTIONS.output = out
            sub = ctx.command_path.partition(" ")[2]
            where = f" (try 'shipdeck {sub} --help')" if sub else " (try 'shipdeck --help')"
        message = exc.format_message()
        if type(exc).__name__ == "NoArgsIsHelpError":  # `shipdeck audit`: its message is the help
            sys.stderr.write(message.rstrip("\n") + "\n\n")
            message = "missing command"
        return output.fail(ExitCode.USAGE, "usage", message + where)
    except PermissionError as exc:  # a file this user may not touch: name it, the user, the fix
        from shipdeck.core.services.admin import permission_denied

        denied = permission_denied(exc)
        return output.fail(denied.exit_code, denied.kind, denied.message)
    except KeyboardInterrupt:
        return output.fail(ExitCode.INTERRUPTED, "interrupted", "interrupted")
    except BrokenPipeError:
        return 0
    except Exception as exc:  # a bug: one line, no traceback unless asked for
        if os.environ.get("SHIPDECK_DEBUG"):
            raise
        return output.fail(
            ExitCode.BUG, "bug", f"unexpected {type(exc).__name__}: {exc} (a bug: please report it)"
        )


def main() -> None:
    # What is imported by now lives until exit (tui/__init__.py): frozen, no garbage collection
    # walks it again, which also takes ~100 ms off the interpreter's exit (bench/status_json.py).
    opened()
    sys.exit(run())


if __name__ == "__main__":
    main()
