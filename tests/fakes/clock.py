"""A Clock (core.ports) whose waits take no real time: sleep() moves wall and monotonic time on
together and records what was asked, so an engine wait of minutes runs in the time its real
checks take, and a test can say how long the engine meant to wait."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta


class FakeClock:
    def __init__(self, at: datetime | None = None) -> None:
        self.start = at or datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
        self.elapsed = 0.0
        self.sleeps: list[float] = []
        self._guard = threading.Lock()  # the engine sleeps in several threads (parallel apps)

    def now(self) -> datetime:
        return self.start + timedelta(seconds=self.elapsed)

    def monotonic(self) -> float:
        return self.elapsed

    def sleep(self, seconds: float) -> None:
        with self._guard:
            self.sleeps.append(seconds)
            self.elapsed += max(seconds, 0.0)

    def advance(self, seconds: float) -> None:
        """Time passes outside the engine (a freeze begins, a lease runs out)."""
        with self._guard:
            self.elapsed += seconds
