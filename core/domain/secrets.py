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
# A variable we only guess is a credential (by its name) may hold a short ordinary word
# (AUTH_MODE=on): its value is masked from this length up. Variables the workspace names as
# credentials (token_env, headers_env) are masked at any length: a 6-character header secret is
# still a secret, and it must not reach the audit log.
_MIN_GUESSED_LENGTH = 8


def environment_secrets(environ: Mapping[str, str], named: Iterable[str] = ()) -> tuple[str, ...]:
    """Secret values from `environ`, longest first (so a token is masked before its prefix)."""
    wanted = set(named)
    values = {
        value
        for name, value in environ.items()
        if value
        and (
            name in wanted
            or (_CREDENTIAL_NAME.search(name) is not None and len(value) >= _MIN_GUESSED_LENGTH)
        )
    }
    return tuple(sorted(values, key=len, reverse=True))
