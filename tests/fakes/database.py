"""GatedDatabase: the real database whose reads wait at a gate the test opens, so a TUI worker
is as slow as on a loaded machine for exactly as long as the test wants, without a sleep."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from shipdeck.core.storage.db import Database

GATE_LIMIT = 60.0  # only keeps a broken test from hanging a worker thread forever


class GatedDatabase:
    def __init__(self, real: Database) -> None:
        self.real = real
        self.gate = threading.Event()
        self.waiting = threading.Event()  # set once a reader is held at the gate

    @contextmanager
    def read(self) -> Iterator[Any]:
        self.waiting.set()
        if not self.gate.wait(GATE_LIMIT):
            raise TimeoutError("GatedDatabase: the test never opened the gate")
        with self.real.read() as conn:
            yield conn

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)
