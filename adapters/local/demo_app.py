"""A tiny HTTP app that the local target deploys in demos and tests.

It says which version and color it is (so a switch is observable from outside; every answer
carries an X-Version header too), can be told to be unhealthy (so failed health checks and
rollbacks can be shown) or to fail a share of its traffic (so a canary's analysis has errors to
find), logs each request to stdout (so `shipdeck task logs` has something real to pull), and
serves its response counters at GET /metrics for Prometheus (adapters/local/demo_metrics.py).

    python -m shipdeck.adapters.local.demo_app --port 8601 --version 1.2.0 --color blue \
        [--health ok] [--error-rate 0.05]
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from shipdeck.adapters.local.demo_metrics import CONTENT_TYPE, DemoMetrics

# How the local and nginx targets run this app when no `command` is configured. `--opt=value`
# items keep a version or config value that starts with "-" from being read as an option; a
# release without `demo_health` in its config renders "--health=", which means ok; one without
# `demo_error_rate` renders "--error-rate=", which means no errors.
COMMAND: tuple[str, ...] = (
    sys.executable, "-m", "shipdeck.adapters.local.demo_app", "--port", "{port}", "--version={version}",
    "--color={color}", "--name={app}", "--health={config[demo_health]}",
    "--error-rate={config[demo_error_rate]}",
)  # fmt: skip


def _printable(text: str) -> str:
    """One log line per request, whatever a client (or a hostile version string) sends."""
    return text.encode("unicode_escape").decode("ascii")


class HealthMode:
    """`ok`, `fail`, `fail-after:SECONDS` (healthy at first, then failing: a bad release that
    passes the first check) or `fail-when:PATH` (failing while the file PATH exists: someone, a
    demo or a test, decides when the release goes bad, whatever the machine's load). An empty
    string means `ok`, so an unset config value is harmless."""

    def __init__(self, spec: str) -> None:
        self.spec = spec or "ok"
        self.fail_after: float | None
        self.fail_when: Path | None = None
        if self.spec.startswith("fail-when:") and self.spec != "fail-when:":
            self.fail_after = None
            self.fail_when = Path(self.spec.removeprefix("fail-when:"))
        elif self.spec == "ok":
            self.fail_after = None
        elif self.spec == "fail":
            self.fail_after = 0.0
        elif self.spec.startswith("fail-after:"):
            try:
                self.fail_after = float(self.spec.removeprefix("fail-after:"))
            except ValueError:
                raise argparse.ArgumentTypeError(f"bad seconds in {spec!r}") from None
        else:
            raise argparse.ArgumentTypeError(
                f"expected ok, fail, fail-after:SECONDS or fail-when:PATH, not {spec!r}"
            )
        self.started = time.monotonic()

    def healthy(self) -> bool:
        if self.fail_when is not None:
            return not self.fail_when.exists()
        return self.fail_after is None or time.monotonic() - self.started < self.fail_after


class ErrorRate:
    """A share of the app's traffic (GET /) that answers 500, deterministically: the n-th request
    fails when n * rate crosses a whole number, so 0.05 is every 20th request, exactly. Health
    checks and /version never fail: the release is healthy, only its traffic is not. An empty
    string means 0."""

    def __init__(self, spec: str) -> None:
        try:
            self.rate = float(spec) if spec else 0.0
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected a share from 0 to 1, not {spec!r}"
            ) from None
        if not 0.0 <= self.rate <= 1.0:
            raise argparse.ArgumentTypeError(f"expected a share from 0 to 1, not {spec!r}")
        self._count = 0
        self._guard = threading.Lock()

    def next_fails(self) -> bool:
        with self._guard:
            self._count += 1
            n = self._count
        return int(n * self.rate + 1e-9) > int((n - 1) * self.rate + 1e-9)


class DemoServer(ThreadingHTTPServer):
    # A burst of new connections (one per request, HTTP/1.0) must queue, not be refused.
    request_queue_size = 128
    # On SIGTERM, finish the requests in flight before exiting: that is what makes a stop clean.
    daemon_threads = False
    block_on_close = True

    def __init__(
        self,
        port: int,
        app: str,
        version: str,
        color: str,
        health: HealthMode,
        errors: ErrorRate | None = None,
    ) -> None:
        self.app = app
        self.version = version
        self.color = color
        self.health = health
        self.errors = errors or ErrorRate("")
        self.metrics = DemoMetrics(app, color, version)
        super().__init__(("127.0.0.1", port), DemoHandler)


class DemoHandler(BaseHTTPRequestHandler):
    server: DemoServer
    server_version = "shipdeck-demo/1"
    timeout = 10  # a client that stalls must not pin a thread (and a clean stop) forever

    def do_GET(self) -> None:
        self._started = time.monotonic()
        path = self.path.split("?", 1)[0]
        srv = self.server
        if path == "/metrics":
            self._send(200, CONTENT_TYPE, srv.metrics.render(), counted=False)
        elif path == "/version":
            self._send(200, "text/plain; charset=utf-8", srv.version)
        elif path == "/health":
            if srv.health.healthy():
                self._send(200, "text/plain; charset=utf-8", "ok")
            else:
                self._send(503, "text/plain; charset=utf-8", "unhealthy")
        elif path == "/" and srv.errors.next_fails():
            self._send(500, "text/plain; charset=utf-8", "injected error")
        elif path == "/":
            body = {"app": srv.app, "version": srv.version, "color": srv.color}
            self._send(200, "application/json", json.dumps(body))
        else:
            self._send(404, "text/plain; charset=utf-8", "not found")

    def _send(self, status: int, content_type: str, text: str, counted: bool = True) -> None:
        """Count the answer (but a scrape's: it is not the app's traffic), then send it: counted
        after the bytes went out, a scrape the client sent next could be answered first (the
        server answers each request on its own thread) and miss it."""
        if counted:
            self.server.metrics.observe(status, time.monotonic() - self._started)
        data = text.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Version", _printable(self.server.version))
        self.end_headers()
        self.wfile.write(data)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        self._log(f'"{self.requestline}" {code}')

    def log_message(self, format: str, *args: Any) -> None:
        self._log(format % args)

    def _log(self, message: str) -> None:
        now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        srv = self.server
        client = self.client_address[0]
        print(f"{now} {_printable(srv.app)} {srv.color} {client} {_printable(message)}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shipdeck.adapters.local.demo_app")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--version", required=True)
    parser.add_argument("--color", required=True)
    parser.add_argument("--name", default="demo-app")
    parser.add_argument("--health", type=HealthMode, default=HealthMode("ok"))
    parser.add_argument("--error-rate", type=ErrorRate, default=ErrorRate(""))
    args = parser.parse_args(argv)

    server = DemoServer(
        args.port, args.name, args.version, args.color, args.health, args.error_rate
    )

    def stop(signum: int, frame: object) -> None:
        # shutdown() waits for serve_forever to return, which runs in this very thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(
        f"demo app {args.name!r} version {args.version!r} color {args.color} "
        f"listening on 127.0.0.1:{args.port} health {args.health.spec} "
        f"error rate {args.error_rate.rate:g}",
        flush=True,
    )
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    print(f"demo app {args.name!r} stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
