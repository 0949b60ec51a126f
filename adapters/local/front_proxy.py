"""The local target's traffic switch: a TCP proxy whose backend is a file.

    python -m shipdeck.adapters.local.front_proxy --listen 8600 --state backend.json

Every NEW connection is sent to the backend named in the state file at the moment it is accepted;
a connection already open keeps the backend it started with. Rewriting the file atomically
(os.replace) is therefore a switch that drops nothing: old requests finish on the old color, new
ones reach the new color. No backend in the file means no service: the connection is closed.

State file: JSON with at least {"backend": "127.0.0.1:PORT"}, and for a canary
{"canary": {"backend": "127.0.0.1:PORT", "weight": PERCENT}}; other keys are ignored here. New
connections go to the canary in exactly that proportion, by a smooth weighted round robin (nginx's:
deterministic, evenly spread), so 25% is 1 connection in every 4, not 25% on average.

Draining: a connection routed to the old color just before a switch may not have reached it yet
(still connecting, or queued in its accept backlog), so stopping the old color at once would reset
it. The proxy therefore publishes, in `draining.json` beside the state file, how many connections
each backend that no longer gets new connections still has open, and which version of the state
file it counted them against; the target stops a color only once the proxy has seen the current
state file and the color is gone from that file. The file changes only when those do, never per
request on the live color (nor on a canary that still takes traffic: its connections are listed
once its weight is 0).

Metrics: per backend counters (proxy_metrics.py) go to `metrics.json` beside the state file, at
most every PUBLISH_EVERY seconds and only when they changed: what a canary's analysis reads.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shipdeck.adapters.local.proxy_metrics import (
    METRICS_FILE,
    PUBLISH_EVERY,
    BackendStats,
    Exchange,
    Snapshot,
    thin,
)
from shipdeck.adapters.local.state_files import atomic_write_text

_BUFFER = 64 * 1024
_CONNECT_TIMEOUT = 5.0
_DRAIN_ON_STOP = 5.0
DRAINING_FILE = "draining.json"
ROUTE_POLL = 0.05

Backend = tuple[str, int]


def _log(message: str) -> None:
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    print(f"{now} front-proxy {message}", flush=True)


def _address(value: object) -> Backend | None:
    host, _, port = str(value).rpartition(":")
    return (host, int(port)) if host else None


@dataclass(frozen=True)
class Route:
    """Where new connections go: the live backend, and the canary with its percent."""

    live: Backend | None
    canary: Backend | None = None
    weight: int = 0

    @property
    def serving(self) -> frozenset[Backend]:
        """The backends that get new connections (their open ones are not draining)."""
        split = self.canary if self.weight > 0 else None
        return frozenset(b for b in (self.live, split) if b is not None)

    def text(self) -> str:
        live = f"{self.live[0]}:{self.live[1]}" if self.live else "no backend"
        if self.canary is None or self.weight <= 0:
            return live
        return f"{live}, canary {self.canary[0]}:{self.canary[1]} at {self.weight}%"


NO_ROUTE = Route(None)


class BackendFile:
    """The route in the state file, re-read only when the file changed (see route_key)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.key = ""  # route_key of the version last read
        self._route = NO_ROUTE

    @property
    def last(self) -> Route:
        """The route as of the last `current()`, without looking at the file again."""
        return self._route

    def current(self) -> Route:
        key = route_key(self.path)
        if key != self.key:
            route = self._read() if key else NO_ROUTE
            if route != self._route:
                _log(f"backend is now {route.text()}")
            self.key, self._route = key, route
        return self._route

    def _read(self) -> Route:
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
            live = _address(doc["backend"])
            canary = doc.get("canary")
            if not canary:
                return Route(live)
            weight = int(canary["weight"])
            if not 0 <= weight <= 100:
                raise ValueError(f"canary weight {weight} is not a percentage")
            return Route(live, _address(canary["backend"]), weight)
        except FileNotFoundError:
            return NO_ROUTE
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            _log(f"unreadable state file {self.path}: {exc}")
            return NO_ROUTE


class WeightedPicker:
    """Smooth weighted round robin between the live backend and the canary: each pick adds each
    side's weight to its credit and takes the side with most credit, which then pays 100. Over
    any 100 picks the canary gets exactly its weight, spread evenly; a new route starts over."""

    def __init__(self) -> None:
        self._route: Route | None = None
        self._credit = [0, 0]  # live, canary

    def pick(self, route: Route) -> Backend | None:
        if route.canary is None or route.weight <= 0:
            return route.live
        if route != self._route:
            self._route, self._credit = route, [0, 0]
        self._credit[0] += 100 - route.weight
        self._credit[1] += route.weight
        side = 1 if self._credit[1] > self._credit[0] else 0
        self._credit[side] -= 100
        return route.canary if side else route.live


async def _pipe(
    src: asyncio.StreamReader, dst: asyncio.StreamWriter, seen: Callable[[bytes], None]
) -> None:
    try:
        while data := await src.read(_BUFFER):
            seen(data)
            dst.write(data)
            await dst.drain()
        if dst.can_write_eof():
            dst.write_eof()  # half-close: the peer still sends its answer
    except OSError:
        dst.close()  # the other direction then ends too


