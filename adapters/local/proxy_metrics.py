"""The local front proxy's own counters, per backend: what a canary's analysis reads on `local`.

The proxy (front_proxy.py) counts, per backend, connections, requests, responses by status class
(from the HTTP/1.x status lines it relays, several per keep-alive connection) and latency from a
request's first byte to its response's first byte, in a fixed log-spaced histogram. Counters only
ever grow, so any window's values are the difference of two snapshots, as with Prometheus
counters. The proxy keeps a thinned history of snapshots (dense for the last seconds, sparser
further back) in `metrics.json` beside its state file; `sample` takes the difference between the
newest snapshot and the oldest one inside the window. A window therefore never counts traffic from
before it began (a measurement right after a weight change sees only that weight), and may miss
up to one history spacing at its start.

This module has no asyncio: the target and the metrics source import it to read the file.
"""

from __future__ import annotations

import bisect
import math
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shipdeck.adapters.local.state_files import read_state

METRICS_FILE = "metrics.json"
PUBLISH_EVERY = 0.5  # seconds; the file is rewritten at most this often, and only when it changed
# (max age, spacing) in seconds: snapshots younger than 10 s are all kept, then one per 5 s up to
# 2 minutes, then one a minute up to an hour (about 100 snapshots in all).
HISTORY_TIERS: tuple[tuple[float, float], ...] = ((10.0, 0.0), (120.0, 5.0), (3600.0, 60.0))
# Latency bucket upper bounds in ms: 0.25 ms to about 2 minutes, each 25% above the last, so a
# percentile read from them is within 25% of the true one.
LATENCY_BOUNDS_MS: tuple[float, ...] = tuple(0.25 * 1.25**i for i in range(59))
_MAX_HEAD = 64 * 1024  # a response head longer than this is not HTTP we understand
_STATUS_LINE = re.compile(rb"HTTP/1\.[01] (\d{3})(?: |\r?$)")


def status_class(code: int) -> str:
    return f"{code // 100}xx"


@dataclass
class BackendStats:
    """Cumulative counters of one backend since the proxy started."""

    connections: int = 0
    connect_errors: int = 0
    requests: int = 0
    responses: Counter[str] = field(default_factory=Counter)
    latency: Counter[int] = field(default_factory=Counter)  # bucket index -> count

    def observe_latency(self, seconds: float) -> None:
        self.latency[bisect.bisect_left(LATENCY_BOUNDS_MS, seconds * 1000.0)] += 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "connections": self.connections,
            "connect_errors": self.connect_errors,
            "requests": self.requests,
            "responses": dict(sorted(self.responses.items())),
            "latency": {str(k): v for k, v in sorted(self.latency.items())},
        }


class ResponseParser:
    """Finds the HTTP/1.x responses in a backend->client byte stream, without buffering bodies.

    `on_start()` at a response's first byte, `on_status(code)` once its head is read (interim 1xx
    heads included), `on_done()` once its body is over (Content-Length, chunked, none for HEAD,
    1xx, 204 and 304, or the end of the stream). `head_request()` says whether the request being
    answered was a HEAD. Anything it cannot read (a 101 upgrade, a head that is not HTTP/1.x) makes
    it stop looking: the bytes are still relayed, they are just not counted.
    """

    def __init__(
        self,
        on_start: Callable[[], None],
        on_status: Callable[[int], None],
        on_done: Callable[[], None],
        head_request: Callable[[], bool] = lambda: False,
    ) -> None:
        self._on_start, self._on_status, self._on_done = on_start, on_status, on_done
        self._head_request = head_request
        self._state = "head"
        self._buf = b""
        self._left = 0  # body bytes still to skip (Content-Length, or a chunk and its CRLF)

    def feed(self, data: bytes) -> None:
        while data and self._state != "opaque":
            if self._state == "head":
                data = self._read_head(data)
            elif self._state in ("length", "chunk-data"):
                n = min(len(data), self._left)
                self._left -= n
                data = data[n:]
                if self._left == 0:
                    self._state = "chunk-size" if self._state == "chunk-data" else "head"
                    if self._state == "head":
                        self._on_done()
            elif self._state == "eof":
                return
            else:  # chunk-size or trailers: line by line
                data = self._read_line(data)

    def closed(self) -> None:
        """The stream ended: a body that lasts until the end is over now."""
        if self._state == "eof":
            self._state = "head"
            self._on_done()

    def _read_head(self, data: bytes) -> bytes:
        if not self._buf:
            self._on_start()
        self._buf += data
        end = self._buf.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buf) > _MAX_HEAD:
                self._state = "opaque"
            return b""
        head, rest = self._buf[:end], self._buf[end + 4 :]
        self._buf = b""
        lines = head.split(b"\r\n")
        match = _STATUS_LINE.match(lines[0])
        if match is None:
            self._state = "opaque"
            return b""
        code = int(match.group(1))
        self._on_status(code)
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip().lower()
        if code == 101:
            self._state = "opaque"
        elif 100 <= code < 200:
            pass  # interim: the final response follows
        elif code in (204, 304) or self._head_request():
            self._on_done()
        elif b"chunked" in headers.get(b"transfer-encoding", b""):
            self._state = "chunk-size"
        elif b"content-length" in headers:
            try:
                self._left = int(headers[b"content-length"])
            except ValueError:
                self._left = -1
            if self._left < 0:
                self._state = "opaque"
                return b""
            if self._left == 0:
                self._on_done()
            else:
                self._state = "length"
        else:
            self._state = "eof"
        return rest

    def _read_line(self, data: bytes) -> bytes:
        self._buf += data
        end = self._buf.find(b"\r\n")
        if end < 0:
            if len(self._buf) > _MAX_HEAD:
                self._state = "opaque"
            return b""
        line, rest = self._buf[:end], self._buf[end + 2 :]
        self._buf = b""
        if self._state == "trailers":
            if not line:
                self._state = "head"
                self._on_done()
            return rest
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            self._state = "opaque"
            return b""
        if size == 0:
            self._state = "trailers"
        else:
            self._state, self._left = "chunk-data", size + 2
        return rest


