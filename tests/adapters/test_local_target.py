"""The local blue/green target with real processes, a real proxy and real HTTP on loopback."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from shipdeck.adapters.local.processes import ProcessSupervisor
from shipdeck.adapters.local.target import LocalTarget
from shipdeck.adapters.local.target import render_command as render_argv
from shipdeck.core.errors import AdapterError
from shipdeck.core.ports import ReleaseSpec, StaleEpoch, Target, other_color
from tests.support.draining import stop_while_held
from tests.support.load import run_load
from tests.support.moto_server import free_port

CODE_ROOT = str(Path(__file__).resolve().parents[2])
SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]

MakeTarget = Callable[..., LocalTarget]


def release(version: str, **config: Any) -> ReleaseSpec:
    return ReleaseSpec("chat-api", version, "c0ffee", f"sha256:{version}", config=config)


def get(port: int, path: str = "/version") -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read().decode("utf-8")
    finally:
        conn.close()


def front(target: LocalTarget) -> str:
    status, body = get(target.port)
    assert status == 200
    return body


def start_time(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])


def cmdline(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]


@pytest.fixture
def make_target(tmp_path: Path) -> Iterator[MakeTarget]:
    """LocalTargets sharing one state folder and ports (as separate CLI runs would), torn down."""
    ports = {"port": free_port(), "blue_port": free_port(), "green_port": free_port()}
    made: list[LocalTarget] = []

    def make(**settings: Any) -> LocalTarget:
        target = LocalTarget("chat-api", "prod", {**ports, **settings}, tmp_path / "target")
        made.append(target)
        return target

    yield make
    for target in made:
        target.teardown()


def test_switch_flips_the_front_port_and_back(make_target: MakeTarget) -> None:
    target = make_target()
    port: Target = target  # the Target port, structurally
    port.stage("blue", release("1.0"), 1)
    assert port.live_color() is None
    with pytest.raises((OSError, http.client.HTTPException)):
        get(target.port)  # no backend yet: the proxy closes the connection

    health = port.health("blue")
    assert (health.ok, health.version) == (True, "1.0")
    port.switch("blue", 1)
    assert (port.live_color(), front(target)) == ("blue", "1.0")

    port.stage("green", release("2.0"), 2)
    assert front(target) == "1.0"  # staging sends no traffic
    port.switch("green", 2)
    assert (port.live_color(), front(target)) == ("green", "2.0")
    port.switch("blue", 2)
    assert (port.live_color(), front(target)) == ("blue", "1.0")
    port.switch("blue", 2)  # idempotent
    assert port.staged_version("blue") == "1.0" and port.staged_version("green") == "2.0"
    assert port.endpoint() == f"http://127.0.0.1:{target.port}"


def test_live_color_is_protected(make_target: MakeTarget) -> None:
    target = make_target()
    target.stage("blue", release("1.0"), 1)
    target.switch("blue", 1)
    with pytest.raises(AdapterError, match=r"^local target chat-api/prod: refusing to stage"):
        target.stage("blue", release("1.1"), 1)
    with pytest.raises(AdapterError, match=r"^local target chat-api/prod: refusing to stop blue"):
        target.stop_idle("blue", 1)
    with pytest.raises(AdapterError, match="nothing is staged there"):
        target.switch("green", 1)
    assert front(target) == "1.0"

    target.stage("green", release("2.0"), 1)
    target.stop_idle("green", 1)
    target.stop_idle("green", 1)  # idempotent
    assert target.staged_version("green") is None
    assert not target.health("green").ok
    with pytest.raises(AdapterError, match="nothing is staged there"):
        target.switch("green", 1)


def test_stale_epoch_is_refused_after_a_newer_one(make_target: MakeTarget) -> None:
    target = make_target()
    target.stage("blue", release("1.0"), 5)
    target.switch("blue", 5)
    target.stage("green", release("2.0"), 6)
    with pytest.raises(StaleEpoch) as caught:
        target.switch("green", 5)
    assert str(caught.value) == "local target chat-api/prod: epoch 5 is older than 6 already seen"
    with pytest.raises(StaleEpoch):
        target.stop_idle("green", 4)
    with pytest.raises(StaleEpoch):
        target.restart(3)
    with pytest.raises(StaleEpoch):
        target.stage("green", release("2.1"), 1)
    assert (target.live_color(), front(target), target.staged_version("green")) == (
        "blue",
        "1.0",
        "2.0",
    )
    target.switch("green", 7)
    assert front(target) == "2.0"


def test_failing_health_is_reported(make_target: MakeTarget) -> None:
    target = make_target()
    target.stage("blue", release("1.0", demo_health="fail"), 1)
    health = target.health("blue")
    assert not health.ok
    assert "503" in health.detail and health.version == "1.0"
    target.stage("green", release("1.1"), 1)  # no demo_health key: the demo defaults to ok
    assert target.health("green").ok


def test_restart_replaces_the_live_process_in_place(make_target: MakeTarget) -> None:
    target = make_target()
    target.stage("blue", release("1.0"), 1)
    target.switch("blue", 1)
    before = target.supervisor.pid("blue")
    target.restart(1)
    after = target.supervisor.pid("blue")
    assert after is not None and after != before
    assert (target.live_color(), front(target), target.health("blue").ok) == ("blue", "1.0", True)
    assert "GET /version" in target.log_path("blue").read_text()


def test_state_survives_a_new_instance(make_target: MakeTarget) -> None:
    first = make_target()
    first.stage("blue", release("1.0"), 3)
    first.switch("blue", 3)
    blue_pid = first.supervisor.pid("blue")

    second = make_target()  # another CLI invocation: nothing shared but the folder
    assert second.live_color() == "blue"
    assert second.staged_version("blue") == "1.0"
    assert second.health("blue").ok
    with pytest.raises(StaleEpoch):
        second.switch("blue", 2)
    second.stage("green", release("2.0"), 3)
    second.switch("green", 3)
    assert first.live_color() == "green" and front(first) == "2.0"
    assert first.supervisor.pid("blue") == blue_pid  # the idle color kept running


def test_a_killed_proxy_comes_back_on_the_next_stage(make_target: MakeTarget) -> None:
    target = make_target()
    target.stage("blue", release("1.0"), 1)
    target.switch("blue", 1)
    app_pid = target.supervisor.pid("blue")
    proxy_pid = target.supervisor.pid("proxy")
    assert proxy_pid is not None
    os.kill(proxy_pid, signal.SIGKILL)
    with pytest.raises(OSError):
        get(target.port)

    again = make_target()  # shipdeck restarted after a crash
    again.stage("green", release("1.0"), 1)
    assert again.supervisor.pid("proxy") not in (None, proxy_pid)
    assert again.live_color() == "blue" and front(again) == "1.0"
    assert again.supervisor.pid("blue") == app_pid


def test_staging_is_idempotent_and_replaces_another_version(make_target: MakeTarget) -> None:
    target = make_target()
    target.stage("green", release("2.0"), 1)
    pid = target.supervisor.pid("green")
    target.stage("green", release("2.0"), 1)
    assert target.supervisor.pid("green") == pid
    target.stage("green", release("2.1"), 1)
    assert target.supervisor.pid("green") != pid
    assert target.health("green").version == "2.1"


def test_a_foreign_listener_on_a_color_port_is_refused(make_target: MakeTarget) -> None:
    target = make_target()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", target.ports["blue"]))
        squatter.listen()
        with pytest.raises(AdapterError, match=r"port \d+ on 127.0.0.1 is already in use"):
            target.stage("blue", release("1.0"), 1)
    assert not target.supervisor.is_running("blue")


def test_hostile_strings_reach_argv_verbatim(make_target: MakeTarget, tmp_path: Path) -> None:
    command = [
        sys.executable, "-m", "shipdeck.adapters.local.demo_app", "--port", "{port}",
        "--version={version}", "--color", "{color}", "--name={config[label]}",
    ]  # fmt: skip
    version = "1.0; rm -rf / $(touch pwned)\n`touch pwned`"
    label = "$(x) && touch pwned\nsecond line '\" {port}"
    target = make_target(command=command)
    target.stage("blue", release(version, label=label), 1)

    pid = target.supervisor.pid("blue")
    assert pid is not None
    assert cmdline(pid) == [
        sys.executable, "-m", "shipdeck.adapters.local.demo_app", "--port", str(target.ports["blue"]),
        f"--version={version}", "--color", "blue", f"--name={label}",
    ]  # fmt: skip
    assert target.health("blue").version == version
    target.switch("blue", 1)
    assert front(target) == version
    assert json.loads(get(target.port, "/")[1])["app"] == label
    assert not list(Path.cwd().glob("pwned")) and not list(tmp_path.rglob("pwned"))


def test_command_templates_only_know_their_placeholders() -> None:
    values = {"port": "1", "version": "v", "color": "blue", "app": "a", "commit": "c"}
    assert render_argv(["{{x}}-{port}", "{config[k]}", "{config[missing]}"], values, {"k": 7}) == [
        "{x}-1",
        "7",
        "",
    ]
    for bad in ("{app.__class__}", "{nope}", "{port!r}", "{port:>9}", "{", "{config[]}"):
        with pytest.raises(ValueError):
            render_argv([bad], values, {})


def test_a_bad_command_template_is_an_adapter_error(make_target: MakeTarget) -> None:
    target = make_target(command=[sys.executable, "{app.__init__}"])
    with pytest.raises(AdapterError, match=r"^local target chat-api/prod: setting 'command'"):
        target.stage("blue", release("1.0"), 1)
    with pytest.raises(AdapterError, match=r"setting 'port'"):
        LocalTarget("a", "e", {"port": "80"}, Path("/nonexistent"))


def test_supervisor_never_mistakes_a_recycled_pid(tmp_path: Path) -> None:
    sup = ProcessSupervisor(tmp_path / "sup")
    state_file = tmp_path / "sup" / "processes.json"
    stranger = subprocess.Popen(SLEEPER)
    try:
        sup.start("svc", SLEEPER, tmp_path / "svc.log")
        recorded = json.loads(state_file.read_text())
        sup.stop("svc")
        # Our record names a pid that now belongs to a stranger who started later than ours did:
        # exactly a recycled pid. (One tick earlier: both may have started in the same 10 ms tick.)
        recorded["processes"]["svc"]["pid"] = stranger.pid
        recorded["processes"]["svc"]["start_time"] = start_time(stranger.pid) - 1
        state_file.write_text(json.dumps(recorded))

        assert not sup.is_running("svc")
        assert sup.pid("svc") is None and sup.names() == []
        sup.stop("svc")
        new_pid = sup.start("svc", SLEEPER, tmp_path / "svc.log")
        assert new_pid != stranger.pid
        assert stranger.poll() is None  # never signalled
        sup.stop("svc")

        # Control: with its real start time the same pid IS recognised (and may be stopped).
        recorded["processes"]["svc"]["start_time"] = start_time(stranger.pid)
        state_file.write_text(json.dumps(recorded))
        assert sup.pid("svc") == stranger.pid
        sup.stop("svc")
        assert stranger.wait(timeout=10) == -signal.SIGTERM
    finally:
        stranger.kill()
        stranger.wait()
        sup.stop("svc")


def test_supervised_services_outlive_the_process_that_started_them(tmp_path: Path) -> None:
    state = tmp_path / "sup"
    script = textwrap.dedent(
        """
        import sys
        from pathlib import Path
        from shipdeck.adapters.local.processes import ProcessSupervisor
        state = Path(sys.argv[1])
        argv = [sys.executable, "-c", "import time; time.sleep(120)"]
        print(ProcessSupervisor(state).start("svc", argv, state / "svc.log"))
        """
    )
    env = {**os.environ, "PYTHONPATH": CODE_ROOT}
    sup = ProcessSupervisor(state)
    try:
        done = subprocess.run(
            [sys.executable, "-c", script, str(state)],
            capture_output=True, text=True, env=env, timeout=30, check=True,
        )  # fmt: skip
        pid = int(done.stdout)
        assert sup.is_running("svc") and sup.pid("svc") == pid and sup.names() == ["svc"]
        assert sup.start("svc", SLEEPER, state / "svc.log") == pid  # same argv: same process
        sup.stop("svc")
        assert not sup.is_running("svc") and sup.names() == []
    finally:
        sup.stop("svc")


def test_demo_app_exits_cleanly_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    argv = [sys.executable, "-m", "shipdeck.adapters.local.demo_app", "--port", str(port), "--version", "9",
            "--color", "green"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": CODE_ROOT}
    with subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=env) as app:
        try:
            assert app.stdout is not None
            assert "listening" in app.stdout.readline()
            assert get(port, "/health") == (200, "ok")
            assert get(port, "/nope")[0] == 404
            app.send_signal(signal.SIGTERM)
            assert app.wait(timeout=10) == 0
            assert '"GET /health HTTP/1.1" 200' in app.stdout.read()
        finally:
            app.kill()


def test_zero_failed_requests_during_20_switches(make_target: MakeTarget) -> None:
    target = make_target()
    target.stage("blue", release("1.0"), 1)
    target.stage("green", release("2.0"), 1)
    target.switch("blue", 1)

    def switch_20_times() -> None:
        color = target.live_color()
        for _ in range(20):
            time.sleep(0.28)  # spread over the ~6 s of load
            color = other_color(color)
            target.switch(color, 1)

    result = run_load(target.port, rate=300, duration=6, during=switch_20_times)
    assert result.errors == [] and result.failures == 0
    assert result.sent == 1800
    assert set(result.bodies) == {"1.0", "2.0"}


def established_to(port: int) -> int:
    """Established TCP connections to 127.0.0.1:`port` (the kernel's table, not the proxy's)."""
    rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    local = f"0100007F:{port:04X}"
    return sum(1 for r in rows if r.split()[1] == local and r.split()[3] == "01")


def test_the_old_color_is_stopped_only_after_its_connections_finish(
    make_target: MakeTarget, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connection routed to blue before the switch still gets its answer from blue, although
    blue is told to stop before the request is even complete: the stop waits for the proxy."""
    target = make_target()
    target.stage("blue", release("1.0"), 1)
    target.stage("green", release("2.0"), 1)
    target.switch("blue", 1)
    held = socket.create_connection(("127.0.0.1", target.port), timeout=10)
    held.sendall(b"GET /version HTTP/1.0\r\n")  # the blank line that ends the request comes later
    deadline = time.monotonic() + 30
    while established_to(target.ports["blue"]) < 1:  # the proxy has routed it to blue
        assert time.monotonic() < deadline, "the proxy never connected the held request to blue"
        time.sleep(0.01)
    target.switch("green", 1)
    draining = json.loads((target.state_dir / "draining.json").read_text())["draining"]
    assert draining == {f"127.0.0.1:{target.ports['blue']}": 1}
    assert (target.state_dir / "draining.json").stat().st_mode & 0o007 == 0  # never world-readable

    answer = stop_while_held(target, monkeypatch, held, "blue")
    assert answer.startswith(b"HTTP/1.0 200") and answer.endswith(b"\r\n\r\n1.0")
    assert json.loads((target.state_dir / "draining.json").read_text())["draining"] == {}
