"""The demo app's GET /metrics, over real HTTP on loopback: Prometheus' text format, responses
counted by code (the 500s its error rate injects among them, 200 and 500 present from the start),
the scrape itself not counted, a hostile version kept inside its label value."""

from __future__ import annotations

import http.client
import re
import threading
from collections.abc import Iterator

import pytest

from shipdeck.adapters.local.demo_app import DemoServer, ErrorRate, HealthMode
from tests.support.moto_server import free_port

HOSTILE = 'v"1\\\n'


@pytest.fixture
def demo() -> Iterator[int]:
    port = free_port()
    server = DemoServer(port, "web", HOSTILE, "green", HealthMode("ok"), ErrorRate("0.25"))
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}).start()
    try:
        yield port
    finally:
        server.shutdown()
        server.server_close()


def _get(port: int, path: str) -> tuple[int, str, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.getheader("Content-Type", ""), resp.read().decode()
    finally:
        conn.close()


def _samples(text: str) -> dict[str, float]:
    """`name{labels}` -> value for each sample line (comments skipped)."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out


def test_metrics_count_every_answer_but_the_scrape(demo: int) -> None:
    labels = 'app="web",color="green",version="v\\"1\\\\\\n"'
    status, kind, first = _get(demo, "/metrics")
    assert status == 200 and kind.startswith("text/plain; version=0.0.4")
    assert _samples(first)[f'demo_responses_total{{{labels},code="200"}}'] == 0
    assert _samples(first)[f'demo_responses_total{{{labels},code="500"}}'] == 0

    answers = [_get(demo, "/")[0] for _ in range(8)] + [_get(demo, "/version")[0]]
    samples = _samples(_get(demo, "/metrics")[2])

    assert answers.count(500) == 2  # every 4th request of GET /
    assert samples[f'demo_responses_total{{{labels},code="200"}}'] == 7
    assert samples[f'demo_responses_total{{{labels},code="500"}}'] == 2
    assert samples[f"demo_request_duration_seconds_count{{{labels}}}"] == 9
    assert samples[f'demo_request_duration_seconds_bucket{{{labels},le="+Inf"}}'] == 9
    buckets = [v for k, v in samples.items() if "_bucket" in k]
    assert buckets == sorted(buckets)  # cumulative
    # Every sample line is `name{labels} value`: the hostile version broke no line.
    assert all(
        re.fullmatch(r'[a-z_]+\{(?:[a-z]+="(?:[^"\\]|\\.)*",?)+\} \S+', line)
        for line in first.splitlines()
        if not line.startswith("#")
    )
