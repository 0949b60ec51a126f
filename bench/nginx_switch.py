"""Does a blue/green switch through nginx drop or slow requests?

    cd /work/main && python -m bench.nginx_switch [--rate 250] [--duration 10] [--switches 50]

Starts a private nginx (temporary prefix, loopback port, `daemon off`, stopped at the end) in front
of two demo-app colors, then runs a paced load (a new connection per request) twice: with traffic
left alone, and while NginxTarget switches blue <-> green `--switches` times (write include,
`nginx -t`, graceful reload, read-back through the front). Prints failed requests and p50/p99
latency for both runs and their ratio. `nginx_front` is also what tests/adapters/test_nginx.py
starts its nginx with.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.switch_under_load import run_load

NGINX_CONF = """\
{user}daemon off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    include {include};
    server {{
        listen 127.0.0.1:{port};
        location / {{ proxy_pass http://{upstream}; }}
    }}
}}
"""


def find_nginx() -> str | None:
    """nginx lives in /usr/sbin, which a non-login PATH may lack."""
    found = shutil.which("nginx")
    if found is None and os.access("/usr/sbin/nginx", os.X_OK):
        found = "/usr/sbin/nginx"
    return found


@dataclass
class NginxFront:
    binary: str
    prefix: Path
    conf: Path
    include: Path
    upstream: str
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def settings(self, blue_port: int, green_port: int, **extra: Any) -> dict[str, Any]:
        """NginxTarget settings for this nginx."""
        return {
            "include_file": str(self.include),
            "upstream": self.upstream,
            "blue_port": blue_port,
            "green_port": green_port,
            "nginx": self.binary,
            "nginx_conf": str(self.conf),
            "nginx_args": ["-p", str(self.prefix), "-e", "stderr"],
            "url": self.url,
            **extra,
        }


@contextlib.contextmanager
def nginx_front(
    binary: str, prefix: Path, port: int, first_backend: int, upstream: str = "shipdeck_app"
) -> Iterator[NginxFront]:
    """A private nginx on 127.0.0.1:`port`, proxying to the upstream in its include file (first
    pointing at `first_backend`), stopped gracefully (then killed) on exit."""
    from adapters.nginx import render_include

    prefix.mkdir(parents=True, exist_ok=True)
    include = prefix / "upstream.conf"
    include.write_text(render_include(upstream, first_backend, "blue"), encoding="utf-8")
    conf = prefix / "nginx.conf"
    user = "user root;\n" if os.geteuid() == 0 else ""  # workers must read our private prefix
    conf.write_text(
        NGINX_CONF.format(user=user, prefix=prefix, include=include, port=port, upstream=upstream),
        encoding="utf-8",
    )
    log = (prefix / "nginx.out").open("wb")
    proc = subprocess.Popen(
        [binary, "-p", str(prefix), "-e", "stderr", "-c", str(conf)],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                output = (prefix / "nginx.out").read_text(errors="replace").strip()
                raise RuntimeError(f"nginx did not start on port {port}: {output[-500:]}")
            time.sleep(0.05)
        yield NginxFront(binary, prefix, conf, include, upstream, port)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGQUIT)  # graceful: workers finish their requests
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()


def main() -> int:
    from adapters.nginx import NginxTarget
    from core.ports import ReleaseSpec, other_color
    from tests.support.moto_server import free_port

    parser = argparse.ArgumentParser(prog="python -m bench.nginx_switch")
    parser.add_argument("--rate", type=float, default=250.0, help="requests per second (>= 200)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per run")
    parser.add_argument("--switches", type=int, default=50)
    args = parser.parse_args()
    binary = find_nginx()
    if binary is None:
        print("nginx is not installed: apt-get install nginx")
        return 2

    with tempfile.TemporaryDirectory(prefix="shipdeck-bench-nginx-") as tmp:
        blue, green = free_port(), free_port()
        with nginx_front(binary, Path(tmp) / "nginx", free_port(), blue) as front:
            target = NginxTarget("bench", "local", front.settings(blue, green), Path(tmp) / "st")
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

                baseline = run_load(front.port, args.rate, args.duration)
                switching = run_load(front.port, args.rate, args.duration, during=switches)
            finally:
                target.teardown()

    print(f"nginx front, {args.rate:g} req/s for {args.duration:g} s per run, new connection each")
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
        "switch() (write, nginx -t, reload, read-back): "
        f"median {statistics.median(switch_times) * 1e3:.1f} ms, "
        f"max {max(switch_times) * 1e3:.1f} ms"
    )
    print(f"responses while switching: {dict(switching.bodies)}")
    for error in baseline.errors + switching.errors:
        print(f"error: {error}")
    return 1 if baseline.failures or switching.failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
