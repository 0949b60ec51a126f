"""The local target's traffic switch: a TCP proxy whose backend is a file.

    python -m shipdeck.adapters.local.front_proxy --listen 8600 --state backend.json

Every NEW connection is sent to the backend named in the state file at the moment it is accepted;
a connection already open keeps the backend it started with. Rewriting the file atomically
(os.replace) is therefore a switch that drops nothing: old requests finish on the old color, new
ones reach the new color. No backend in the file means no service: the connection is closed.

State file: JSON with at least {"backend": "127.0.0.1:PORT"}; other keys are ignored here.

Draining: a connection routed to the old color just before a switch may not have reached it yet
(still connecting, or queued in its accept backlog), so stopping the old color at once would reset
it. The proxy therefore publishes, in `draining.json` beside the state file, how many connections
each backend that is no longer live still has open; the target stops a color only once it is gone
from that file. The file changes only when that set does, never per request on the live color.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

_BUFFER = 64 * 1024
_CONNECT_TIMEOUT = 5.0
_DRAIN_ON_STOP = 5.0
DRAINING_FILE = "draining.json"

Backend = tuple[str, int]


def _log(message: str) -> None:
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    print(f"{now} front-proxy {message}", flush=True)


class BackendFile:
    """The backend named in the state file, re-read only when the file changed.

    The cache key includes the inode: os.replace always installs a new inode, so two rewrites
    within one coarse mtime tick are still told apart.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._key: tuple[int, int, int] | None = None
        self._backend: Backend | None = None

    @property
    def last(self) -> Backend | None:
        """The backend as of the last `current()`, without looking at the file again."""
        return self._backend

    def current(self) -> Backend | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self._key, self._backend = None, None
            return None
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        if key != self._key:
            backend = self._read()
            if backend != self._backend:
                _log(f"backend is now {backend[0]}:{backend[1]}" if backend else "no backend")
            self._key, self._backend = key, backend
        return self._backend

    def _read(self) -> Backend | None:
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
            host, _, port = str(doc["backend"]).rpartition(":")
            return (host, int(port)) if host else None
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            _log(f"unreadable state file {self.path}: {exc}")
            return None


async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    try:
        while data := await src.read(_BUFFER):
            dst.write(data)
            await dst.drain()
        if dst.can_write_eof():
            dst.write_eof()  # half-close: the peer still sends its answer
    except OSError:
        dst.close()  # the other direction then ends too


class Draining:
    """Open connections per backend; those of backends that are no longer live go to `path`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._open: Counter[Backend] = Counter()
        self._published: dict[str, int] | None = None

    def opened(self, backend: Backend, live: Backend | None) -> None:
        self._open[backend] += 1
        self.publish(live)

    def closed(self, backend: Backend, live: Backend | None) -> None:
        self._open[backend] -= 1
        if self._open[backend] <= 0:
            del self._open[backend]
        self.publish(live)

    def publish(self, live: Backend | None) -> None:
        """Rewrite the file (atomically) if the set of draining backends or their counts changed."""
        stale = {f"{h}:{p}": n for (h, p), n in sorted(self._open.items()) if (h, p) != live}
        if stale == self._published:
            return
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            tmp.write_text(json.dumps({"draining": stale}), encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError as exc:  # the target then waits its drain timeout out: slower, not wrong
            _log(f"cannot write {self.path}: {exc}")
            return
        self._published = stale


class FrontProxy:
    def __init__(self, listen: int, state: Path) -> None:
        self.listen = listen
        self.backend = BackendFile(state)
        self.draining = Draining(state.with_name(DRAINING_FILE))
        self._connections: set[asyncio.Task[None]] = set()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            backend = self.backend.current()
            if backend is None:
                self.draining.publish(None)
                return
            self.draining.opened(backend, backend)
            try:
                await self._relay(backend, reader, writer)
            finally:
                self.draining.closed(backend, self.backend.last)
        finally:
            writer.close()
            self._connections.discard(task)

    async def _relay(
        self, backend: Backend, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            up_reader, up_writer = await asyncio.wait_for(
                asyncio.open_connection(*backend), _CONNECT_TIMEOUT
            )
        except (OSError, TimeoutError) as exc:
            _log(f"cannot reach backend {backend[0]}:{backend[1]}: {exc}")
            return
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            up_writer.close()

    async def serve(self) -> None:
        server = await asyncio.start_server(self._handle, "127.0.0.1", self.listen, backlog=1024)
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stopping.set)
        _log(f"listening on 127.0.0.1:{self.listen}, backend from {self.backend.path}")
        self.draining.publish(self.backend.current())  # a previous proxy's counts are void
        await stopping.wait()
        server.close()
        if self._connections:
            # In-flight requests finish; new connections are already refused.
            _, pending = await asyncio.wait(set(self._connections), timeout=_DRAIN_ON_STOP)
            for task in pending:
                task.cancel()
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
