"""A paced HTTP load with a new connection per request (like HTTP/1.0 clients), counting failed
requests and latencies: the zero-failure tests for blue/green switches and the switch benchmarks
(bench/load.py) drive the same load, so a bench figure and a test verdict mean the same requests.
"""

from __future__ import annotations

import http.client
import itertools
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class LoadResult:
    sent: int = 0
    failures: int = 0
    latencies: list[float] = field(default_factory=list)  # seconds, successful requests only
    bodies: Counter[str] = field(default_factory=Counter)
    # (status, X-Version header) of every answered request, failed ones too: which color failed
    answers: Counter[tuple[int, str]] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)  # the first few, to say why
    elapsed: float = 0.0

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]

    def failed(self, version: str) -> int:
        """Requests answered by `version` (its X-Version header) with anything but 200."""
        return sum(n for (status, v), n in self.answers.items() if v == version and status != 200)

    def served(self, version: str) -> int:
        return sum(n for (_, v), n in self.answers.items() if v == version)

    @property
    def unanswered(self) -> int:
        """Failed requests that got no HTTP answer at all (refused, reset, timed out)."""
        return self.sent - sum(self.answers.values())


def run_load(
    port: int,
    rate: float,
    duration: float | None,
    during: Callable[[], None] | None = None,
    workers: int = 16,
    path: str = "/version",
) -> LoadResult:
    """GET `path` on 127.0.0.1:`port` `rate` times a second for `duration` seconds (None: until
    `during` returns), on a fixed schedule shared by `workers` threads, while `during()` runs in
    the calling thread.

    A request fails if it raises or answers anything but 200. Latency is measured from the moment a
    request is actually sent.
    """
    total = int(rate * duration) if duration is not None else None
    over = threading.Event()  # `during` returned, when that is what ends the load
    slots = itertools.count()
    result = LoadResult()
    guard = threading.Lock()
    start = time.monotonic()

    def more(i: int) -> bool:
        return i < total if total is not None else not over.is_set()

    def worker() -> None:
        while more(i := next(slots)):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            t0 = time.perf_counter()
            error, body, answer = None, "", None
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            try:
                conn.request("GET", path)
                resp = conn.getresponse()
                body = resp.read().decode("utf-8", "replace")
                answer = (resp.status, resp.getheader("X-Version", ""))
                if resp.status != 200:
                    error = f"HTTP {resp.status}: {body[:80]!r}"
            except (OSError, http.client.HTTPException) as exc:
                error = f"{type(exc).__name__}: {exc}"
            finally:
                conn.close()
            latency = time.perf_counter() - t0
            with guard:
                result.sent += 1
                if answer is not None:
                    result.answers[answer] += 1
                if error is None:
                    result.latencies.append(latency)
                    result.bodies[body] += 1
                else:
                    result.failures += 1
                    if len(result.errors) < 5:
                        result.errors.append(error)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(workers)]
    for t in threads:
        t.start()
    try:
        if during is not None:
            during()
    finally:
        if total is None:
            over.set()
        for t in threads:
            t.join()
    result.elapsed = time.monotonic() - start
    return result
