"""Does a blue/green switch of the local target drop or slow requests?

    cd /work/main && python -m bench.switch_under_load [--rate 250] [--duration 10] [--switches 50]

Runs a paced load (one new connection per request, like HTTP/1.0 clients) against the front port
twice: once with traffic left alone, once while switching blue <-> green `--switches` times. Prints
failed requests and latency p50/p99 for both runs and their ratio. Bounded: about 2 x duration plus
a second of setup. The load (tests/support/load.py) is the one the zero-failure test in
tests/adapters/test_local_target.py drives.
"""

from __future__ import annotations

import tempfile
from pathlib import Path


def main() -> int:
    from bench.load import parse_args, switch_bench
    from shipdeck.adapters.local.target import LocalTarget
    from tests.support.moto_server import free_port

    args = parse_args("python -m bench.switch_under_load")
    with tempfile.TemporaryDirectory(prefix="shipdeck-bench-") as tmp:
        ports = {"port": free_port(), "blue_port": free_port(), "green_port": free_port()}
        target = LocalTarget("bench", "local", ports, Path(tmp))
        return switch_bench(
            target, target.port, args, "local target", "switch() call incl. read-back"
        )


if __name__ == "__main__":
    raise SystemExit(main())
