"""How fast does FileLogSource tail a big log, next to `tail -n`?

    cd /work/main && python -m bench.log_pull [--lines 1000000] [--repeat 5]

Writes a log of `--lines` timestamped lines (about 100 bytes each) in a temporary folder, then
times, best of `--repeat`: FileLogSource.tail(lines=1000), tail(lines=ALL), and tail(since=...)
selecting the last 1,000 lines and all of them (the line-by-line reader), each against
`tail -n` on the same file with its output captured (so both sides include getting the lines
into this process). Prints lines/s and the ratio of times (ours / tail; lower is better).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

START = datetime(2026, 3, 1, tzinfo=UTC)


def write_log(path: Path, count: int) -> None:
    with path.open("w", encoding="utf-8") as f:
        chunk: list[str] = []
        for i in range(count):
            stamp = (START + timedelta(milliseconds=10 * i)).isoformat(timespec="milliseconds")
            chunk.append(
                f"{stamp} INFO chat-api request id={i:08d} path=/v1/chat status=200 "
                f"latency_ms={i % 997}\n"
            )
            if len(chunk) == 10_000:
                f.write("".join(chunk))
                chunk.clear()
        f.write("".join(chunk))


def best(repeat: int, fn: Callable[[], int]) -> tuple[float, int]:
    """Best wall time of `repeat` runs, and the line count the last run returned."""
    times = []
    got = 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        got = fn()
        times.append(time.perf_counter() - t0)
    return min(times), got


def main() -> int:
    from shipdeck.adapters.logs import FileLogSource

    parser = argparse.ArgumentParser(prog="python -m bench.log_pull")
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    tail = shutil.which("tail")
    if tail is None:
        print("tail(1) not found")
        return 2

    with tempfile.TemporaryDirectory(prefix="shipdeck-bench-logs-") as tmp:
        path = Path(tmp) / "app.log"
        t0 = time.perf_counter()
        write_log(path, args.lines)
        size = path.stat().st_size
        print(
            f"wrote {args.lines:,} lines, {size / 1e6:.1f} MB in {time.perf_counter() - t0:.1f} s"
        )
        source = FileLogSource(path)

        def tail_n(n: int) -> Callable[[], int]:
            def run() -> int:
                out = subprocess.run(
                    [tail, "-n", str(n), str(path)], capture_output=True, check=True
                )
                return out.stdout.count(b"\n")

            return run

        last_1000 = START + timedelta(milliseconds=10 * (args.lines - 1000))
        cases: list[tuple[str, Callable[[], int], Callable[[], int]]] = [
            ("last 1,000", lambda: len(source.tail(lines=1000)), tail_n(1000)),
            (f"all {args.lines:,}", lambda: len(source.tail(lines=args.lines)), tail_n(args.lines)),
            ("since -> last 1,000", lambda: len(source.tail(since=last_1000)), tail_n(1000)),
            ("since -> all", lambda: len(source.tail(since=START)), tail_n(args.lines)),
        ]
        print(
            f"{'case':<22}{'ours ms':>10}{'lines/s':>14}{'tail ms':>10}{'lines/s':>14}{'ratio':>8}"
        )
        for name, ours, theirs in cases:
            t_ours, n_ours = best(args.repeat, ours)
            t_tail, n_tail = best(args.repeat, theirs)
            if n_ours != n_tail:
                print(f"{name}: line counts differ: ours {n_ours}, tail {n_tail}")
                return 1
            print(
                f"{name:<22}{t_ours * 1e3:>10.1f}{n_ours / t_ours:>14,.0f}"
                f"{t_tail * 1e3:>10.1f}{n_tail / t_tail:>14,.0f}{t_ours / t_tail:>8.2f}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
