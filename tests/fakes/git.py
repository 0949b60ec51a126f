"""Git ports for tests: GatedGit, the real one behind a gate (the history queries wait until the
test opens it, so a status worker is as slow as on a loaded machine for exactly as long as the
test wants, without a sleep), and FixedGit, which needs no repository at all."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Collection
from pathlib import Path

from shipdeck.core.ports import CommitInfo, GitPort

GATE_LIMIT = 60.0  # only keeps a broken test from hanging a worker thread forever


class GatedGit:
    def __init__(self, real: GitPort) -> None:
        self.real = real
        self.gate = threading.Event()
        self.waiting = threading.Event()  # set once a caller is held at the gate

    def _pass(self) -> None:
        self.waiting.set()
        if not self.gate.wait(GATE_LIMIT):
            raise TimeoutError("GatedGit: the test never opened the gate")

    def resolve(self, repo: Path, ref: str) -> str:
        return self.real.resolve(repo, ref)

    def commits_between(self, repo: Path, old: str | None, new: str) -> list[CommitInfo]:
        self._pass()
        return self.real.commits_between(repo, old, new)

    def count_pairs(
        self, repo: Path, pairs: Collection[tuple[str, str]]
    ) -> dict[tuple[str, str], int]:
        self._pass()
        return self.real.count_pairs(repo, pairs)


class FixedGit:
    """A GitPort without repositories: every ref resolves to a sha made of the repository's
    folder name and the ref, and no history lies between commits. For the engine's unit tests,
    which ship releases and never ask what changed."""

    def resolve(self, repo: Path, ref: str) -> str:
        return hashlib.sha1(f"{repo.name}@{ref}".encode()).hexdigest()

    def commits_between(self, repo: Path, old: str | None, new: str) -> list[CommitInfo]:
        return []

    def count_pairs(
        self, repo: Path, pairs: Collection[tuple[str, str]]
    ) -> dict[tuple[str, str], int]:
        return dict.fromkeys(pairs, 0)
