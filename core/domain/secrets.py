"""Credentials that live in the environment, so their exact values can be masked anywhere.

Pattern-based redaction (core.domain.redact) catches what looks like a token; this catches the
tokens we know: values of variables named like credentials (HF_TOKEN, AWS_SECRET_ACCESS_KEY,
GATEWAY_PASSWORD, ...) and of the variables the workspace names in `token_env` settings.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

_CREDENTIAL_NAME = re.compile(
    r"(TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|ACCESS_KEY|PRIVATE_KEY|CREDENTIALS?)", re.I
)
# Values this short or this common would mask ordinary words; real credentials are longer.
_MIN_LENGTH = 8


def environment_secrets(environ: Mapping[str, str], named: Iterable[str] = ()) -> tuple[str, ...]:
    """Secret values from `environ`, longest first (so a token is masked before its prefix)."""
    wanted = set(named)
    values = {
        value
        for name, value in environ.items()
        if (name in wanted or _CREDENTIAL_NAME.search(name)) and len(value) >= _MIN_LENGTH
    }
    return tuple(sorted(values, key=len, reverse=True))
