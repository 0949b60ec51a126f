"""The blue/green switch benchmark both switch scripts run: the same paced load twice, once with
traffic left alone and once while the target switches colors, so the local target
(switch_under_load.py) and the nginx target (nginx_switch.py) print figures that compare.
"""

from __future__ import annotations

import argparse
import statistics
import time

from shipdeck.core.ports import ReleaseSpec, Target, other_color
from tests.support.load import run_load


def parse_args(prog: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("--rate", type=float, default=250.0, help="requests per second (>= 200)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per run")
    parser.add_argument("--switches", type=int, default=50)
    return parser.parse_args()


def switch_bench(
    target: Target, port: int, args: argparse.Namespace, heading: str, switch_label: str
) -> int:
    """Stage two colors on `target`, load its front `port` steady and while switching, print
    failures, p50/p99 and their ratios; exit code 1 if any request failed. Tears `target` down."""
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

        baseline = run_load(port, args.rate, args.duration)
        switching = run_load(port, args.rate, args.duration, during=switches)
    finally:
        target.teardown()

    print(f"{heading}, {args.rate:g} req/s for {args.duration:g} s per run, new connection each")
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
        f"{switch_label}: median {statistics.median(switch_times) * 1e3:.1f} ms, "
        f"max {max(switch_times) * 1e3:.1f} ms"
    )
    print(f"responses while switching: {dict(switching.bodies)}")
    for error in baseline.errors + switching.errors:
        print(f"error: {error}")
    return 1 if baseline.failures or switching.failures else 0