def route_key(path: Path) -> str:
    """What identifies one version of the state file: os.replace always installs a new inode, so
    two rewrites within one coarse mtime tick are still told apart. "" when there is none."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return ""
    return f"{st.st_ino}:{st.st_mtime_ns}:{st.st_size}"


class Draining:
    """Open connections per backend; those of backends that get no new connections go to `path`,
    with the version of the state file they were counted against (`route`): a target that
    changed the route waits until the proxy has seen it before it trusts the counts."""

    def __init__(self, path: Path, routes: BackendFile) -> None:
        self.path = path
        self.routes = routes
        self._open: Counter[Backend] = Counter()
        self._published: dict[str, Any] | None = None

    def opened(self, backend: Backend) -> None:
        self._open[backend] += 1
        self.publish()

    def closed(self, backend: Backend) -> None:
        self._open[backend] -= 1
        if self._open[backend] <= 0:
            del self._open[backend]
        self.publish()

    def publish(self) -> None:
        """Rewrite the file (atomically) if the draining backends, their counts or the route
        changed."""
        serving = self.routes.last.serving
        stale = {f"{h}:{p}": n for (h, p), n in sorted(self._open.items()) if (h, p) not in serving}
        doc = {"draining": stale, "route": self.routes.key}
        if doc == self._published:
            return
        try:  # private (the workspace's mode), never through a symlink, never torn
            atomic_write_text(self.path, json.dumps(doc))
        except OSError as exc:  # the target then waits its drain timeout out: slower, not wrong
            _log(f"cannot write {self.path}: {exc}")
            return
        self._published = doc


class Metrics:
    """Per-backend counters and the history of their snapshots that goes to metrics.json."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.backends: dict[Backend, BackendStats] = {}
        self._started = time.time()
        self._history: list[Snapshot] = []
        self._published: dict[str, Any] | None = None

    def of(self, backend: Backend) -> BackendStats:
        return self.backends.setdefault(backend, BackendStats())

    def snapshot(self) -> str | None:
        """The file's new text with a snapshot added, None if nothing was counted since the
        last one."""
        counters = {f"{h}:{p}": s.as_dict() for (h, p), s in sorted(self.backends.items())}
        if counters == self._published:
            return None
        now = time.time()
        self._history = thin([*self._history, {"at": now, "backends": counters}], now)
        self._published = counters
        return json.dumps(
            {"started": self._started, "history": self._history}, separators=(",", ":")
        )

    def write(self, text: str | None) -> None:
        """Private (the workspace's mode), never through a symlink, never torn."""
        if text is None:
            return
        try:
            atomic_write_text(self.path, text)
        except OSError as exc:  # an analysis then reads older values: inconclusive, not wrong
            _log(f"cannot write {self.path}: {exc}")

    async def publish_every(self, seconds: float) -> None:
        """Snapshot on the loop (the counters do not move meanwhile), write in a thread: an
        fsync must not hold up the connections."""
        while True:
            await asyncio.to_thread(self.write, self.snapshot())
            await asyncio.sleep(seconds)


class FrontProxy:
    def __init__(self, listen: int, state: Path) -> None:
        self.listen = listen
        self.backend = BackendFile(state)
        self.picker = WeightedPicker()
        self.draining = Draining(state.with_name(DRAINING_FILE), self.backend)
        self.metrics = Metrics(state.with_name(METRICS_FILE))
        self._connections: set[asyncio.Task[None]] = set()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            backend = self.picker.pick(self.backend.current())
            if backend is None:
                self.draining.publish()
                return
            self.draining.opened(backend)
            try:
                await self._relay(backend, reader, writer)
            finally:
                self.draining.closed(backend)
        finally:
            writer.close()
            self._connections.discard(task)

    async def _relay(
        self, backend: Backend, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        stats = self.metrics.of(backend)
        stats.connections += 1
        try:
            up_reader, up_writer = await asyncio.wait_for(
                asyncio.open_connection(*backend), _CONNECT_TIMEOUT
            )
        except (OSError, TimeoutError) as exc:
            stats.connect_errors += 1
            _log(f"cannot reach backend {backend[0]}:{backend[1]}: {exc}")
            return
        exchange = Exchange(stats, time.monotonic)
        try:
            await asyncio.gather(
                _pipe(reader, up_writer, exchange.client_sent),
                _pipe(up_reader, writer, exchange.responses.feed),
            )
        finally:
            exchange.responses.closed()
            up_writer.close()

    async def _watch_route(self) -> None:
        """Look at the state file every ROUTE_POLL even without traffic, so draining.json says
        soon after a route change which backends no longer get new connections (a canary put
        back to 0 is only known to drain once the proxy has seen that)."""
        while True:
            self.backend.current()
            self.draining.publish()
            await asyncio.sleep(ROUTE_POLL)

    async def serve(self) -> None:
        server = await asyncio.start_server(self._handle, "127.0.0.1", self.listen, backlog=1024)
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stopping.set)
        _log(f"listening on 127.0.0.1:{self.listen}, backend from {self.backend.path}")
        self.backend.current()
        self.draining.publish()  # a previous proxy's counts are void
        tasks = [
            asyncio.create_task(self._watch_route()),
            asyncio.create_task(self.metrics.publish_every(PUBLISH_EVERY)),
        ]
        await stopping.wait()
        server.close()
        if self._connections:
            # In-flight requests finish; new connections are already refused.
            _, pending = await asyncio.wait(set(self._connections), timeout=_DRAIN_ON_STOP)
            for task in pending:
                task.cancel()
        for running in tasks:
            running.cancel()
        self.metrics.write(self.metrics.snapshot())  # the last requests' counts
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 1.0)
        _log("stopped")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shipdeck.adapters.local.front_proxy")
    parser.add_argument("--listen", type=int, required=True)
    parser.add_argument("--state", type=Path, required=True)
    args = parser.parse_args(argv)
    asyncio.run(FrontProxy(args.listen, args.state).serve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
