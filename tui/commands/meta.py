"""About the tool itself: `shipdeck version` and `shipdeck completion SHELL`."""

from __future__ import annotations

import typer

from shipdeck import __version__
from shipdeck.core.errors import UsageError
from shipdeck.tui import output

SHELLS = ("bash", "zsh", "fish")
# The variable the completion scripts set when they call shipdeck back for candidates; Click's
# convention is `_<PROG>_COMPLETE`, handled inside the command's main() before any parsing.
COMPLETE_VAR = "_SHIPDECK_COMPLETE"


def register(app: typer.Typer) -> None:
    @app.command("version")
    def version() -> None:
        """Print shipdeck's version (with -o json: a document scripts can read)."""
        if output.OPTIONS.machine:
            output.emit({"version": __version__})
        else:
            output.say(f"shipdeck {__version__}")

    @app.command("completion")
    def completion(
        shell: str = typer.Argument(..., metavar="SHELL", help="bash, zsh or fish."),
    ) -> None:
        """Print a shell completion script: `source <(shipdeck completion bash)`."""
        if shell not in SHELLS:
            raise UsageError(f"completion: unknown shell '{shell}' (expected bash, zsh or fish)")
        # Typer's templates: they speak the protocol its completion classes answer
        # (COMP_WORDS/COMP_CWORD for bash, _TYPER_COMPLETE_ARGS for zsh and fish).
        from typer.completion import get_completion_script

        script = get_completion_script(prog_name="shipdeck", complete_var=COMPLETE_VAR, shell=shell)
        typer.echo(script)


def prepare_completion() -> None:
    """When a completion script calls us back for candidates, register Typer's completion
    classes before the command's main() answers: add_completion=False leaves them out
    (together with Typer's own --install-completion options, which `completion` replaces)."""
    import os

    if COMPLETE_VAR in os.environ:
        from typer.completion import completion_init

        completion_init()