class Exchange:
    """One proxied connection's request/response pairing, for the counters of its backend.

    A request starts with the first client bytes after the previous response ended (or at the
    start); its latency runs to its response's first byte. Requests a client pipelines before
    the answer to the previous one count as one: the clients we serve do not pipeline.
    """

    def __init__(self, stats: BackendStats, clock: Callable[[], float]) -> None:
        self.stats = stats
        self._clock = clock
        self._started: float | None = None
        self._head = False
        self._waiting = False  # a request was sent and its final response is not over yet
        self.responses = ResponseParser(
            self._response_start, self._status, self._done, self._is_head
        )

    def client_sent(self, data: bytes) -> None:
        if not self._waiting:
            self._waiting = True
            self._started = self._clock()
            self._head = data.startswith(b"HEAD ")
            self.stats.requests += 1

    def _response_start(self) -> None:
        if self._started is not None:
            self.stats.observe_latency(self._clock() - self._started)
            self._started = None

    def _status(self, code: int) -> None:
        if code >= 200:
            self.stats.responses[status_class(code)] += 1

    def _done(self) -> None:
        self._waiting = False

    def _is_head(self) -> bool:
        return self._head


# --- the history of snapshots -----------------------------------------------------------------

Snapshot = dict[str, Any]  # {"at": unix seconds, "backends": {"host:port": BackendStats.as_dict()}}


def thin(history: Sequence[Snapshot], now: float) -> list[Snapshot]:
    """`history` (oldest first) with snapshots dropped so each age tier keeps one per its
    spacing; the newest is always kept, and nothing older than the last tier."""
    kept: list[Snapshot] = []
    for snap in reversed(history):
        age = now - snap["at"]
        tier = next((t for t in HISTORY_TIERS if age <= t[0]), None)
        if tier is None:
            break
        if not kept or kept[-1]["at"] - snap["at"] >= tier[1]:
            kept.append(snap)
    return kept[::-1]


def _delta(new: Mapping[str, Any], old: Mapping[str, Any] | None, key: str) -> Counter[str]:
    before = Counter((old or {}).get(key, {}))
    after = Counter(new.get(key, {}))
    after.subtract(before)
    return after


def percentile_ms(buckets: Mapping[int, int], q: float) -> float | None:
    """The q-th percentile (0-100) of a latency histogram: the upper bound of the bucket that
    holds it (the last bucket, above every bound, reads as its lower bound)."""
    total = sum(buckets.values())
    if total <= 0:
        return None
    rank = math.ceil(q / 100 * total)
    seen = 0
    for index in sorted(buckets):
        seen += buckets[index]
        if seen >= rank:
            return LATENCY_BOUNDS_MS[min(index, len(LATENCY_BOUNDS_MS) - 1)]
    return LATENCY_BOUNDS_MS[-1]


def window_values(
    doc: Mapping[str, Any], backend: str, window: float, now: float
) -> dict[str, float]:
    """The metrics of `backend` over the last `window` seconds, from a metrics.json document:
    requests, responses, error_rate (5xx / responses), latency_p50_ms and latency_p95_ms; a
    value without data (no response, no latency) is left out."""
    history: list[Snapshot] = list(doc.get("history", []))
    start = now - window
    inside = [s for s in history if s["at"] >= start]
    if not inside:
        return {"requests": 0.0, "responses": 0.0}
    latest = inside[-1]["backends"].get(backend, {})
    # From the proxy's start, everything counted is inside the window; else from the oldest
    # snapshot inside it.
    base = None if float(doc.get("started", 0.0)) >= start else inside[0]["backends"].get(backend)
    requests = latest.get("requests", 0) - (base or {}).get("requests", 0)
    latency = {int(k): v for k, v in _delta(latest, base, "latency").items()}
    return analysis_values(requests, _delta(latest, base, "responses"), latency)


def analysis_values(
    requests: float, responses: Mapping[str, int], latency: Mapping[int, int]
) -> dict[str, float]:
    """What a canary's analysis reads from one backend's counts over a window (the local proxy's
    counters, nginx's access log): requests, responses, error_rate (5xx / responses),
    latency_p50_ms and latency_p95_ms; with no response the rate and latencies are left out."""
    out = {"requests": float(requests), "responses": float(sum(responses.values()))}
    if out["responses"] > 0:
        out["error_rate"] = responses.get("5xx", 0) / out["responses"]
    buckets = {k: v for k, v in latency.items() if v > 0}
    for name, q in (("latency_p50_ms", 50), ("latency_p95_ms", 95)):
        value = percentile_ms(buckets, q)
        if value is not None:
            out[name] = value
    return out


def read_metrics(
    path: Path, backend: str, window: float, now: float, where: str
) -> dict[str, float]:
    """window_values from the file (a one-line AdapterError when it is unreadable)."""
    return window_values(read_state(path, where), backend, window, now)
