"""Global options anywhere on the command line: `shipdeck status -o json` == `shipdeck -o json status`.

Click only parses the root's options before the verb. Rather than declare `-o`, `--yes`, ... on
every command, the arguments are rearranged once before parsing: each root option found after the
verb moves to the front. The walk follows the command tree, so it knows which tokens are values of
a subcommand's own options (`--notes --yes` keeps `--yes` as the note) and stops at `--`.
"""

from __future__ import annotations

from typing import Any

from typer.core import TyperGroup, TyperOption


def _options(command: Any) -> dict[str, TyperOption]:
    return {
        name: p
        for p in command.params
        if isinstance(p, TyperOption)
        for name in (*p.opts, *p.secondary_opts)
    }


def _takes_value(option: TyperOption) -> bool:
    return not option.is_flag and not option.count


def _split(token: str, options: dict[str, Any]) -> tuple[str, bool]:
    """The option name in `token` and whether its value is attached (`--output=json`, `-ojson`)."""
    if token.startswith("--"):
        name, eq, _ = token.partition("=")
        return name, bool(eq)
    if len(token) > 2 and token[:2] in options:
        return token[:2], True
    return token, False


def hoist_global_options(root: TyperGroup, argv: list[str]) -> list[str]:
    """`argv` with every root option that follows the verb moved in front of it."""
    globals_ = _options(root)
    front: list[str] = []
    rest: list[str] = []
    command: Any = root  # a TyperGroup or a leaf TyperCommand
    own: dict[str, TyperOption] = {}
    i = 0
    while i < len(argv):
        token = argv[i]
        if token == "--":
            rest.extend(argv[i:])
            break
        if token.startswith("-") and token != "-":
            name, attached = _split(token, {**globals_, **own})
            option = own.get(name) if command is not root else None
            target = rest
            if option is None and name in globals_:
                option, target = globals_[name], front
            width = 2 if option is not None and _takes_value(option) and not attached else 1
            target.extend(argv[i : i + width])
            i += width
            continue
        if isinstance(command, TyperGroup) and token in command.commands:
            command = command.commands[token]
            own = _options(command)
        rest.append(token)
        i += 1
    return front + rest
