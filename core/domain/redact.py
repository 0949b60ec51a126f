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


# ANSI/VT escape sequences: CSI, OSC (to BEL or ST), DCS/SOS/PM/APC (to ST), and 2-byte ESC forms.
_ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"
    r"|\x1b[PX^_][^\x1b]*(?:\x1b\\)?"
    r"|\x1b[ -/]*[0-~]?"
    r"|\x9b[0-?]*[ -/]*[@-~]"
)
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def strip_controls(text: str) -> str:
    """Text from remote systems, made safe for a terminal: no escape sequence, no C0 (but tab and
    newline) and no C1 control survives."""
    return _CONTROLS.sub("", _ESCAPES.sub("", text))
