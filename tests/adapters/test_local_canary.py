"""The local target's canary split, with real processes behind a real proxy: exact connection
counts per weight, the epoch fence, a switch ending the split, and the proxy's counters read
back as a color's metrics."""

from __future__ import annotations

import json
import os
import socket
import stat
import time
from collections import Counter

import pytest

from shipdeck.adapters.local.target import LocalTarget
from shipdeck.core.errors import AdapterError
from shipdeck.core.ports import Color, StaleEpoch, TrafficWeights
from tests.adapters.test_local_target import (
    MakeTarget,
    established_to,
    get,
    make_target,
    release,
)
from tests.support.draining import stop_while_held

__all__ = ["make_target"]  # the fixture


def _versions(port: int, n: int, path: str = "/version") -> Counter[tuple[int, str]]:
    """n requests through the front port, one connection each: (status, X-Version) counts."""
    import http.client

    seen: Counter[tuple[int, str]] = Counter()
    for _ in range(n):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            resp.read()
            seen[resp.status, resp.getheader("X-Version", "")] += 1
        finally:
            conn.close()
    return seen


def _metrics_once(target: LocalTarget, color: Color, responses: int) -> dict[str, float]:
    """The color's values over the last minute, once the proxy has published `responses`."""
    deadline = time.monotonic() + 30
    while (values := target.metrics(color, 60.0)).get("responses", 0) < responses:
        assert time.monotonic() < deadline, f"metrics.json never counted {responses}: {values}"
        time.sleep(0.05)
    return values


def test_a_weight_sends_exactly_that_share_of_new_connections(make_target: MakeTarget) -> None:
    target = make_target()
    weights: TrafficWeights = target.weights()
    target.stage("blue", release("1.0"), 1)
    target.switch("blue", 1)
    target.stage("green", release("2.0"), 1)
    assert weights.weight() == 0

    weights.set_weight("green", 25, 1)
    assert weights.weight() == 25 and target.live_color() == "blue"
    assert _versions(target.port, 100) == {(200, "1.0"): 75, (200, "2.0"): 25}

    weights.set_weight("green", 0, 1)
    assert weights.weight() == 0
    assert _versions(target.port, 20) == {(200, "1.0"): 20}


def test_set_weight_is_fenced_like_switch_and_a_switch_ends_the_split(
    make_target: MakeTarget,
) -> None:
    target = make_target()
    target.stage("blue", release("1.0"), 5)
    with pytest.raises(AdapterError, match="nothing is live to split with"):
        target.set_weight("green", 10, 5)
    target.switch("blue", 5)
    with pytest.raises(AdapterError, match="nothing runs there"):
        target.set_weight("green", 10, 5)
    target.stage("green", release("2.0"), 6)
    with pytest.raises(AdapterError, match="cannot send 10% to blue as a canary: it is live"):
        target.set_weight("blue", 10, 6)
    with pytest.raises(StaleEpoch, match="epoch 5 is older than 6 already seen"):
        target.set_weight("green", 10, 5)
    with pytest.raises(AdapterError, match="percentage from 0 to 100"):
        target.set_weight("green", 101, 6)
    assert target.weight() == 0

    target.set_weight("green", 50, 6)
    target.switch("green", 6)
    assert (target.weight(), target.live_color()) == (0, "green")
    assert _versions(target.port, 10) == {(200, "2.0"): 10}


def test_the_proxy_counts_each_colors_responses_and_errors(make_target: MakeTarget) -> None:
    target = make_target()
    target.stage("blue", release("1.0"), 1)
    target.switch("blue", 1)
    target.stage("green", release("2.0", demo_error_rate="0.05"), 1)
    target.set_weight("green", 50, 1)

    seen = _versions(target.port, 200, path="/")

    # Every 20th request green answers fails, and no other.
    assert seen == {(200, "1.0"): 100, (200, "2.0"): 95, (500, "2.0"): 5}
    green = _metrics_once(target, "green", 100)
    assert (green["requests"], green["responses"], green["error_rate"]) == (100, 100, 0.05)
    assert 0 < green["latency_p50_ms"] <= green["latency_p95_ms"]
    blue = _metrics_once(target, "blue", 100)  # the front-port check of the switch is older
    assert blue["error_rate"] == 0.0
    mode = os.lstat(target.state_dir / "metrics.json").st_mode
    assert stat.S_ISREG(mode) and stat.S_IMODE(mode) & 0o007 == 0  # never world-readable
    assert get(target.port, "/health") == (200, "ok")


def test_a_canary_put_back_to_0_is_stopped_only_after_its_connections_finish(
    make_target: MakeTarget, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No request follows the weight going back to 0, yet the stop waits for the connection
    the canary still serves: the proxy sees the route change by itself, and the stop waits for
    it to have seen it."""
    target = make_target()
    target.stage("blue", release("1.0"), 1)
    target.switch("blue", 1)
    target.stage("green", release("2.0"), 1)
    target.set_weight("green", 100, 1)  # the next connection surely goes to green
    held = socket.create_connection(("127.0.0.1", target.port), timeout=10)
    held.sendall(b"GET /version HTTP/1.0\r\n")  # the blank line that ends the request comes later
    deadline = time.monotonic() + 30
    while established_to(target.ports["green"]) < 1:
        assert time.monotonic() < deadline, "the proxy never connected the held request to green"
        time.sleep(0.01)
    target.set_weight("green", 0, 1)
    green = f"127.0.0.1:{target.ports['green']}"
    while json.loads((target.state_dir / "draining.json").read_text())["draining"] != {green: 1}:
        assert time.monotonic() < deadline, "the proxy never noticed the weight went back to 0"
        time.sleep(0.01)

    answer = stop_while_held(target, monkeypatch, held, "green")
    assert answer.startswith(b"HTTP/1.0 200") and answer.endswith(b"\r\n\r\n2.0")
