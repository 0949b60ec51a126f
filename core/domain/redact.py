"""Secret redaction and safe text, applied before anything is stored, printed or shown.

Redaction works on structure and on shape. Structure: values under credential-named keys (in any
naming style: `apiToken`, `client-secret`, `API_TOKEN`), the password in URL userinfo and DSNs,
the value in `password=...` text. Shape: tokens that look like credentials wherever they appear
(core.domain.secret_shapes, borrowed from detect-secrets), so a token pasted into a free-text
field or printed into a log line is caught too. Plus the exact values we know to be secret.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from shipdeck.core.domain.secret_shapes import SHAPES

REDACTED = "***"

# camelCase and PascalCase word starts (apiToken, HFToken, OAuthToken), then any separator.
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_SEPARATORS = re.compile(r"[\s_\-.]+")
# The last word of a credential's name. Not "tokens" (max_tokens is a model setting whose value
# must stay visible and hashed), nor a bare "key" (our documents use it to name a config key).
_SECRET_WORDS = frozenset(
    {
        *("token", "password", "passwd", "pwd", "passphrase", "secret", "secrets"),
        *("credential", "credentials", "authorization", "auth", "apikey", "cookie"),
    }
)
_SECRET_SUFFIXES = ("password", "passwd", "passphrase", "apikey")  # PGPASSWORD, xapikey


@lru_cache(maxsize=4096)
def is_secret_key(key: str) -> bool:
    """Whether a value stored under `key` is a credential, whatever the key's naming style.

    Cached: the same few key names recur in every document that is redacted."""
    words = [w for w in _SEPARATORS.split(_CAMEL.sub("_", key).lower()) if w]
    if not words:
        return False
    last = words[-1]
    return (
        last in _SECRET_WORDS
        or last.endswith(_SECRET_SUFFIXES)
        or (last == "key" and len(words) > 1)  # api_key, private.key, secretAccessKey
    )


def _is_basic_credential(token: str) -> bool:
    """HTTP Basic credentials are base64 of `user:password`; "Basic setup" is not."""
    try:
        return b":" in base64.b64decode(token, validate=True)
    except (binascii.Error, ValueError):
        return False


def _mask(match: re.Match[str]) -> str:
    if match["aws_scheme"] is not None:
        return f"{match['aws_scheme']}{REDACTED}:{REDACTED}@"
    if match["scheme"] is not None:
        user = SHAPES.sub(_mask, match["user"])
        return f"{match['scheme']}{user}:{REDACTED}@"
    if match["key"] is not None:
        key, sep, value = match["key"], match["sep"], match["value"]
        if not is_secret_key(key):
            return key + sep + SHAPES.sub(_mask, value)  # the value may hold a URL or a token
        quote = value[0] if value[0] in "\"'" else ""
        return f"{key}{sep}{quote}{REDACTED}{quote}"
    if match["basic"] is not None and not _is_basic_credential(match["basic"]):
        return match[0]
    if match["aws_secret"] is not None:
        return match["aws_context"] + REDACTED
    return REDACTED


def redact_text(text: str, extra_secrets: tuple[str, ...] = ()) -> str:
    """`text` with the known secret values (any length: they are known, not guessed) and every
    credential-shaped part masked."""
    for secret in extra_secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return SHAPES.sub(_mask, text)


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
