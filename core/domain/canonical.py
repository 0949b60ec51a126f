"""Canonical JSON: the one byte encoding that digests and audit hashes are computed over."""

from __future__ import annotations

import hashlib
import json
from typing import Any

# One encoder, made once: json.dumps builds a JSONEncoder per call with these options, and every
# audited change encodes its payload here (bench/audit_append.py).
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def canonical_bytes(value: Any) -> bytes:
    return _ENCODER.encode(value).encode("utf-8")


def digest_of(value: Any) -> str:
    return "sha256:" + hashlib.sha256(canonical_bytes(value)).hexdigest()
