"""A canary metric's Prometheus query, pure: its template, checked when shipdeck.toml is read, and
rendered per color and window with values that cannot change what the query means.

    prometheus = { address = "http://127.0.0.1:9090",
                   query = 'sum(rate(demo_responses_total{color="{color}"}[{window}]))' }

`{app}`, `{env}` and `{color}` must stand inside a quoted PromQL string (a label value, mostly)
and are escaped for it, so an app name holding `"` stays a label value instead of ending it;
`{window}` is the measurement's window as a Prometheus duration (`60s`, `1500ms`). PromQL's
`{label="..."}` braces are no placeholders: only `{NAME}` is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

PLACEHOLDERS = ("app", "env", "color", "window")
_QUOTED_ONLY = frozenset({"app", "env", "color"})
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
# PromQL string escapes (Go's): what must not appear raw inside "..." or '...'.
_ESCAPES = {"\\": "\\\\", '"': '\\"', "'": "\\'", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class PrometheusQuery:
    """Where to ask (the server's base URL) and what (an instant query template)."""

    address: str
    query: str

    def render(self, app: str, env: str, color: str, window: float) -> str:
        values = {"app": app, "env": env, "color": color}

        def fill(m: re.Match[str]) -> str:
            name = m.group(1)
            return duration(window) if name == "window" else escape_string(values[name])

        return _PLACEHOLDER.sub(fill, self.query)

    def as_dict(self) -> dict[str, Any]:
        return {"address": self.address, "query": self.query}


def escape_string(value: str) -> str:
    """`value` for the inside of a PromQL quoted string: backslash, both quotes and line breaks
    escaped, other control characters dropped (no label value needs one)."""
    escaped = "".join(_ESCAPES.get(ch, ch) for ch in value)
    return _CONTROL.sub("", escaped)


def duration(seconds: float) -> str:
    """A window as a Prometheus duration: whole seconds as `60s`, anything finer in ms."""
    ms = max(1, round(seconds * 1000))
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


def address_problem(address: str) -> str | None:
    """What is wrong with a Prometheus base URL, None when it is usable. Credentials are refused:
    the address is part of the plan digest and the evidence, which are no place for them."""
    try:
        parts = urlsplit(address)
        port = parts.port
    except ValueError as exc:
        return f"'{address}' is not a URL: {exc}"
    if parts.scheme not in ("http", "https"):
        return f"must be an http:// or https:// URL, not '{address}'"
    if not parts.hostname:
        return f"'{address}' names no host"
    if parts.username is not None or parts.password is not None:
        return "must not hold credentials (user:password@)"
    if parts.query or parts.fragment or port == 0:
        return f"must be a base URL like http://127.0.0.1:9090, not '{address}'"
    return None


def query_problems(query: str) -> list[str]:
    """What is wrong with a query template: unknown placeholders, and `{app}` / `{env}` /
    `{color}` outside a quoted string (where escaping could not keep a value in its place)."""
    problems: list[str] = []
    if not query.strip():
        return ["must not be empty"]
    quoted = _quoted_spans(query)
    for m in _PLACEHOLDER.finditer(query):
        name = m.group(1)
        if name not in PLACEHOLDERS:
            known = " ".join(f"{{{p}}}" for p in PLACEHOLDERS)
            problems.append(f"unknown placeholder {{{name}}} (known: {known})")
        elif name in _QUOTED_ONLY and not any(a < m.start() and m.end() <= b for a, b in quoted):
            problems.append(
                f'placeholder {{{name}}} must stand inside a quoted string: "{{{name}}}"'
            )
    return problems


def _quoted_spans(query: str) -> list[tuple[int, int]]:
    """(opening quote, closing quote) offsets of each "..." and '...' string, backslash escapes
    honoured; a backtick string is raw in PromQL, so it is no place for a value and not listed.
    An unterminated string runs to the end."""
    spans: list[tuple[int, int]] = []
    i, n = 0, len(query)
    while i < n:
        ch = query[i]
        if ch in "\"'`":
            start, i = i, i + 1
            while i < n and query[i] != ch:
                i += 2 if ch != "`" and query[i] == "\\" else 1
            if ch != "`":
                spans.append((start, min(i, n)))
        i += 1
    return spans
