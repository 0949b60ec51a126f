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
import json
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from shipdeck.core.domain.secret_shapes import ACCESS_KEY_ID, KEY_HEAD, SHAPES

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
    if match["aws_userinfo"] is not None:
        return f"://{REDACTED}:{REDACTED}@"
    if match["password"] is not None:
        return f"://{SHAPES.sub(_mask, match['user'])}:{REDACTED}@"
    if match["word"] is not None:
        word, sep, value = match["word"], match["sep"], match["value"]
        head = KEY_HEAD.search(match.string, max(0, match.start() - 80), match.start())
        if not is_secret_key((head[0] if head else "") + word):
            return word + sep + SHAPES.sub(_mask, value)  # the value may hold a URL or a token
        quote = value[0] if value[0] in "\"'" else ""
        return f"{word}{sep}{quote}{REDACTED}{quote}"
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
    if text.isalnum():  # commits, digests, names: of all shapes only an AWS key id fits there
        return ACCESS_KEY_ID.sub(REDACTED, text)
    return SHAPES.sub(_mask, text)


_LEAVES = (int, float, type(None))  # bool is an int


def redact(value: Any, extra_secrets: tuple[str, ...] = ()) -> Any:
    """A copy of `value` (JSON-like data) with secret-named keys and secret-looking strings masked."""
    if isinstance(value, str):  # the builtin checks before the ABC's: most leaves are text
        return redact_text(value, extra_secrets)
    if isinstance(value, _LEAVES):
        return value
    if isinstance(value, dict | Mapping):
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
    return value


class Redacted(dict[str, Any]):
    """A document its builder redacted where secrets can be (config values, remote text, free
    text from the workspace file), field by field. Output writes it without walking every value
    again (that walk was most of `status -o json` at a thousand apps: bench/status_json.py) and
    checks only for the exact secret values it knows (`holds_known_secret`)."""


def holds_known_secret(serialised: str, secrets: tuple[str, ...]) -> bool:
    """Whether a compact JSON document (json.dumps, ensure_ascii=False) holds one of `secrets`
    inside a string: each is looked for as JSON writes it, so quotes and controls in a secret
    are found too."""
    return any(secret and json.dumps(secret, ensure_ascii=False)[1:-1] in serialised
               for secret in secrets)  # fmt: skip


# Terminal escape sequences and control characters, in one pass: CSI (7- or 8-bit, also when
# cut short), OSC/DCS/SOS/PM/APC strings (7- or 8-bit introducer) up to their BEL or ST terminator
# (a string is also ended by BEL, so markup after a stray BEL stays text), any other ESC
# sequence, then any C0 control but tab and newline, DEL and C1, and the Unicode bidi controls
# that reorder what a terminal shows (Trojan Source, CVE-2021-42574): embeddings and overrides
# U+202A-202E, isolates U+2066-2069, the marks U+200E/U+200F and the Arabic letter mark U+061C.
_BIDI = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_CONTROLS = re.compile(
    r"""
      (?:\x1b\[|\x9b)[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]?
    | (?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?
    | \x1b[\x20-\x2f]*[\x30-\x7e]?
    | [\x00-\x08\x0b-\x1f\x7f-\x9f"""
    + _BIDI
    + "]",
    re.VERBOSE,
)
# What JSON leaves raw although a terminal acts on it (json.dumps escapes only C0).
_JSON_UNSAFE = re.compile("[\x7f-\x9f\u2028\u2029" + _BIDI + "]")
# Cells a spreadsheet evaluates (OWASP "CSV Injection"): a leading =, +, -, @, tab or CR; CR is
# a control, which strip_controls has removed before this is checked.
_FORMULA_START = ("=", "+", "-", "@", "\t")


def strip_controls(text: str) -> str:
    """Text from remote systems (logs, command output, audit fields), made safe for a terminal.

    A log line or command output could otherwise retitle the terminal, rewrite the screen or
    smuggle a hyperlink. No ESC, BEL, other C0 (but tab and newline), DEL or C1 character
    survives, nor any bidi control that would let a commit subject display reordered. Markup
    such as `[bold]` is left alone: escaping it is the renderer's job.
    """
    return _CONTROLS.sub("", text)


def json_text(document: str) -> str:
    """A serialised JSON document with the characters a terminal would act on (DEL, C1, bidi
    controls, line separators) written as \\u escapes: the data is unchanged for a parser, and
    `-o json` at a terminal shows no reordered text. One scan of a character class, so cheap on
    large documents (and none at all for ASCII ones: DEL is all json.dumps leaves of that
    range); a copy only when such a character is there."""
    if (document.isascii() and "\x7f" not in document) or _JSON_UNSAFE.search(document) is None:
        return document
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m[0]):04x}", document)


def json_lines(lines: list[bytes]) -> bytes:
    """UTF-8 lines (serialised JSON documents) joined by newlines, each as `json_bytes` makes
    it; a page where no unsafe character can be is joined as it is, without a call per line (a
    million export lines: bench/audit_export.py)."""
    page = b"\n".join(lines)
    return b"\n".join(map(json_bytes, lines)) if _may_be_unsafe(page) else page


def _may_be_unsafe(page: bytes) -> bool:
    """Whether UTF-8 `page` holds a byte sequence that a character _JSON_UNSAFE matches starts
    with: DEL, C2 (C1 controls are C2 80-9F), D8 (U+061C is D8 9C), or E2 80 / E2 81 (U+2000
    to U+207F: the line separators and the other bidi controls). Single bytes are found at
    memchr speed; E2 (also ✓ and other symbols) is looked at where it occurs."""
    if b"\x7f" in page or b"\xc2" in page or b"\xd8" in page:
        return True
    at = page.find(b"\xe2")
    while at >= 0:
        if page[at + 1 : at + 2] in (b"\x80", b"\x81"):
            return True
        at = page.find(b"\xe2", at + 1)
    return False


def json_bytes(document: bytes) -> bytes:
    """`json_text` of a UTF-8 encoded document, as UTF-8: the document itself, not decoded, when
    it is ASCII without DEL (nearly every export line), or when its text needs no escape."""
    if document.isascii() and b"\x7f" not in document:
        return document
    text = document.decode()
    return document if _JSON_UNSAFE.search(text) is None else json_text(text).encode()


def has_unsafe_text(document: str) -> bool:
    """Whether a serialised document holds characters that json_text would escape (YAML has no
    such escape outside double quotes, so its writer falls back to ASCII-only output)."""
    return _JSON_UNSAFE.search(document) is not None


def csv_cell(value: object) -> str:
    """A CSV cell that neither a terminal nor a spreadsheet will act on: controls stripped, and a
    cell that would start a formula (=HYPERLINK(...), +, -, @, tab, CR) prefixed with an
    apostrophe, which spreadsheets show as text (OWASP CSV injection guidance)."""
    text = strip_controls("" if value is None else str(value))
    return "'" + text if text.startswith(_FORMULA_START) else text


def shown(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Text for a person's screen (a CLI line, a TUI notification): controls and bidi stripped,
    credentials masked. Both front ends show messages through this, so they show the same."""
    return redact_text(strip_controls(text), secrets)


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
