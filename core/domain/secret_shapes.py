"""What credentials look like in free text: one regular expression, matched once per string.

Most shapes are borrowed from Yelp's detect-secrets 1.5.0 (Copyright 2017-2018 Yelp Inc.,
Apache License 2.0, its text in docs/third-party/detect-secrets-1.5.0-LICENSE.txt;
https://github.com/Yelp/detect-secrets, detect_secrets/plugins/*.py) rather than invented here:
AWS access key ids and the keyword-anchored AWS secret key, URL userinfo passwords (basic_auth),
GitHub (ghp_/gho_/ghu_/ghs_/ghr_), GitLab, JWT, Slack tokens and incoming webhooks, Stripe,
SendGrid, PyPI and private-key blocks. Changes from the originals: the JWT tail is greedy
(detect-secrets validates a short match afterwards; we must mask the signature too), the AWS
secret key need not be quoted (it shows up in notes as `aws secret ... wJalr...`), the GitHub and
Slack token bodies accept shorter lengths (their formats have grown), and the keyword rule is
ours: `key=value` or `key: value` whose key `is_secret_key` accepts. Added from the vendors' own
documentation: GitHub fine-grained tokens (`github_pat_`), npm tokens (`npm_`), Hugging Face
(`hf_`), OpenAI-style `sk-` keys, and HTTP Basic/Bearer credentials.

One alternation, so a string is scanned once whatever the number of shapes; branches start with a
literal or a narrow class, so text without secrets costs little. Matches that mask only a part
(the password of a URL, the value of a key) carry named groups; `core.domain.redact` decides.
"""

from __future__ import annotations

import re

# AWS access key ids (detect-secrets aws.py): also the one shape made of letters and digits only.
_ACCESS_KEY_ID = r"(?:A3T[A-Z0-9]|ABIA|ACCA|AKIA|ASIA)[0-9A-Z]{16}"
ACCESS_KEY_ID = re.compile(_ACCESS_KEY_ID)

SHAPES = re.compile(
    r"""
    # s3://AKIA...:SECRET@bucket: an AWS key pair as userinfo; its secret may hold '/'.
      ://(?P<aws_userinfo>"""
    + _ACCESS_KEY_ID
    + r""":[^\s@]+)@
    # scheme://user:password@host (postgresql://u:p@h/db, https://user:token@host): the
    # password runs to the authority's last '@', so 'p@ss' is masked whole.
    | ://(?P<user>[^:/?#@\s]*):(?P<password>[^/?#\s]+)@
    # key=value, key: value, "key": "value", --key=value where the key ends like a credential's
    # name. Matched from that last word (cheap: a literal start), so the caller reads the rest of
    # the key backwards and has the last word (is_secret_key): max_token_count=5 stays.
    | (?=[TtPpSsCcAaKk])  # a class first lets the engine skip most positions fast
      (?P<word>(?i:token|passwd|password|pwd|passphrase|secrets?|credentials?|authorization
                  |auth|apikey|cookie|key))
      (?P<sep>["']?[ \t]*[:=][ \t]*)
      (?P<value>"[^"\n]*"|'[^'\n]*'|(?:(?i:bearer|basic|token|digest)[ \t]+)?[^\s"',;&<>]+)
    # HTTP credentials: Bearer anything token-like; Basic only when it decodes to user:password.
    | (?=[Bb])(?i:bearer)[ \t]+[A-Za-z0-9._~+/=\-]{8,}
    | (?=[Bb])(?i:basic)[ \t]+(?P<basic>[A-Za-z0-9+/]{4,}={0,2})(?![A-Za-z0-9+/=])
    # An AWS secret key near the words that introduce one (detect-secrets aws.py, unquoted).
    | (?=[Aa])(?P<aws_context>(?i:aws)[^\n]{0,20}?(?i:key|pwd|pw|password|pass|token|secret)[^\n]{0,20}?)
      (?<![A-Za-z0-9/+])(?P<aws_secret>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])
    | """
    + _ACCESS_KEY_ID
    + r"""
    | (?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9_]{20,}
    | github_pat_[A-Za-z0-9_]{22,}
    | (?:glpat|gldt|glft|glsoat|glrt|glcbt|glimt|glptt|glagent|gloas)-[A-Za-z0-9_\-]{20,}
    | hf_[A-Za-z0-9]{16,}
    | npm_[A-Za-z0-9]{36}
    | pypi-AgE[A-Za-z0-9_\-]{70,}
    | sk-(?<![A-Za-z0-9]sk-)[A-Za-z0-9_\-]{16,}  # not inside a word: risk-scoring-service
    | (?:r|s)k_live_[0-9a-zA-Z]{24,}
    | SG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43}
    | xox[abposr]-[A-Za-z0-9\-]{10,}
    | https://hooks\.slack\.com/services/T[A-Za-z0-9_]+/B[A-Za-z0-9_]+/[A-Za-z0-9_]+
    | eyJ[A-Za-z0-9_=\-]{8,}\.[A-Za-z0-9_=\-]{8,}\.[A-Za-z0-9_.+/=\-]*
    | -----BEGIN[A-Z ]{0,20}PRIVATE\ KEY(?:\ BLOCK)?-----
      (?:.*?-----END[A-Z ]{0,20}PRIVATE\ KEY(?:\ BLOCK)?-----|.*)
    """,
    re.VERBOSE | re.DOTALL,
)
# The rest of a key, read backwards from the word SHAPES matched (api_ of api_token).
KEY_HEAD = re.compile(r"[A-Za-z0-9_.\-]{0,80}\Z")
