"""Reading a window of nginx's access log (shipdeck's format) from its newest line backwards:
attribution by upstream port, nginx moving on to the next server, malformed lines, and how far
back it reads."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shipdeck.adapters.local.proxy_metrics import analysis_values
from shipdeck.adapters.nginx_access_log import GIVE_UP, SLACK, window_stats
from shipdeck.core.errors import AdapterError

LIVE, CANARY = 8001, 8002
NOW = 1_800_000_000.0


def line(at: float, addr: str, status: int, took: str) -> str:
    return f"{at:.3f} {addr} {status} {took}"


def values(lines: list[str], port: int, window: float = 60.0) -> dict[str, float]:
    """Lines oldest first, as in the file; read newest first, as the target does."""
    stats = window_stats(reversed(lines), [LIVE, CANARY], NOW - window, "nginx target a/e")
    s = stats[port]
    return analysis_values(s.requests, s.responses, s.latency)


def test_each_color_counts_its_own_requests_errors_and_latency() -> None:
    lines = [line(NOW - 30 + i * 0.1, f"127.0.0.1:{LIVE}", 200, "0.010") for i in range(95)]
    lines += [line(NOW - 20, f"127.0.0.1:{LIVE}", 404, "0.002")]
    lines += [line(NOW - 10 + i * 0.1, f"127.0.0.1:{CANARY}", 200, "0.100") for i in range(19)]
    lines += [line(NOW - 1, f"127.0.0.1:{CANARY}", 502, "0.050")]
    live, canary = values(lines, LIVE), values(lines, CANARY)
    assert live["requests"] == live["responses"] == 96 and live["error_rate"] == 0.0
    assert canary["requests"] == 20 and canary["error_rate"] == pytest.approx(0.05)
    assert 10 / 1.25 <= live["latency_p50_ms"] <= 10 * 1.25  # buckets are 25% apart
    assert 100 / 1.25 <= canary["latency_p95_ms"] <= 100 * 1.25


def test_a_server_nginx_moved_on_from_counts_a_failed_request() -> None:
    """`a, b`: a failed (error or timeout), b answered; `x : y`: an internal redirect, only the
    last group is this request's answer."""
    lines = [
        line(NOW - 5, f"127.0.0.1:{CANARY}, 127.0.0.1:{LIVE}", 200, "0.001, 0.020"),
        line(NOW - 4, f"127.0.0.1:{LIVE} : 127.0.0.1:{CANARY}", 200, "0.003 : 0.004"),
    ]
    canary, live = values(lines, CANARY), values(lines, LIVE)
    assert canary["requests"] == 2 and canary["error_rate"] == 0.5
    assert live["requests"] == 1 and live["error_rate"] == 0.0
    assert 20 / 1.25 <= live["latency_p50_ms"] <= 20 * 1.25


def test_malformed_lines_and_other_servers_are_skipped() -> None:
    lines = [
        line(NOW - 3, f"127.0.0.1:{CANARY}", 200, "0.001"),
        "",
        "garbage \x1b[31m in red",
        f"{NOW - 2:.3f} 127.0.0.1:{CANARY} 2000 0.001",  # not a status
        f"{NOW - 2:.3f} 127.0.0.1:{CANARY} 200",  # a field short
        f"nan 127.0.0.1:{CANARY} 200 0.001",
        line(NOW - 2, "127.0.0.1:9999", 200, "0.001"),  # neither color
        line(NOW - 2, "unix:/run/app.sock", 200, "0.001"),
        line(NOW - 2, "-", 404, "-"),  # answered by nginx itself
        line(NOW - 1, f"127.0.0.1:{CANARY}", 504, "-"),  # no response time: no latency
    ]
    canary = values(lines, CANARY)
    assert canary["requests"] == canary["responses"] == 2 and canary["error_rate"] == 0.5
    assert values(lines, LIVE) == {"requests": 0.0, "responses": 0.0}  # inconclusive


def test_reading_stops_just_past_the_start_of_the_window() -> None:
    """Lines come newest first; a slightly older line among newer ones (another worker wrote it
    later) still counts, and nothing older than SLACK before the window is read."""
    read: list[str] = []

    def newest_first() -> Iterator[str]:
        newer = [line(NOW - 1, f"127.0.0.1:{CANARY}", 200, "0.001")] * 3
        shuffled = [line(NOW - 9.5, f"127.0.0.1:{CANARY}", 200, "0.001"),
                    line(NOW - 10.5, f"127.0.0.1:{CANARY}", 200, "0.001"),
                    line(NOW - 9.9, f"127.0.0.1:{CANARY}", 200, "0.001")]  # fmt: skip
        for text in [*newer, *shuffled]:
            read.append(text)
            yield text
        read.append(stop := line(NOW - 10 - SLACK - 0.1, f"127.0.0.1:{CANARY}", 200, "0.001"))
        yield stop
        raise AssertionError("read past the line older than the window and its slack")

    stats = window_stats(newest_first(), [CANARY], NOW - 10, "nginx target a/e")
    assert stats[CANARY].requests == 5 and len(read) == 7


def test_a_log_in_another_format_is_named_not_read_to_its_start() -> None:
    lines = (f'127.0.0.1 - - [01/Jan/2026] "GET / HTTP/1.1" 200 {i}' for i in range(10 * GIVE_UP))
    with pytest.raises(AdapterError, match=r"not in shipdeck's format \(log_format shipdeck"):
        window_stats(lines, [LIVE], NOW - 60, "nginx target a/e")
    assert next(lines).endswith(f" {GIVE_UP}")  # it stopped there
