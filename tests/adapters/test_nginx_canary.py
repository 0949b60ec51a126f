"""The nginx target's canary split with a real nginx and real demo apps: the weighted include,
the exact share nginx sends, the epoch fence, a failed `nginx -t` put right, a switch ending the
split, a stop that waits for a request still in flight, and the access log read back as metrics."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from shipdeck.adapters import nginx_process
from shipdeck.adapters.nginx_include import render_include
from shipdeck.core.errors import AdapterError, UnsafeFile
from shipdeck.core.ports import StaleEpoch
from tests.adapters.test_nginx import front_version, release
from tests.support.nginx import Rig, nginx_rig


@pytest.fixture()
def rig(tmp_path: Path) -> Iterator[Rig]:
    with nginx_rig(tmp_path) as rig:
        rig.target.stage("blue", release("1.0.0"), epoch=1)
        rig.target.switch("blue", epoch=1)
        rig.target.stage("green", release("2.0.0", demo_error_rate="0.1"), epoch=1)
        yield rig


def versions(rig: Rig, n: int, path: str = "/version") -> Counter[str]:
    """Which version answered each of `n` requests through nginx (the X-Version header)."""
    import http.client

    seen: Counter[str] = Counter()
    for _ in range(n):
        conn = http.client.HTTPConnection("127.0.0.1", rig.front.port, timeout=10)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            resp.read()
            seen[resp.getheader("X-Version", "")] += 1
        finally:
            conn.close()
    return seen


def test_a_weight_is_a_weighted_upstream_and_nginx_sends_exactly_that_share(rig: Rig) -> None:
    target = rig.target
    target.set_weight("green", 25, epoch=1)
    assert rig.front.include.read_text() == (
        "# written by shipdeck: live color blue, canary green at 25%; edits here are overwritten\n"
        f"upstream shipdeck_app {{\n    server 127.0.0.1:{rig.blue} weight=75;\n"
        f"    server 127.0.0.1:{rig.green} weight=25;\n}}\n"
    )
    assert (target.weight(), target.live_color()) == (25, "blue")
    # nginx's smooth weighted round robin: one request in four, exactly, over any multiple of 4.
    assert versions(rig, 200) == {"1.0.0": 150, "2.0.0": 50}

    target.set_weight("green", 25, epoch=1)  # idempotent
    target.set_weight("green", 100, epoch=1)  # the live server stays named, marked down
    assert (target.weight(), target.live_color()) == (100, "blue")
    assert versions(rig, 8) == {"2.0.0": 8}

    target.set_weight("green", 0, epoch=1)
    assert rig.front.include.read_text() == render_include("shipdeck_app", rig.blue, "blue")
    assert (target.weight(), target.live_color()) == (0, "blue")
    assert versions(rig, 8) == {"1.0.0": 8}


def test_a_stale_epoch_is_refused_and_changes_nothing(rig: Rig) -> None:
    rig.target.set_weight("green", 10, epoch=5)
    before = rig.front.include.read_text()
    with pytest.raises(StaleEpoch, match="epoch 4 is older than 5"):
        rig.target.set_weight("green", 50, epoch=4)
    assert rig.front.include.read_text() == before and rig.target.weight() == 10


def test_a_failed_config_test_restores_the_include_and_the_split(rig: Rig) -> None:
    target = rig.target
    target.set_weight("green", 10, epoch=1)
    before = rig.front.include.read_text()
    good = rig.front.conf.read_text()
    rig.front.conf.write_text(good.replace("http {", "http { bogus on;"))
    try:
        with pytest.raises(AdapterError) as info:
            target.set_weight("green", 50, epoch=1)
    finally:
        rig.front.conf.write_text(good)
    assert str(info.value).startswith(
        "nginx target chat-api/prod: weight 50% to green failed, previous upstream restored: "
        'nginx test failed: [emerg] unknown directive "bogus"'
    )
    assert rig.front.include.read_text() == before and target.weight() == 10
    assert versions(rig, 20) == {"1.0.0": 18, "2.0.0": 2}  # still 10%


def test_a_switch_ends_the_split(rig: Rig) -> None:
    target = rig.target
    target.set_weight("green", 50, epoch=1)
    target.switch("green", epoch=1)
    assert rig.front.include.read_text() == render_include("shipdeck_app", rig.green, "green")
    assert (target.live_color(), target.weight()) == ("green", 0)
    assert front_version(rig) == "2.0.0"


def test_what_a_split_refuses(rig: Rig) -> None:
    target = rig.target
    with pytest.raises(AdapterError, match="cannot send 10% to blue as a canary: it is live"):
        target.set_weight("blue", 10, epoch=1)
    with pytest.raises(AdapterError, match="percentage from 0 to 100, got 101"):
        target.set_weight("green", 101, epoch=1)
    target.set_weight("green", 10, epoch=1)
    with pytest.raises(AdapterError, match="refusing to stop green: it takes a canary's share"):
        target.stop_idle("green", epoch=1)
    target.set_weight("green", 0, epoch=1)
    target.stop_idle("green", epoch=1)
    with pytest.raises(AdapterError, match="refusing to send 10% to green: nothing answers"):
        target.set_weight("green", 10, epoch=1)
    assert target.weight() == 0


def test_a_canary_put_back_to_0_is_stopped_only_after_its_request_in_flight(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A request nginx is still proxying to the canary when its weight goes back to 0 keeps its
    old worker alive: the stop waits for that worker, so the request gets its answer first."""
    target = rig.target
    target.stop_idle("green", epoch=1)
    held = _HeldBackend(rig.green)  # green now answers only when the test says so
    target.set_weight("green", 100, epoch=1)
    client = socket.create_connection(("127.0.0.1", rig.front.port), timeout=30)
    client.sendall(b"GET / HTTP/1.0\r\n\r\n")
    assert held.arrived.wait(30), "nginx never proxied the request to green"
    target.set_weight("green", 0, epoch=1)

    waiting, stopped_after_answer = threading.Event(), []
    workers, stop = nginx_process.workers, target.supervisor.stop

    def seen_workers(master: int) -> dict[int, bool]:
        found = workers(master)
        if not all(found.values()):
            waiting.set()  # the stop saw the old worker that still holds the request
        return found

    def spy_stop(name: str) -> None:
        stopped_after_answer.append(held.answered.is_set())
        stop(name)

    monkeypatch.setattr(nginx_process, "workers", seen_workers)
    monkeypatch.setattr(target.supervisor, "stop", spy_stop)
    stopper = threading.Thread(target=target.stop_idle, args=("green", 1))
    stopper.start()
    assert waiting.wait(30), "stop_idle did not wait for nginx's old worker"
    assert stopper.is_alive()
    held.answer()
    answer = b""
    while chunk := client.recv(4096):
        answer += chunk
    client.close()
    stopper.join(30)
    assert not stopper.is_alive() and stopped_after_answer == [True]
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"held answer")
    held.close()


