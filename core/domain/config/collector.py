"""The error collector the section parsers share: it walks the raw TOML and records
`file: key.path: problem` lines instead of stopping at the first, so one `shipdeck config check`
run shows all there is to fix."""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from typing import Any

CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# App and environment names become folder and file names (target state, logs), plan references
# (`web@1.0.0`) and audit fields: a letter or digit first, then letters, digits, '.', '_', '-'.
# Nothing else, so no name can hold a path separator, be '.' or '..', or read differently on
# screen than in the record.
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def escape_controls(text: str) -> str:
    """Control characters as Python escapes (`\\n`, `\\x1e`), so a quoted key or value can never
    break a one-line message."""
    return CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


def join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def seconds_at(c: Collector, raw: Mapping[str, Any], path: str, key: str) -> float | None:
    """An optional positive, finite number of seconds (a command's `timeout`)."""
    value = c.get(raw, path, key, (int, float))
    if value is None:
        return None
    if isinstance(value, bool) or not 0 < value < float("inf"):
        c.err(join(path, key), f"must be a positive number of seconds, not {value!r}")
        return None
    return float(value)


def typename(value: Any) -> str:
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "an array",
        dict: "a table",
    }.get(type(value), type(value).__name__)


def _kindname(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(
        typename(k()) if k in (bool, int, float, str, list, dict) else k.__name__ for k in kinds
    )


def _closest(word: str, options: list[str]) -> str | None:
    match = difflib.get_close_matches(word, options, n=1, cutoff=0.75)
    return match[0] if match else None


class Collector:
    """Typed reads of raw TOML values; each mistake becomes one recorded line."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.errors: list[str] = []

    def err(self, path: str, message: str) -> None:
        # Keys and values are quoted into the message: escape their control characters so each
        # problem stays one line (a quoted TOML key may hold a newline).
        self.errors.append(escape_controls(f"{self.filename}: {path}: {message}"))

    def name(self, path: str, what: str, name: str) -> None:
        """Record why `name` (an app's, an environment's) cannot be one, if it cannot."""
        if not NAME.fullmatch(name):
            self.err(
                path,
                f"{what} name {name!r} must start with a letter or digit and hold only letters, "
                "digits, '.', '_' and '-' (64 at most): it names folders and files",
            )

    def unknown(self, path: str, what: str, value: str, options: list[str]) -> None:
        hint = _closest(value, options)
        self.err(path, f"unknown {what} '{value}'" + (f" (did you mean '{hint}'?)" if hint else ""))

    def table(self, raw: Any, path: str) -> dict[str, Any]:
        if raw is None:
            return {}
        if not isinstance(raw, dict):
            self.err(path, f"must be a table, not {typename(raw)}")
            return {}
        return raw

    def keys(
        self, raw: Mapping[str, Any], path: str, allowed: set[str] | Mapping[str, Any]
    ) -> None:
        for key in raw:
            if key not in allowed:
                hint = _closest(key, list(allowed))
                self.err(
                    join(path, key), "unknown key" + (f" (did you mean '{hint}'?)" if hint else "")
                )

    def get(
        self,
        raw: Mapping[str, Any],
        path: str,
        key: str,
        kind: type | tuple[type, ...],
        default: Any = None,
        required: bool = False,
    ) -> Any:
        if key not in raw:
            if required:
                self.err(join(path, key), "required key is missing")
            return default
        value = raw[key]
        if (kind is int and isinstance(value, bool)) or not isinstance(value, kind):
            self.err(join(path, key), f"must be {_kindname(kind)}, not {typename(value)}")
            return default
        return value

    def choice(
        self, raw: Mapping[str, Any], path: str, key: str, options: Sequence[str], default: str
    ) -> str | None:
        """A string that must be one of two or so `options`; None (recorded) when it is not."""
        value = self.get(raw, path, key, str, default)
        if value not in options:
            allowed = " or ".join(f"'{o}'" for o in options)
            self.err(join(path, key), f"must be {allowed}, not '{value}'")
            return None
        return str(value)

    def strings(self, raw: Mapping[str, Any], path: str, key: str) -> tuple[str, ...]:
        value = self.get(raw, path, key, list, [])
        out: list[str] = []
        for i, item in enumerate(value):
            if not isinstance(item, str):
                self.err(f"{join(path, key)}[{i}]", f"must be a string, not {typename(item)}")
            else:
                out.append(item)
        return tuple(out)

    def refs(
        self, raw: Mapping[str, Any], path: str, key: str, what: str, known: Mapping[str, Any]
    ) -> tuple[str, ...]:
        """A list of names that must each name an entry of `known`; the unknown ones are
        recorded and left out."""
        names = self.strings(raw, path, key)
        for i, name in enumerate(names):
            if name not in known:
                self.unknown(f"{join(path, key)}[{i}]", what, name, list(known))
        return tuple(n for n in names if n in known)
