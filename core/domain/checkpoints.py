"""Checkpoints of the audit chain: (sequence, hash) pairs written outside the database, one JSON
object per line, so that `verify` can catch what the chain alone cannot (a truncated tail whose
head row was fixed, a rewritten log). Parsing is strict: a checkpoint store that does not parse
has itself been tampered with."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    hash: str
    at: str
    # The file/object and line it was read from, for messages; neither written nor compared.
    where: str = field(default="", compare=False)

    def to_json(self) -> str:
        return json.dumps({"seq": self.seq, "hash": self.hash, "at": self.at}, sort_keys=True)


class CheckpointFormatError(ValueError):
    """A checkpoint line that is not one: the checkpoint store itself has been tampered with."""


def parse_checkpoints(text: str, where: str) -> list[Checkpoint]:
    """One JSON object per line; a malformed line is an error naming the file and line.

    The sequence must be a JSON integer (not 1e400, not 3.0, not "3") and the hash 64 hex digits:
    anything else could only come from an edit of the store, so it is an integrity failure.
    """
    out: list[Checkpoint] = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line, parse_constant=_no_constant)
            seq, digest = obj["seq"], obj["hash"]
        except (ValueError, KeyError, TypeError) as exc:
            raise CheckpointFormatError(f"{where}: line {n}: not a checkpoint ({exc})") from exc
        if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1:
            raise CheckpointFormatError(f"{where}: line {n}: seq {seq!r} is not a sequence number")
        if not isinstance(digest, str) or len(digest) != 64 or digest.strip("0123456789abcdef"):
            raise CheckpointFormatError(f"{where}: line {n}: hash {digest!r} is not a SHA-256")
        out.append(Checkpoint(seq, digest, str(obj.get("at", "")), f"{where} line {n}"))
    return out


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number")


def agreed(
    checkpoints: Iterable[Checkpoint],
) -> tuple[dict[int, Checkpoint], str | None, int | None]:
    """The checkpoints by sequence, or why they cannot be trusted: two that disagree about one
    sequence mean someone appended a forged head (the last line must not simply win)."""
    by_seq: dict[int, Checkpoint] = {}
    for cp in checkpoints:
        seen = by_seq.setdefault(cp.seq, cp)
        if seen.hash != cp.hash:
            return (
                by_seq,
                (
                    f"checkpoints disagree about event {cp.seq}: {seen.where} says {seen.hash[:16]}, "
                    f"{cp.where} says {cp.hash[:16]} (a forged head was appended)"
                ),
                cp.seq,
            )
    return by_seq, None, None