class _HeldBackend:
    """A backend on `port` that holds the first request it gets until answer() is called."""

    def __init__(self, port: int) -> None:
        self.arrived, self.answered = threading.Event(), threading.Event()
        self._server = socket.create_server(("127.0.0.1", port))
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return  # closed
            request = b""
            while b"\r\n\r\n" not in request and (chunk := conn.recv(4096)):
                request += chunk
            if request:  # not a probe that only connects
                self.arrived.set()
                self.answered.wait(60)
                conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 11\r\n\r\nheld answer")
            conn.close()

    def answer(self) -> None:
        self.answered.set()

    def close(self) -> None:
        self._server.close()


def test_metrics_are_read_from_the_access_log(rig: Rig) -> None:
    target = rig.target
    target.set_weight("green", 50, epoch=1)
    assert versions(rig, 100, path="/") == {"1.0.0": 50, "2.0.0": 50}
    # nginx writes a request's line once its answer is sent: the last one may still be coming.
    deadline = time.monotonic() + 10
    while (green := target.metrics("green", 60))["requests"] < 50:
        assert time.monotonic() < deadline, f"the access log lacks green's requests: {green}"
        time.sleep(0.02)
    blue = target.metrics("blue", 60)
    assert green["requests"] == green["responses"] == 50
    assert green["error_rate"] == pytest.approx(0.1)  # demo_error_rate: every 10th fails
    assert {"latency_p50_ms", "latency_p95_ms"} <= green.keys()
    assert blue["requests"] >= 50 and blue["error_rate"] == 0.0  # and the switch's checks
    # Another window: nothing of that traffic is in a window that ends before it.
    assert target.metrics("green", 0.001) == {"requests": 0.0, "responses": 0.0}


def test_metrics_read_only_the_tail_of_a_large_log(tmp_path: Path) -> None:
    """A 1 GiB log (sparse: no disk) with the window's lines at its end: reading them costs
    kilobytes, as /proc/self/io counts every byte this process reads."""
    log = tmp_path / "access.log"
    with log.open("wb") as f:
        f.truncate(1 << 30)
        f.seek(1 << 30)
        f.write(b"\n1000000000.000 127.0.0.1:1 200 0.001\n")  # older than any window
        f.write(b"9999999999.000 127.0.0.1:1001 200 0.001\n" * 3)  # in any window
    from shipdeck.adapters.nginx import NginxTarget

    settings = {"include_file": str(tmp_path / "up.conf"), "upstream": "app", "blue_port": 1000,
                "green_port": 1001, "test": ["true"], "reload": ["true"],
                "access_log": str(log)}  # fmt: skip
    target = NginxTarget("a", "e", settings, tmp_path / "st")
    before = _bytes_read()
    assert target.metrics("green", 60)["requests"] == 3
    assert _bytes_read() - before < 1 << 20


def _bytes_read() -> int:
    io = dict(line.split(": ") for line in Path("/proc/self/io").read_text().splitlines())
    return int(io["rchar"])


def test_a_symlinked_or_missing_access_log_is_refused(tmp_path: Path) -> None:
    from shipdeck.adapters.nginx import NginxTarget

    secret = tmp_path / "secret"
    secret.write_text("1796278871.288 127.0.0.1:1001 200 0.000\n")
    (tmp_path / "access.log").symlink_to(secret)
    settings = {"include_file": str(tmp_path / "up.conf"), "upstream": "app", "blue_port": 1000,
                "green_port": 1001, "test": ["true"], "reload": ["true"]}  # fmt: skip
    linked = NginxTarget(
        "a", "e", {**settings, "access_log": str(tmp_path / "access.log")}, tmp_path
    )
    with pytest.raises(UnsafeFile, match=r"access\.log: refused: it is a symbolic link"):
        linked.metrics("green", 60)
    missing = NginxTarget("a", "e", {**settings, "access_log": str(tmp_path / "none")}, tmp_path)
    with pytest.raises(AdapterError, match="none: not found"):
        missing.metrics("green", 60)
    unset = NginxTarget("a", "e", settings, tmp_path)
    assert (unset.metrics_problem() or "").startswith("access_log: not set")
    with pytest.raises(AdapterError, match=r"nginx target a/e: settings\.access_log: not set"):
        unset.metrics("green", 60)
    assert os.path.islink(tmp_path / "access.log")  # left as it was
