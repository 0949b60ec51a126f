"""Checks on shipdeck.toml's raw values that no single key's parser would make: nesting depth and
embedded NUL characters, each reported with its key path (exit 4, never a crash later on).

Both are found without recursion, so a hostile file cannot exhaust the stack here: tomllib itself
recurses once per nesting level and gives up with RecursionError near 1,000 levels, which
`deep_nesting_at` turns into a line number and key path by scanning the text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

MAX_DEPTH = 32  # arrays and tables inside one value; policy files need a handful
_INDEXES = re.compile(r"(\[\d+\])+$")  # "x[0][0]...[0]" is reported as "x"


def _key_path(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _clean(raw: Mapping[str, Any]) -> bool:
    """True when no value nests deeper than MAX_DEPTH and none holds a NUL: the walk below
    without the key paths, which only a problem needs (a thousand apps' policy is 40,000
    values: building a path for each was most of the check). A level at a time, so no value
    carries its depth in a tuple; strings are the common case and are tested first."""
    level: list[Any] = [raw]
    for _ in range(MAX_DEPTH + 1):
        below: list[Any] = []
        for value in level:
            if isinstance(value, str):
                if "\x00" in value:
                    return False
            elif isinstance(value, dict | Mapping):
                if "\x00" in "".join(map(str, value)):
                    return False
                below.extend(value.values())
            elif isinstance(value, list):
                below.extend(value)
        if not below:
            return True
        level = below
    return False  # something sits deeper than MAX_DEPTH


def value_problems(raw: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(key path, problem) for every value nested deeper than MAX_DEPTH or holding a NUL."""
    if _clean(raw):
        return
    stack: list[tuple[str, Any, int]] = [("", raw, 0)]
    while stack:
        path, value, depth = stack.pop()
        if depth > MAX_DEPTH:
            yield _INDEXES.sub("", path), f"nested more than {MAX_DEPTH} levels deep"
            continue
        if isinstance(value, str) and "\x00" in value:
            yield path, "contains a NUL character"
        elif isinstance(value, Mapping):
            for key, item in reversed(list(value.items())):
                name = str(key)
                if "\x00" in name:
                    yield _key_path(path, name), "key contains a NUL character"
                    continue
                stack.append((_key_path(path, name), item, depth + 1))
        elif isinstance(value, list):
            stack.extend(
                (f"{path}[{i}]", item, depth + 1) for i, item in reversed(list(enumerate(value)))
            )


def deep_nesting_at(text: str) -> tuple[int, str] | None:
    """Where a value first nests deeper than MAX_DEPTH: (line number, key path), by a scan that
    knows TOML's strings, comments and table headers well enough to find the spot."""
    table, key, depth, line = "", "", 0, 1
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "\n":
            line += 1
        elif ch == "#":
            while i < n and text[i] != "\n":
                i += 1
            continue
        elif ch in "\"'":
            i = _skip_string(text, i)
            continue
        elif depth == 0 and ch == "[" and _starts_line(text, i):
            end = text.find("\n", i)
            end = n if end < 0 else end
            table = text[i:end].split("#")[0].strip().strip("[]").strip()
            i = end
            continue
        elif depth == 0 and ch == "=":
            start = text.rfind("\n", 0, i) + 1
            key = text[start:i].strip()
        elif ch in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return line, _key_path(table, key)
        elif ch in "]}":
            depth = max(depth - 1, 0)
        i += 1
    return None


def _starts_line(text: str, i: int) -> bool:
    start = text.rfind("\n", 0, i) + 1
    return not text[start:i].strip()


def _skip_string(text: str, i: int) -> int:
    """The index just past the string literal that starts at `i`."""
    quote = text[i]
    if text.startswith(quote * 3, i):
        end = text.find(quote * 3, i + 3)
        return len(text) if end < 0 else end + 3
    j = i + 1
    while j < len(text) and text[j] not in (quote, "\n"):
        j += 2 if quote == '"' and text[j] == "\\" else 1
    return j + 1
