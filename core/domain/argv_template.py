"""argv templates: placeholders filled INSIDE each item of a configured argv list.

Nothing is ever split or handed to a shell, so a version, commit or config value can hold spaces,
`;|&$()`, newlines or a leading "-" and still arrive as exactly one argument, byte for byte. Pure
text work, kept in the domain so config validation (`config check`) and core services (the eval
gate) use the same rules as the adapters that run commands.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

# `{{` and `}}` are literal braces; `{name}` or `{name[KEY]}` a placeholder; anything else
# between braces (or a lone brace) is a mistake worth reporting rather than passing through.
_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_PLACEHOLDER = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:\[(?P<key>[^\[\]]+)\])?")


def _parse(item: str) -> list[str | tuple[str, str | None]]:
    """Split one argv item into literal text and (name, key) placeholders."""
    parts: list[str | tuple[str, str | None]] = []
    pos = 0
    for match in _TOKEN.finditer(item):
        if match.start() > pos:
            parts.append(item[pos : match.start()])
        token = match.group(0)
        pos = match.end()
        if token in ("{{", "}}"):
            parts.append(token[0])
            continue
        inner = match.group(1)
        if inner is None:
            raise ValueError(f"lone {token!r} in argv item {item!r}; write {token * 2} for a brace")
        found = _PLACEHOLDER.fullmatch(inner)
        if found is None:
            raise ValueError(f"malformed placeholder {token} in argv item {item!r}")
        parts.append((found["name"], found["key"]))
    if pos < len(item):
        parts.append(item[pos:])
    return parts


def _label(name: str, key: str | None) -> str:
    return "{" + name + (f"[{key}]" if key is not None else "") + "}"


def placeholders(template: Sequence[str]) -> set[str]:
    """Placeholders a template uses, as written (`app`, `config[region]`), to validate config
    before anything runs; raises ValueError for malformed ones."""
    found: set[str] = set()
    for item in template:
        for part in _parse(item):
            if isinstance(part, tuple):
                found.add(_label(*part)[1:-1])
    return found


def _text(value: object, label: str) -> str:
    if value is None:
        raise ValueError(f"placeholder {label} has no value here")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, Path):
        return os.fspath(value)
    return json.dumps(value, sort_keys=True, default=str)


def render_argv(
    template: Sequence[str],
    values: Mapping[str, object],
    *,
    missing_config: str | None = None,
) -> list[str]:
    """Fill `{name}` and `{config[KEY]}` placeholders inside each item; one item in, one out.

    Raises ValueError naming the placeholder when a value is unknown or missing, except that with
    `missing_config` set a `{config[KEY]}` whose KEY is absent (or None) renders as that text: a
    template with defaults of its own (the demo app's `--health=`) can then use keys a release
    need not set.
    """
    if isinstance(template, str):
        raise ValueError("an argv template must be a list of strings, not one string")
    argv: list[str] = []
    for item in template:
        if not isinstance(item, str):
            raise ValueError(f"argv item {item!r} is not a string")
        out: list[str] = []
        for part in _parse(item):
            if isinstance(part, str):
                out.append(part)
                continue
            name, key = part
            label = _label(name, key)
            if name not in values:
                raise ValueError(f"unknown placeholder {label}")
            value = values[name]
            if key is not None:
                if not isinstance(value, Mapping):
                    raise ValueError(f"unknown placeholder {label}")
                if name == "config" and missing_config is not None and value.get(key) is None:
                    out.append(missing_config)
                    continue
                if key not in value:
                    raise ValueError(f"unknown placeholder {label}")
                value = value[key]
            out.append(_text(value, label))
        argv.append("".join(out))
    return argv
