"""Everything the headless CLI writes, and its exit codes (like Harlequin's hsql/diagnostics).

stdout carries only results: one JSON/YAML document or a table. Human text, progress and warnings
go to stderr. Remote text is stripped of escape sequences before it is printed.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shipdeck.core.domain.redact import (
    Redacted,
    has_unsafe_text,
    holds_known_secret,
    json_text,
    redact,
    shown,
    strip_controls,
)
from shipdeck.core.domain.secrets import environment_secrets
from shipdeck.core.errors import Blocker, ExitCode

SCHEMA_VERSION = 1
# "wide" is a table whose cells are never cut, even on a terminal.
FORMATS = ("table", "wide", "json", "yaml")


@dataclass
class Options:
    workspace: str | None = None
    output: str = "table"
    yes: bool = False
    no_input: bool = False
    read_only: bool = False
    # Credential values known from the environment and the workspace (core.domain.secrets):
    # masked in everything written, on top of the pattern-based redaction.
    secrets: tuple[str, ...] = environment_secrets(os.environ)

    @property
    def machine(self) -> bool:
        return self.output in ("json", "yaml")


OPTIONS = Options()


def _dump(doc: dict[str, Any], compact: str | None = None) -> str:
    """`doc` as the output mode writes it; `compact` is its json.dumps when already made."""
    if OPTIONS.output == "yaml":
        import yaml

        text = str(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
        # YAML writes bidi controls raw; ASCII-only output escapes them (and all else non-ASCII).
        return str(yaml.safe_dump(doc, sort_keys=False)) if has_unsafe_text(text) else text
    # Indented for a person at a terminal; compact for programs, because json's C encoder only
    # serves indent=None and is about five times faster on a 600-cell status.
    if sys.stdout.isatty():
        text = json.dumps(doc, ensure_ascii=False, indent=2, default=str)
    else:
        text = compact or json.dumps(doc, ensure_ascii=False, default=str)
    return json_text(text) + "\n"


def emit(doc: dict[str, Any]) -> None:
    """Write the one result document (json/yaml modes): redacted here, unless its builder did
    it field by field (Redacted), where only the known secret values are looked for."""
    whole = {"schema_version": SCHEMA_VERSION, **doc}
    compact = None
    if isinstance(doc, Redacted):
        compact = json.dumps(whole, ensure_ascii=False, default=str)
    if compact is None or holds_known_secret(compact, OPTIONS.secrets):
        whole, compact = redact(whole, OPTIONS.secrets), None
    sys.stdout.write(_dump(whole, compact))
    sys.stdout.flush()


def say(text: str) -> None:
    """Human text for table mode on stdout (credential-looking text masked, like JSON output)."""
    sys.stdout.write(shown(text, OPTIONS.secrets) + "\n")


def info(text: str) -> None:
    """Progress and warnings: stderr, whatever the output mode. Error messages may quote what a
    user typed (`--artifact 'hf_...'`), so credential-looking text is masked here too."""
    sys.stderr.write(shown(text, OPTIONS.secrets) + "\n")
    sys.stderr.flush()


def fail(code: ExitCode | int, kind: str, message: str, blockers: Sequence[Blocker] = ()) -> int:
    message = strip_controls(message).replace("\n", " ")
    if OPTIONS.machine:
        emit(
            {
                "error": {
                    "exit_code": int(code),
                    "kind": kind,
                    "message": message,
                    "blockers": [b.as_dict() for b in blockers],
                }
            }
        )
    prefix = "blocked" if code == ExitCode.BLOCKED else "error"
    info(f"shipdeck: {prefix}: {message}")
    for b in blockers:
        info(f"  - [{b.kind}] {b.message}")
    return int(code)


def color_enabled() -> bool:
    return sys.stdout.isatty() and "NO_COLOR" not in os.environ


def on_terminal() -> bool:
    """Both ends are a terminal: what a full-screen app (the TUI) needs to be usable."""
    return sys.stdin.isatty() and sys.stdout.isatty()


def line_width() -> int | None:
    """How many columns a line of a table may take: the terminal's width (COLUMNS wins, as for
    any curses program), or no limit when stdout is a pipe or a file, or with `-o wide`, so a
    script or `grep` sees every cell in full."""
    if OPTIONS.output == "wide" or not sys.stdout.isatty():
        return None
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    try:
        return os.get_terminal_size(sys.stdout.fileno()).columns or 80
    except (OSError, ValueError):
        return 80


def clip(text: str, width: int | None = None) -> str:
    """One line of at most `width` characters (default: line_width()), cut with an ellipsis."""
    width = line_width() if width is None else width
    if width is None or len(text) <= width:
        return text
    return text[: max(width - 1, 0)] + "…"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A plain aligned table that fits line_width(): long cells are cut, not wrapped.

    The last column (notes) keeps some room: when one long value (a version string) would push
    it off the line, the widest other columns give way first."""
    cells = [[strip_controls("" if v is None else str(v)) for v in row] for row in rows]
    width = line_width()
    widths = [len(h) for h in headers]
    for row in cells:
        for i, v in enumerate(row):
            widths[i] = max(widths[i], len(v))
    if width is None:
        _say_rows(headers, cells, widths)
        return
    keep = min(widths[-1], max(len(headers[-1]), 20))
    while sum(widths[:-1]) + 2 * (len(widths) - 1) + keep > width:
        i = max(range(len(widths) - 1), key=lambda k: widths[k] - len(headers[k]))
        if widths[i] <= len(headers[i]):
            break
        widths[i] -= 1
    fixed = sum(widths[:-1]) + 2 * (len(widths) - 1)
    widths[-1] = max(len(headers[-1]), min(widths[-1], width - fixed))

    _say_rows(headers, cells, widths, width)


def _say_rows(
    headers: Sequence[str],
    cells: Sequence[Sequence[str]],
    widths: Sequence[int],
    width: int | None = None,
) -> None:
    """The header and rows, each cell cut to its column's width (only when `width` is given)."""

    def line(values: Sequence[str]) -> str:
        parts = [
            (v if width is None else clip(v, widths[i])).ljust(widths[i])
            for i, v in enumerate(values)
        ]
        text = "  ".join(parts).rstrip()
        return text if width is None else text[:width]

    say(line(list(headers)))
    for row in cells:
        say(line(row))
