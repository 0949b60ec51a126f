"""Secret redaction and safe text, applied before anything is stored, printed or shown.

Redaction works on key names (token, password, secret, key, ...) and on values that look like
credentials wherever they appear, so a token pasted into a free-text field is caught too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

REDACTED = "***"

_SECRET_KEY = re.compile(
    r"(^|[_\-.])(token|password|passwd|secret|secrets|api[_-]?key|credential|credentials"
    r"|authorization|auth)$"
    # api_key, private-key, ... but not a bare "key" (our own documents use it to name a config
    # key) nor "tokens" (max_tokens is a model setting whose value must stay visible and hashed).
    r"|[_\-.]key$",
    re.IGNORECASE,
)
_SECRET_VALUE = re.compile(
    r"(hf_[A-Za-z0-9]{16,}"
    r"|AKIA[0-9A-Z]{16}"
    r"|ghp_[A-Za-z0-9]{20,}"
    # Not inside a word: "risk-scoring-service" is an app name, not an "sk-" key.
    r"|(?<![A-Za-z0-9])sk-[A-Za-z0-9_\-]{16,}"
    r"|xox[abpr]-[A-Za-z0-9\-]{10,}"
    r"|(?i:bearer)\s+[A-Za-z0-9._~+/=\-]{8,})"
)


def is_secret_key(key: str) -> bool:
    return bool(_SECRET_KEY.search(key))


def redact_text(text: str, extra_secrets: tuple[str, ...] = ()) -> str:
    for secret in extra_secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, REDACTED)
    return _SECRET_VALUE.sub(REDACTED, text)


def redact(value: Any, extra_secrets: tuple[str, ...] = ()) -> Any:
    """A copy of `value` (JSON-like data) with secret-named keys and secret-looking strings masked."""
    if isinstance(value, Mapping):
        return {
            k: (
                REDACTED
                if is_secret_key(str(k)) and v not in (None, "")
                else redact(v, extra_secrets)
            )
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v, extra_secrets) for v in value]
    if isinstance(value, str):
        return redact_text(value, extra_secrets)
    return value


# Terminal escape sequences and control characters, in one pass: CSI (7- or 8-bit, also when
# cut short), OSC/DCS/SOS/PM/APC strings (7- or 8-bit introducer) up to their BEL or ST terminator
# (a string is also ended by BEL, so markup after a stray BEL stays text), any other ESC
# sequence, then any C0 control but tab and newline, DEL and C1.
_CONTROLS = re.compile(
    r"""
      (?:\x1b\[|\x9b)[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]?
    | (?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?
    | \x1b[\x20-\x2f]*[\x30-\x7e]?
    | [\x00-\x08\x0b-\x1f\x7f-\x9f]
    """,
    re.VERBOSE,
)


def strip_controls(text: str) -> str:
    """Text from remote systems (logs, command output, audit fields), made safe for a terminal.

    A log line or command output could otherwise retitle the terminal, rewrite the screen or
    smuggle a hyperlink. No ESC, BEL, other C0 (but tab and newline), DEL or C1 character
    survives. Markup such as `[bold]` is left alone: escaping it is the renderer's job.
    """
    return _CONTROLS.sub("", text)


def strip_lines(text: str) -> list[str]:
    """Captured output as lines, each stripped: split first, so no line is joined to the next by
    a sequence left open, and none carries a newline. A final newline ends the last line; it does
    not start an empty one."""
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [strip_controls(line) for line in lines]


def one_line(text: str, limit: int = 300) -> str:
    """Text from outside (a response body, an SDK message) for a one-line error or status
    detail: controls stripped, every run of whitespace, newlines included, one space."""
    return " ".join(strip_controls(text).split())[:limit]


def last_line(*outputs: str, limit: int = 300) -> str:
    """The last non-empty line of the first output that has one (stderr before stdout, say),
    stripped: where a failing command says why."""
    for text in outputs:
        for line in reversed(strip_lines(text)):
            if line.strip():
                return line.strip()[:limit]
    return "no output"
