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
    assert redact_text("abc", extra_secrets=("abc",)) == "abc"  # too short to mask safely


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
