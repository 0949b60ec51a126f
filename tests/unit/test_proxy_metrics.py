"""The local front proxy's counting, pure: HTTP/1.x responses found in a byte stream, the weighted
split of new connections, the history of snapshots and a window's values read from it."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest

from shipdeck.adapters.local.demo_app import ErrorRate
from shipdeck.adapters.local.front_proxy import Route, WeightedPicker
from shipdeck.adapters.local.proxy_metrics import (
    BackendStats,
    Exchange,
    ResponseParser,
    percentile_ms,
    thin,
    window_values,
)

KEEP_ALIVE = (
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"
    b"HTTP/1.1 100 Continue\r\n\r\n"
    b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"4;x=y\r\nHTTP\r\n3\r\n/1.\r\n0\r\nTrailer: 1\r\n\r\n"
    b"HTTP/1.1 404 Not Found\r\ncontent-length: 12\r\n\r\nHTTP/1.1 500"
    b"HTTP/1.0 500 Oops\r\n\r\nuntil the end"
)


def _parse(chunks: list[bytes], head: bool = False) -> tuple[list[int], int, int]:
    statuses: list[int] = []
    counts = Counter[str]()
    parser = ResponseParser(
        lambda: counts.update(["start"]),
        statuses.append,
        lambda: counts.update(["done"]),
        lambda: head,
    )
    for chunk in chunks:
        parser.feed(chunk)
    parser.closed()
    return statuses, counts["start"], counts["done"]


@pytest.mark.parametrize("size", [len(KEEP_ALIVE), 7, 1])
def test_responses_on_a_keep_alive_connection_are_found_however_they_are_cut(size: int) -> None:
    chunks = [KEEP_ALIVE[i : i + size] for i in range(0, len(KEEP_ALIVE), size)]
    statuses, started, done = _parse(chunks)
    # A body that looks like a status line is a body; the interim 100 is a head, not a response.
    assert statuses == [200, 503, 100, 201, 404, 500]
    assert (started, done) == (6, 5)


def test_a_head_answer_has_no_body_and_what_is_not_http_is_not_counted() -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\nHTTP/1.1 502 Bad\r\nContent-Length: 0\r\n\r\n"
    assert _parse([head], head=True) == ([200, 502], 2, 2)
    assert _parse([b"SSH-2.0-OpenSSH\r\n\r\nHTTP/1.1 500 x\r\n\r\n"])[0] == []
    assert _parse([b"HTTP/1.1 101 Switching\r\n\r\nHTTP/1.1 500 x\r\n\r\n"])[0] == [101]
    for length in (b"-5", b"many"):
        bad = b"HTTP/1.1 200 OK\r\nContent-Length: " + length + b"\r\n\r\nHTTP/1.1 500 x\r\n\r\n"
        assert _parse([bad])[0] == [200]


def test_an_exchange_counts_requests_classes_and_first_byte_latency() -> None:
    now = [0.0]
    stats = BackendStats()
    exchange = Exchange(stats, lambda: now[0])
    exchange.client_sent(b"GET / HTTP/1.1\r\n")
    exchange.client_sent(b"Host: x\r\n\r\n")  # the same request
    now[0] = 0.010
    exchange.responses.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    now[0] = 1.0
    exchange.client_sent(b"GET / HTTP/1.1\r\n\r\n")
    now[0] = 1.5
    exchange.responses.feed(b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n")

    assert stats.requests == 2 and stats.responses == Counter({"2xx": 1, "5xx": 1})
    assert percentile_ms(stats.latency, 50) == pytest.approx(10, rel=0.25)
    assert percentile_ms(stats.latency, 95) == pytest.approx(500, rel=0.25)


@pytest.mark.parametrize("weight", [1, 10, 25, 50, 99])
def test_the_canary_gets_exactly_its_weight_of_new_connections(weight: int) -> None:
    route = Route(("127.0.0.1", 1), ("127.0.0.1", 2), weight)
    picker = WeightedPicker()
    picks = [picker.pick(route) for _ in range(300)]
    assert picks.count(("127.0.0.1", 2)) == 3 * weight
    # Evenly spread: every run of 100 connections holds exactly `weight` canaries.
    assert all(picks[i : i + 100].count(("127.0.0.1", 2)) == weight for i in range(0, 201, 20))


def test_no_split_at_weight_0_and_all_at_100() -> None:
    picker = WeightedPicker()
    live, canary = ("127.0.0.1", 1), ("127.0.0.1", 2)
    assert {picker.pick(Route(live, canary, 0)) for _ in range(10)} == {live}
    assert {picker.pick(Route(live, canary, 100)) for _ in range(10)} == {canary}
    assert Route(live, canary, 0).serving == {live}
    assert Route(live, canary, 5).serving == {live, canary}


def test_the_history_keeps_recent_snapshots_and_thins_older_ones() -> None:
    history = [{"at": float(t), "backends": {}} for t in range(0, 4000, 1)]
    kept = [s["at"] for s in thin(history, 3999.0)]
    assert kept[-11:] == [float(t) for t in range(3989, 4000)]  # the last 10 s: all of them
    assert kept[0] >= 3999 - 3600  # nothing older than an hour
    assert 90 <= len(kept) <= 110
    gaps = [b - a for a, b in itertools.pairwise(kept)]
    assert max(gaps) <= 60


def _snap(at: float, requests: int, ok: int, errors: int, latency: dict[str, int]) -> dict:
    stats = {"requests": requests, "responses": {"2xx": ok, "5xx": errors}, "latency": latency}
    return {"at": at, "backends": {"127.0.0.1:2": stats}}


def test_a_window_is_the_difference_of_the_snapshots_inside_it() -> None:
    doc = {
        "started": 0.0,
        "history": [
            _snap(10.0, 100, 100, 0, {"20": 100}),  # before the window: not counted
            _snap(20.0, 110, 110, 0, {"20": 110}),
            _snap(30.0, 150, 140, 10, {"20": 140, "40": 10}),
        ],
    }
    values = window_values(doc, "127.0.0.1:2", 15.0, 32.0)
    assert values["requests"] == 40 and values["responses"] == 40
    assert values["error_rate"] == 0.25
    assert values["latency_p50_ms"] == pytest.approx(0.25 * 1.25**20)
    assert values["latency_p95_ms"] == pytest.approx(0.25 * 1.25**40)
    # A proxy started inside the window: everything it counted is in it.
    assert window_values({**doc, "started": 25.0}, "127.0.0.1:2", 15.0, 32.0)["requests"] == 150
    # Nothing answered in the window: no error rate, no latency (left out, never 0).
    assert window_values(doc, "127.0.0.1:2", 1.0, 32.0) == {"requests": 0.0, "responses": 0.0}
    assert window_values(doc, "127.0.0.1:9", 15.0, 32.0) == {"requests": 0.0, "responses": 0.0}


def test_the_demo_error_rate_fails_exactly_every_nth_request() -> None:
    errors = ErrorRate("0.05")
    failed = [n for n in range(1, 201) if errors.next_fails()]
    assert failed == list(range(20, 201, 20))
    assert not any(ErrorRate("").next_fails() for _ in range(50))
    assert sum(ErrorRate("1").next_fails() for _ in range(7)) == 7
