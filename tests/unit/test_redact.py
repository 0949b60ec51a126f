"""Redaction masks credentials by key name and by shape, and nothing else; strip_controls makes
remote text safe for a terminal."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shipdeck.core.domain.redact import REDACTED, is_secret_key, redact, redact_text, strip_controls

HF = "hf_" + "aB3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1"  # the Hub's shape: hf_ + 30 characters
TOKENS = [
    HF,
    "AKIA" + "ABCDEFGHIJ234567",
    "ghp_" + "a1b2c3d4e5f6g7h8i9j0k1l2",
    "sk-" + "proj-Abc123Def456Ghi789",
    "xoxb-" + "1234567890-abcdef",
]


@pytest.mark.parametrize(
    "key",
    [
        *("token", "hf_token", "HF_TOKEN", "api_key", "apikey", "API-KEY", "private.key"),
        *("password", "db_password", "passwd", "secret", "client-secret", "secrets"),
        *("credentials", "auth", "Authorization", "access_token"),
    ],
)
def test_secret_key_names(key: str) -> None:
    assert is_secret_key(key)
    assert redact({key: "plain-value"}) == {key: REDACTED}


@pytest.mark.parametrize(
    "key",
    [
        *("key", "max_tokens", "tokens_per_minute", "token_limits", "token_env", "keys"),
        *("monkey", "author", "secretary", "tokenizer", "passkey_hint", "sort"),
    ],
)
def test_ordinary_key_names_stay_visible(key: str) -> None:
    assert not is_secret_key(key)
    assert redact({key: 4096}) == {key: 4096}


def test_config_change_documents_keep_their_key_names() -> None:
    doc = {"config_changes": [{"key": "max_tokens", "old": 4096, "new": 8192}]}
    assert redact(doc) == doc


@pytest.mark.parametrize("token", TOKENS)
def test_token_shapes_are_masked_wherever_they_appear(token: str) -> None:
    assert redact_text(token) == REDACTED
    assert redact_text(f"notes: use {token} for now") == f"notes: use {REDACTED} for now"
    if not token.startswith("sk-"):  # "sk-" only counts at a word start (see the next test)
        assert token not in redact_text(f"pasted{token}")
    assert (
        redact_text(f"hf://org/model@main?token={token}") == f"hf://org/model@main?token={REDACTED}"
    )
    nested = redact({"notes": [f"x {token}"], "artifacts": {"model": f"s3://b/{token}"}})
    assert token not in repr(nested)


@pytest.mark.parametrize(
    "text",
    [
        *("risk-scoring-service-v2", "desk-booking-frontend", "task-runner-for-embeddings"),
        *("max_tokens=4096", "sha256:" + "ab" * 32, "a" * 40),
        "chat-api 1.2.0 recorded at 3f2c1e0a9b8d",
    ],
)
def test_ordinary_text_is_not_mistaken_for_a_token(text: str) -> None:
    assert redact_text(text) == text


def test_bearer_credentials_and_extra_secrets() -> None:
    assert redact_text("Authorization: Bearer abc.def-ghi_jkl") == f"Authorization: {REDACTED}"
    assert redact_text("pw=hunter22 ok", extra_secrets=("hunter22",)) == f"pw={REDACTED} ok"
    # Known secrets are masked at any length (the length floor for guessed ones is in
    # core.domain.secrets); an empty one masks nothing.
    assert redact_text("abc", extra_secrets=("abc",)) == REDACTED
    assert redact_text("abc", extra_secrets=("",)) == "abc"


def test_redact_keeps_structure_and_empty_secrets() -> None:
    value = {"api_key": "", "token": None, "n": 1, "l": (1, "x"), "ok": True}
    assert redact(value) == {"api_key": "", "token": None, "n": 1, "l": [1, "x"], "ok": True}


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("\x1b[31mred\x1b[0m", "red"),
        ("title\x1b]0;pwned\x07after", "titleafter"),
        ("a\x1bPdevice\x1b\\b", "ab"),
        ("bell\x07 back\x08space", "bell backspace"),
        ("c1\x9b31mcsi", "c1csi"),
        ("tab\tand\nnewline", "tab\tand\nnewline"),
        ("unicode ✓ ü 日本", "unicode ✓ ü 日本"),
    ],
)
def test_strip_controls(raw: str, clean: str) -> None:
    assert strip_controls(raw) == clean


@given(st.text())
def test_strip_controls_leaves_no_escape_or_control(text: str) -> None:
    out = strip_controls(text)
    assert "\x1b" not in out and "\x9b" not in out
    assert all(c in "\t\n" or not (ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F) for c in out)


# --- structure and shape (issue 10) --------------------------------------------------------------

AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"  # AWS's documented example secret key


@pytest.mark.parametrize(
    "key",
    [
        *("apiToken", "clientSecret", "API_TOKEN", "api-token", "secretAccessKey", "sessionToken"),
        *("PGPASSWORD", "x-api-key", "X-Auth-Token", "HFToken", "privateKey", "pwd", "Cookie"),
    ],
)
def test_secret_key_names_in_any_style(key: str) -> None:
    assert is_secret_key(key)
    assert redact({"outer": {key: "plain-value"}}) == {"outer": {key: REDACTED}}


@pytest.mark.parametrize("key", ["accessKeyId", "maxTokens", "tokenEnv", "tokenLimits", "keyName"])
def test_ordinary_names_in_any_style_stay_visible(key: str) -> None:
    assert not is_secret_key(key)


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        ("https://user:tok3n-value@host/x", f"https://user:{REDACTED}@host/x"),
        (
            f"s3://AKIAABCDEFGHIJ234567:{AWS_SECRET}@bucket/key",
            f"s3://{REDACTED}:{REDACTED}@bucket/key",
        ),
        ("postgresql://app:p@ss@db:5432/x", f"postgresql://app:{REDACTED}@db:5432/x"),
        ("redis://:hunter22@cache:6379/0", f"redis://:{REDACTED}@cache:6379/0"),
        (
            "uri=git+https://bot:abc123@git.example/r.git",
            f"uri=git+https://bot:{REDACTED}@git.example/r.git",
        ),
        (
            "host=db user=app password=hunter2 dbname=x",
            f"host=db user=app password={REDACTED} dbname=x",
        ),
    ],
)
def test_credentials_in_urls_and_dsns_are_masked(raw: str, masked: str) -> None:
    assert redact_text(raw) == masked


@pytest.mark.parametrize(
    "text",
    [
        "http://127.0.0.1:8601/version",
        "oci://registry:5000/app@sha256:" + "ab" * 32,
        "hf://org/model@main",
        "mailto:ops@example.com",
        "at 2026-12-01T21:02:30+00:00 user=alice",
        "basic configuration done; Bearer",
        "tokens_per_minute: 1000, max_tokens=4096",
    ],
)
def test_urls_and_settings_without_credentials_are_untouched(text: str) -> None:
    assert redact_text(text) == text


@pytest.mark.parametrize(
    ("line", "masked"),
    [
        ("login ok password=hunter2 from 10.0.0.1", f"login ok password={REDACTED} from 10.0.0.1"),
        (
            '{"user": "bob", "password": "two words"}',
            f'{{"user": "bob", "password": "{REDACTED}"}}',
        ),
        ("PGPASSWORD='s3cr3t' psql", f"PGPASSWORD='{REDACTED}' psql"),
        ("Authorization: Basic dXNlcjpwYXNz", f"Authorization: {REDACTED}"),
        ("proxy sent Basic dXNlcjpwYXNzd29yZA== upstream", f"proxy sent {REDACTED} upstream"),
        ("--api-token=abc123 --verbose", f"--api-token={REDACTED} --verbose"),
        (f"rotated: aws secret is {AWS_SECRET} now", f"rotated: aws secret is {REDACTED} now"),
        (f"AWS_SECRET_ACCESS_KEY={AWS_SECRET}", f"AWS_SECRET_ACCESS_KEY={REDACTED}"),
    ],
)
def test_credentials_in_log_lines_are_masked(line: str, masked: str) -> None:
    assert redact_text(line) == masked


SHAPED = [
    "github_pat_" + "11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN",
    "gho_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8",
    "ghs_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8",
    "eyJhbGciOiJIUzI1NiJ9"
    + ".eyJzdWIiOiIxMjM0NTY3ODkwIn0"
    + ".dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "https://hooks.slack.com/services/" + "T0123ABCD/B0123ABCD/abcdefghijklmnopqrstuvwx",
    "glpat-" + "abcdefghij1234567890",
    "npm_" + "abcdefghijklmnopqrstuvwxyz0123456789",
    "SG." + "a" * 22 + "." + "b" * 43,
    "sk_live_" + "0123456789abcdefghijklmn",
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----",
]


@pytest.mark.parametrize("token", SHAPED)
def test_more_token_shapes_are_masked(token: str) -> None:
    assert redact_text(f"note: {token} (old)") == f"note: {REDACTED} (old)"
    assert token not in repr(redact({"notes": [f"x {token}"]}))
