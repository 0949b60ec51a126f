"""Does a blue/green switch of the local target drop or slow requests?

    cd /work/main && python -m bench.switch_under_load [--rate 250] [--duration 10] [--switches 50]

Runs a paced load (one new connection per request, like HTTP/1.0 clients) against the front port
twice: once with traffic left alone, once while switching blue <-> green `--switches` times. Prints
failed requests and latency p50/p99 for both runs and their ratio. Bounded: about 2 x duration plus
a second of setup. `run_load` is also what the zero-failure test in
tests/adapters/test_local_target.py drives.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import statistics
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class LoadResult:
    sent: int = 0
    failures: int = 0
    latencies: list[float] = field(default_factory=list)  # seconds, successful requests only
    bodies: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)  # the first few, to say why
    elapsed: float = 0.0

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def run_load(
    port: int,
    rate: float,
    duration: float,
    during: Callable[[], None] | None = None,
    workers: int = 16,
    path: str = "/version",
) -> LoadResult:
    """GET `path` on 127.0.0.1:`port` `rate` times a second for `duration` seconds, on a fixed
    schedule shared by `workers` threads, while `during()` runs in the calling thread.

    A request fails if it raises or answers anything but 200. Latency is measured from the moment a
    request is actually sent.
    """
    total = int(rate * duration)
    slots = itertools.count()
    result = LoadResult()
    guard = threading.Lock()
    start = time.monotonic()

    def worker() -> None:
        while (i := next(slots)) < total:
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            t0 = time.perf_counter()
            error, body = None, ""
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            try:
                conn.request("GET", path)
                resp = conn.getresponse()
                body = resp.read().decode("utf-8", "replace")
                if resp.status != 200:
                    error = f"HTTP {resp.status}: {body[:80]!r}"
            except (OSError, http.client.HTTPException) as exc:
                error = f"{type(exc).__name__}: {exc}"
            finally:
                conn.close()
            latency = time.perf_counter() - t0
            with guard:
                result.sent += 1
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
        for t in threads:
            t.join()
    result.elapsed = time.monotonic() - start
    return result


def main() -> int:
    from adapters.local.target import LocalTarget
    from core.ports import ReleaseSpec, other_color
    from tests.support.moto_server import free_port

    parser = argparse.ArgumentParser(prog="python -m bench.switch_under_load")
    parser.add_argument("--rate", type=float, default=250.0, help="requests per second (>= 200)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per run")
    parser.add_argument("--switches", type=int, default=50)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="shipdeck-bench-") as tmp:
        ports = {"port": free_port(), "blue_port": free_port(), "green_port": free_port()}
        target = LocalTarget("bench", "local", ports, Path(tmp))
        try:
            target.stage("blue", ReleaseSpec("bench", "1.0", "c1", "d1"), 1)
            target.stage("green", ReleaseSpec("bench", "2.0", "c2", "d2"), 1)
            target.switch("blue", 1)
            switch_times: list[float] = []

            def switches() -> None:
                began, every = time.monotonic(), args.duration / (args.switches + 1)
                color = target.live_color()
                for i in range(args.switches):
                    time.sleep(max(0.0, began + (i + 1) * every - time.monotonic()))
                    color = other_color(color)
                    t0 = time.perf_counter()
                    target.switch(color, 1)
                    switch_times.append(time.perf_counter() - t0)

            baseline = run_load(target.port, args.rate, args.duration)
            switching = run_load(target.port, args.rate, args.duration, during=switches)
        finally:
            target.teardown()

    print(f"load: {args.rate:g} req/s for {args.duration:g} s per run, new connection per request")
    print(f"{'run':<22}{'sent':>7}{'failed':>8}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}")
    for name, r in (("steady", baseline), (f"{args.switches} switches", switching)):
        print(
            f"{name:<22}{r.sent:>7}{r.failures:>8}{r.sent / r.elapsed:>8.0f}"
            f"{r.percentile(50) * 1e3:>9.2f}{r.percentile(99) * 1e3:>9.2f}"
        )
    for label, q in (("p50", 50), ("p99", 99)):
        ratio = switching.percentile(q) / baseline.percentile(q)
        print(f"{label} ratio switching/steady: {ratio:.2f}")
    print(
        f"switch() call incl. read-back: median {statistics.median(switch_times) * 1e3:.1f} ms, "
        f"max {max(switch_times) * 1e3:.1f} ms"
    )
    print(f"responses while switching: {dict(switching.bodies)}")
    for error in baseline.errors + switching.errors:
        print(f"error: {error}")
    return 1 if baseline.failures or switching.failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
