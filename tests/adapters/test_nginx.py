"""NginxTarget with a real nginx (private prefix, loopback port) and real demo-app processes."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shipdeck.adapters.nginx import NginxTarget
from shipdeck.adapters.nginx_include import render_include
from shipdeck.core.errors import AdapterError, ConfigError
from shipdeck.core.ports import ReleaseSpec, StaleEpoch, other_color
from tests.support.load import run_load
from tests.support.nginx import Rig, nginx_rig


@pytest.fixture()
def rig(tmp_path: Path) -> Iterator[Rig]:
    with nginx_rig(tmp_path) as rig:
        yield rig


def release(version: str, **config: str) -> ReleaseSpec:
    return ReleaseSpec("chat-api", version, "c" * 40, f"sha256:{version}", config=config)


def front_version(rig: Rig) -> str:
    from shipdeck.adapters.local.loopback import http_get as _http_get

    status, body = _http_get(rig.front.url + "/version", 5)
    assert status == 200, body
    return body


def test_zero_failed_requests_during_twenty_switches_under_load(rig: Rig) -> None:
    target = rig.target
    target.stage("blue", release("1.0.0"), epoch=1)
    target.switch("blue", epoch=1)
    target.stage("green", release("2.0.0"), epoch=1)
    switched: list[str] = []

    def switches() -> None:
        color = target.live_color()
        for _ in range(20):
            time.sleep(0.15)
            color = other_color(color)
            target.switch(color, epoch=1)
            switched.append(color)

    # 250 req/s for 4 s, a new connection each: the switches happen while requests are in flight.
    result = run_load(rig.front.port, rate=250, duration=4, during=switches)
    assert len(switched) == 20
    assert result.failures == 0, result.errors
    assert result.sent == 1000
    assert set(result.bodies) == {"1.0.0", "2.0.0"}  # both colors really served
    assert target.live_color() == "blue"  # an even number of flips from blue
    assert front_version(rig) == "1.0.0"


def test_blue_green_cycle_reads_the_real_world(rig: Rig) -> None:
    target = rig.target
    assert target.live_color() == "blue"  # the include nginx started with
    assert target.staged_version("blue") is None
    target.stage("blue", release("1.0.0"), epoch=1)
    target.switch("blue", epoch=1)
    assert front_version(rig) == "1.0.0"

    target.stage("green", release("2.0.0"), epoch=2)
    target.stage("green", release("2.0.0"), epoch=2)  # idempotent: same process kept
    assert target.staged_version("green") == "2.0.0"
    health = target.health("green")
    assert health.ok and health.version == "2.0.0"
    target.switch("green", epoch=2)
    assert target.live_color() == "green"
    assert f"server 127.0.0.1:{rig.green};" in rig.front.include.read_text()
    assert front_version(rig) == "2.0.0"

    with pytest.raises(AdapterError, match="refusing to stop green: it is live"):
        target.stop_idle("green", epoch=2)
    with pytest.raises(AdapterError, match=r"refusing to stage '3\.0\.0' on green: it is live"):
        target.stage("green", release("3.0.0"), epoch=2)
    target.stop_idle("blue", epoch=2)
    assert target.staged_version("blue") is None
    assert not target.health("blue").ok

    target.restart(epoch=2)
    assert target.health("green").ok
    assert front_version(rig) == "2.0.0"
    assert "demo app" in target.log_path("green").read_text()


def test_unhealthy_release_is_reported(rig: Rig) -> None:
    rig.target.stage("green", release("2.0.0", demo_health="fail"), epoch=1)
    health = rig.target.health("green")
    assert not health.ok and "503" in health.detail


def test_failed_config_test_restores_the_include_and_traffic(rig: Rig) -> None:
    target = rig.target
    target.stage("blue", release("1.0.0"), epoch=1)
    target.switch("blue", epoch=1)
    target.stage("green", release("2.0.0"), epoch=1)
    before = rig.front.include.read_text()
    good_conf = rig.front.conf.read_text()
    rig.front.conf.write_text(good_conf.replace("http {", "http { bogus on;"))
    try:
        with pytest.raises(AdapterError) as info:
            target.switch("green", epoch=1)
    finally:
        rig.front.conf.write_text(good_conf)
    message = str(info.value)
    assert message.startswith("nginx target chat-api/prod: switch to green failed, previous")
    assert '[emerg] unknown directive "bogus"' in message and "\n" not in message
    assert rig.front.include.read_text() == before
    assert target.live_color() == "blue"
    assert front_version(rig) == "1.0.0"
    target.switch("green", epoch=1)  # with the config fixed, it goes through
    assert front_version(rig) == "2.0.0"


def test_failed_reload_restores_the_include(rig: Rig) -> None:
    target = rig.target
    target.stage("blue", release("1.0.0"), epoch=1)
    target.switch("blue", epoch=1)
    target.stage("green", release("2.0.0"), epoch=1)
    before = rig.front.include.read_text()
    master = int((rig.front.prefix / "nginx.pid").read_text())
    os.kill(master, signal.SIGQUIT)  # nginx goes away: nothing to reload
    deadline = time.monotonic() + 10
    while (rig.front.prefix / "nginx.pid").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    with pytest.raises(AdapterError, match=r"switch to green failed, .*nginx reload failed: "):
        target.switch("green", epoch=1)
    assert rig.front.include.read_text() == before
    assert target.live_color() == "blue"


def test_switch_refuses_a_color_with_nothing_running(rig: Rig) -> None:
    with pytest.raises(AdapterError, match="refusing to switch to green: nothing answers"):
        rig.target.switch("green", epoch=1)
    assert rig.target.live_color() == "blue"


def test_stale_epoch_is_refused(rig: Rig) -> None:
    rig.target.stage("green", release("2.0.0"), epoch=9)
    with pytest.raises(StaleEpoch, match="epoch 8 is older than 9"):
        rig.target.switch("green", epoch=8)
    assert rig.target.live_color() == "blue"


def test_concurrent_switches_serialize(rig: Rig) -> None:
    """Two runners on the same epoch cannot interleave write/test/reload."""
    target = rig.target
    target.stage("blue", release("1.0.0"), epoch=1)
    target.switch("blue", epoch=1)
    target.stage("green", release("2.0.0"), epoch=1)
    other = NginxTarget("chat-api", "prod", rig.front.settings(rig.blue, rig.green),
                        target.state_dir)  # fmt: skip
    errors: list[BaseException] = []

    def flip(t: NginxTarget, color: str) -> None:
        try:
            for _ in range(5):
                t.switch(color, epoch=1)  # type: ignore[arg-type]
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=flip, args=(t, c))
               for t, c in ((target, "green"), (other, "blue"))]  # fmt: skip
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    live = target.live_color()
    assert front_version(rig) == {"blue": "1.0.0", "green": "2.0.0"}[live or "blue"]


def test_live_color_rejects_an_include_it_does_not_understand(rig: Rig) -> None:
    rig.front.include.write_text(render_include("shipdeck_app", 1, "blue"))
    with pytest.raises(AdapterError, match="points at port 1, neither blue nor green"):
        rig.target.live_color()
    rig.front.include.write_text("# nothing\n")
    with pytest.raises(AdapterError, match="has no 'upstream shipdeck_app' block"):
        rig.target.live_color()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"include_file": None}, "include_file is required"),
        ({"upstream": "x; } server {"}, "must be an nginx upstream name"),
        ({"green_port": "8080"}, "green_port must be a TCP port"),
        ({"green_port": 1000, "blue_port": 1000}, "must differ"),
        ({"nginx_conf": None}, "nginx_conf is required"),
        ({"command": "python app.py"}, "command must be a non-empty list"),
        ({"command": ["app", "{colour}"]}, r"unknown placeholder \{colour\}"),
        ({"switch_timeout": 0}, "switch_timeout must be a positive number"),
    ],
)
def test_settings_are_checked(tmp_path: Path, change: dict[str, object], message: str) -> None:
    settings: dict[str, object] = {
        "include_file": str(tmp_path / "up.conf"),
        "upstream": "app",
        "blue_port": 1000,
        "green_port": 1001,
        "nginx_conf": str(tmp_path / "nginx.conf"),
        **change,
    }
    with pytest.raises(ConfigError, match=message):
        NginxTarget("a", "e", {k: v for k, v in settings.items() if v is not None}, tmp_path)
