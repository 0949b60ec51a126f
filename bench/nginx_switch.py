"""Does a blue/green switch through nginx drop or slow requests?

    cd /work/main && python -m bench.nginx_switch [--rate 250] [--duration 10] [--switches 50]

Starts a private nginx (tests/support/nginx.py: temporary prefix, loopback port, `daemon off`,
stopped at the end) in front of two demo-app colors, then runs a paced load (a new connection per
request) twice: with traffic left alone, and while NginxTarget switches blue <-> green `--switches`
times (write include, `nginx -t`, graceful reload, read-back through the front). Prints failed
requests and p50/p99 latency for both runs and their ratio.
"""

from __future__ import annotations

import tempfile
from pathlib import Path


def main() -> int:
    from bench.load import parse_args, switch_bench
    from shipdeck.adapters.nginx import NginxTarget
    from tests.support.moto_server import free_port
    from tests.support.nginx import find_nginx, nginx_front

    args = parse_args("python -m bench.nginx_switch")
    binary = find_nginx()
    if binary is None:
        print("nginx is not installed: apt-get install nginx")
        return 2

    with tempfile.TemporaryDirectory(prefix="shipdeck-bench-nginx-") as tmp:
        blue, green = free_port(), free_port()
        with nginx_front(binary, Path(tmp) / "nginx", free_port(), blue) as front:
            target = NginxTarget("bench", "local", front.settings(blue, green), Path(tmp) / "st")
            return switch_bench(
                target,
                front.port,
                args,
                "nginx front",
                "switch() (write, nginx -t, reload, read-back)",
            )


if __name__ == "__main__":
    raise SystemExit(main())
