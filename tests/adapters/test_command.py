"""argv templates, run_argv and CommandTarget with real child processes.

The "deploy system" is a small Python script that keeps its own state in files and records the
argv it received, so every assertion is about what really reached a process.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shipdeck.adapters.argv import CommandTimedOut, placeholders, render_argv, run_argv
from shipdeck.adapters.command import CommandTarget
from shipdeck.core.errors import AdapterError, ConfigError, ExitCode
from shipdeck.core.ports import ReleaseSpec, StaleEpoch, TrafficWeights

FAKE_DEPLOY = r"""
import json, os, pathlib, subprocess, sys, time
state = pathlib.Path(sys.argv[1]); cmd = sys.argv[2]; args = sys.argv[3:]
with open(state / "calls.jsonl", "a", encoding="utf-8") as log:
    log.write(json.dumps(sys.argv[2:]) + "\n")
def put(name, text): (state / name).write_text(text, encoding="utf-8")
if cmd == "stage":
    put(args[0], args[1])
elif cmd == "health":
    if (state / args[0]).exists() and not (state / "sick").exists():
        print("\x1b]0;pwned\x07healthy " + (state / args[0]).read_text())
    else:
        print("\x1b[31mnot running\x1b[0m", file=sys.stderr); sys.exit(1)
elif cmd == "switch":
    if not (state / "broken-switch").exists():
        put("live", args[0])
        (state / "weight").unlink(missing_ok=True)  # a switch ends the split
elif cmd == "weight":
    put("weight", "0" if (state / "stuck-weight").exists() else args[1])
elif cmd == "weight-read":
    print((state / "weight").read_text() if (state / "weight").exists() else "0")
elif cmd == "live":
    print((state / "live").read_text() if (state / "live").exists() else "")
elif cmd == "stop":
    (state / args[0]).unlink(missing_ok=True)
elif cmd == "restart":
    put("restarted", args[0])
elif cmd == "fail":
    hostile = "\x1b[2J\x9b31mfatal: \x1b]8;;http://evil\x07disk full\x1b]8;;\x07"
    print("step one\n" + hostile, file=sys.stderr)
    sys.exit(3)
elif cmd == "hang":
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    put("child.pid", str(child.pid))
    time.sleep(60)
elif cmd == "echo":
    print(args[0])
elif cmd == "record":
    pass  # the call is already in calls.jsonl
"""


@pytest.fixture(scope="module")
def script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bin") / "fake_deploy.py"
    path.write_text(FAKE_DEPLOY, encoding="utf-8")
    return path


def templates(script: Path, world: Path, **overrides: Any) -> dict[str, Any]:
    base = [sys.executable, str(script), str(world)]
    return {
        "stage": [*base, "stage", "{color}", "{version}"],
        "health": [*base, "health", "{color}"],
        "switch": [*base, "switch", "{color}"],
        "live_color": [*base, "live"],
        "stop_idle": [*base, "stop", "{color}"],
        "restart": [*base, "restart", "{color}"],
        "timeout": 20,
        **overrides,
    }


def calls(world: Path) -> list[list[str]]:
    path = world / "calls.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def release(version: str = "2.0.0", **config: Any) -> ReleaseSpec:
    return ReleaseSpec(
        app="chat-api", version=version, commit="a" * 40, digest="sha256:d1", config=config
    )


def make(script: Path, tmp_path: Path, **overrides: Any) -> tuple[CommandTarget, Path]:
    world = tmp_path / "world"
    world.mkdir(exist_ok=True)
    target = CommandTarget(
        "chat-api", "prod", templates(script, world, **overrides), tmp_path / "st"
    )
    return target, world


# --- render_argv -------------------------------------------------------------------------------


def test_render_fills_placeholders_inside_items_and_never_splits() -> None:
    values = {"app": "chat api", "version": "1; rm -rf / #", "config": {"region": "-eu west"}}
    argv = render_argv(
        ["deploy", "--app={app}", "{version}", "{config[region]}", "{{literal}}"], values
    )
    assert argv == ["deploy", "--app=chat api", "1; rm -rf / #", "-eu west", "{literal}"]


def test_values_are_inserted_once_not_re_expanded() -> None:
    assert render_argv(["{version}"], {"version": "{app}", "app": "x"}) == ["{app}"]


@pytest.mark.parametrize(
    ("template", "message"),
    [
        (["{nope}"], r"unknown placeholder \{nope\}"),
        (["{config[missing]}"], r"unknown placeholder \{config\[missing\]\}"),
        (["x{app"], "lone '{'"),
        (["{app.__class__}"], "malformed placeholder"),
        (["{commit}"], r"placeholder \{commit\} has no value here"),
    ],
)
def test_render_errors_name_the_placeholder(template: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        render_argv(template, {"app": "a", "commit": None, "config": {}})


def test_missing_config_fills_only_absent_config_keys() -> None:
    values = {"app": "a", "config": {"set": "v", "none": None}}
    template = ["--h={config[absent]}", "{config[none]}", "{config[set]}"]
    assert render_argv(template, values, missing_config="") == ["--h=", "", "v"]
    assert render_argv(["{config[absent]}"], values, missing_config="ok") == ["ok"]
    for still_wrong in (["{nope}"], ["{app[k]}"]):
        with pytest.raises(ValueError, match="unknown placeholder"):
            render_argv(still_wrong, values, missing_config="")


def test_placeholders_lists_what_a_template_uses() -> None:
    assert placeholders(["a{app}", "{config[k]}-{color}", "{{x}}"]) == {
        "app",
        "config[k]",
        "color",
    }


def test_render_refuses_a_shell_string() -> None:
    with pytest.raises(ValueError, match="list of strings"):
        render_argv("deploy {app}", {"app": "a"})


# --- run_argv ----------------------------------------------------------------------------------


def test_run_argv_captures_output_and_exit_code() -> None:
    code = "import sys; print('out'); print('err', file=sys.stderr); sys.exit(4)"
    run = run_argv([sys.executable, "-c", code], timeout=20)
    assert (run.returncode, run.stdout, run.stderr) == (4, "out\n", "err\n")
    assert run.duration > 0


def _alive(pid: int) -> bool:
    """Running, not merely a zombie waiting for init to reap it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def test_run_argv_timeout_kills_the_whole_process_group(script: Path, tmp_path: Path) -> None:
    with pytest.raises(CommandTimedOut, match="timed out after 1s") as info:
        run_argv([sys.executable, str(script), str(tmp_path), "hang"], timeout=1, label="t")
    assert info.value.exit_code == ExitCode.TIMED_OUT
    assert isinstance(info.value, AdapterError)
    child = int((tmp_path / "child.pid").read_text())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _alive(child):
        time.sleep(0.05)
    if _alive(child):
        os.kill(child, signal.SIGKILL)
        pytest.fail("the command's child survived the timeout")


def test_run_argv_returns_when_a_daemon_keeps_the_pipe_open(tmp_path: Path) -> None:
    """A stage command that backgrounds a server must not hold us until the timeout."""
    pidfile = tmp_path / "daemon.pid"
    code = (
        "import subprocess, sys;"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']);"
        f"open({str(pidfile)!r}, 'w').write(str(p.pid)); print('started')"
    )
    try:
        run = run_argv([sys.executable, "-c", code], timeout=30)
        assert run.returncode == 0 and run.stdout == "started\n"
        assert run.duration < 30  # it did not wait for the daemon
    finally:
        os.kill(int(pidfile.read_text()), signal.SIGKILL)


def test_run_argv_start_failures_are_one_line_adapter_errors(tmp_path: Path) -> None:
    with pytest.raises(AdapterError, match=r"^lbl: '/no/such/tool' not found$"):
        run_argv(["/no/such/tool"], timeout=5, label="lbl")
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    with pytest.raises(AdapterError, match="is not executable"):
        run_argv([str(plain)], timeout=5, label="lbl")
    with pytest.raises(AdapterError, match="cannot start"):
        run_argv(["echo", "nul\x00byte"], timeout=5, label="lbl")


# --- CommandTarget -----------------------------------------------------------------------------


def test_full_blue_green_cycle(script: Path, tmp_path: Path) -> None:
    target, world = make(script, tmp_path)
    assert target.live_color() is None
    target.stage("blue", release("1.0.0"), epoch=1)
    target.switch("blue", epoch=1)
    target.stage("green", release("2.0.0"), epoch=2)
    assert target.staged_version("green") == "2.0.0"
    health = target.health("green")
    assert health.ok and health.detail == "healthy 2.0.0"
    target.switch("green", epoch=2)
    assert target.live_color() == "green"
    target.stop_idle("blue", epoch=2)
    assert not (world / "blue").exists()
    assert target.staged_version("blue") is None
    target.restart(epoch=2)
    assert (world / "restarted").read_text() == "green"
    assert ["stage", "green", "2.0.0"] in calls(world)


def test_escape_sequences_are_stripped_from_kept_output(script: Path, tmp_path: Path) -> None:
    target, _ = make(script, tmp_path)
    target.stage("blue", release("1.0.0"), epoch=1)
    target.health("blue")
    assert target.outputs["health"].stdout == "healthy 1.0.0"
    (tmp_path / "world" / "sick").write_text("")
    sick = target.health("blue")
    assert not sick.ok and sick.detail == "not running"


def test_a_failing_step_raises_one_clean_line(script: Path, tmp_path: Path) -> None:
    world = tmp_path / "world"
    target, _ = make(
        script, tmp_path, stage=[sys.executable, str(script), str(world), "fail", "{color}"]
    )
    with pytest.raises(AdapterError) as info:
        target.stage("green", release(), epoch=1)
    message = str(info.value)
    assert message == ("command target chat-api/prod: stage failed (exit 3): fatal: disk full")
    assert target.staged_version("green") is None


def test_stale_epoch_is_refused_before_anything_runs(script: Path, tmp_path: Path) -> None:
    target, world = make(script, tmp_path)
    target.switch("blue", epoch=5)
    before = len(calls(world))
    other = CommandTarget("chat-api", "prod", templates(script, world), tmp_path / "st")
    with pytest.raises(StaleEpoch, match="epoch 4 is older than 5"):
        other.switch("green", epoch=4)
    assert len(calls(world)) == before
    assert (tmp_path / "st" / "epoch").read_text().strip() == "5"


def test_switch_is_confirmed_by_reading_live_color_back(script: Path, tmp_path: Path) -> None:
    target, world = make(script, tmp_path)
    target.switch("blue", epoch=1)
    (world / "broken-switch").write_text("")
    with pytest.raises(AdapterError, match="switch to green exited 0 but live_color says blue"):
        target.switch("green", epoch=1)


def test_live_color_and_stop_idle_guard_against_nonsense(script: Path, tmp_path: Path) -> None:
    world = tmp_path / "world"
    target, _ = make(script, tmp_path)
    target.switch("blue", epoch=1)
    with pytest.raises(AdapterError, match="refusing to stop blue: it is live"):
        target.stop_idle("blue", epoch=1)
    with pytest.raises(AdapterError, match="refusing to stage on blue"):
        target.stage("blue", release(), epoch=1)
    chatty, _ = make(
        script, tmp_path, live_color=[sys.executable, str(script), str(world), "echo", "purple"]
    )
    with pytest.raises(AdapterError, match="live_color printed 'purple'"):
        chatty.live_color()


def test_health_timeout_is_unhealthy_not_a_crash(script: Path, tmp_path: Path) -> None:
    world = tmp_path / "world"
    target, _ = make(
        script, tmp_path, timeout=1, health=[sys.executable, str(script), str(world), "hang"]
    )
    health = target.health("blue")
    assert not health.ok and "timed out after 1s" in health.detail


def test_optional_steps(script: Path, tmp_path: Path) -> None:
    settings = templates(script, tmp_path)
    del settings["stop_idle"], settings["restart"]
    target = CommandTarget("chat-api", "prod", settings, tmp_path / "st")
    target.switch("blue", epoch=1)
    target.stop_idle("green", epoch=1)  # nothing configured: only the record changes
    with pytest.raises(AdapterError, match="no restart command configured"):
        target.restart(epoch=1)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"switch": None}, r"settings\.switch is required"),
        ({"stage": "deploy.sh {color}"}, r"settings\.stage must be a non-empty list"),
        ({"stage": []}, r"settings\.stage must be a non-empty list"),
        ({"health": ["check", "{colour}"]}, r"settings\.health: unknown placeholder \{colour\}"),
        ({"health": ["check", "{config}"]}, r"unknown placeholder \{config\}"),
        ({"health": ["check", "{color"]}, r"settings\.health: lone"),
        ({"timeout": 0}, "timeout must be a positive number"),
        ({"timeout": "soon"}, "timeout must be a positive number"),
    ],
)
def test_settings_are_checked_up_front(
    script: Path, tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    settings = {**templates(script, tmp_path), **change}
    settings = {k: v for k, v in settings.items() if v is not None}
    with pytest.raises(ConfigError, match=message):
        CommandTarget("chat-api", "prod", settings, tmp_path / "st")


# --- canary weights ----------------------------------------------------------------------------


def weighted(script: Path, tmp_path: Path, **overrides: Any) -> tuple[CommandTarget, Path]:
    """A target with a weight command, 1.0.0 live on blue and 2.0.0 staged on green."""
    world = tmp_path / "world"
    weight = [sys.executable, str(script), str(world), "weight", "{color}", "{weight}",
              "--version={version}", "--epoch={epoch}"]  # fmt: skip
    target, _ = make(script, tmp_path, weight=weight, **overrides)
    target.stage("blue", release("1.0.0"), epoch=1)
    target.switch("blue", epoch=1)
    target.stage("green", release("2.0.0"), epoch=2)
    return target, world


def split(target: CommandTarget) -> TrafficWeights:
    weights = target.weights()
    assert weights is not None
    return weights


def test_weight_runs_its_argv_and_is_read_back_until_the_switch(
    script: Path, tmp_path: Path
) -> None:
    target, world = weighted(script, tmp_path)
    weights = split(target)
    assert weights.weight() == 0
    weights.set_weight("green", 25, epoch=2)
    assert calls(world)[-1] == ["weight", "green", "25", "--version=2.0.0", "--epoch=2"]
    assert weights.weight() == 25
    # A later CLI call (a new target object) reads the same record.
    later = CommandTarget("chat-api", "prod", templates(script, world, weight=["true"]),
                          tmp_path / "st")  # fmt: skip
    assert split(later).weight() == 25
    record = tmp_path / "st" / "weight.json"
    assert record.stat().st_mode & 0o077 == 0  # private
    weights.set_weight("green", 0, epoch=2)
    assert weights.weight() == 0 and calls(world)[-1][:3] == ["weight", "green", "0"]
    weights.set_weight("green", 50, epoch=3)
    target.switch("green", epoch=3)
    assert weights.weight() == 0  # the switch ended the split
    assert not record.exists()


def test_weight_is_fenced_by_epoch_as_switch_is(script: Path, tmp_path: Path) -> None:
    target, world = weighted(script, tmp_path)
    split(target).set_weight("green", 10, epoch=5)
    before = len(calls(world))
    with pytest.raises(StaleEpoch, match="epoch 4 is older than 5"):
        split(target).set_weight("green", 0, epoch=4)
    assert len(calls(world)) == before
    assert split(target).weight() == 10


def test_a_failing_weight_command_is_one_line_and_leaves_the_weight_unknown(
    script: Path, tmp_path: Path
) -> None:
    target, world = weighted(script, tmp_path)
    split(target).set_weight("green", 10, epoch=2)
    failing, _ = make(
        script, tmp_path, weight=[sys.executable, str(script), str(world), "fail", "{weight}"]
    )
    with pytest.raises(AdapterError) as info:
        split(failing).set_weight("green", 25, epoch=2)
    assert str(info.value) == (
        "command target chat-api/prod: weight failed (exit 3): fatal: disk full"
    )
    # The command may have changed the world before failing: neither 10 nor 25 is known.
    with pytest.raises(AdapterError, match=r"weight is unknown: setting 25% on green did not"):
        split(target).weight()
    split(target).set_weight("green", 0, epoch=2)  # the way back makes it known again
    assert split(target).weight() == 0


def test_weight_needs_a_live_color_other_than_the_canary(script: Path, tmp_path: Path) -> None:
    world = tmp_path / "world"
    target, _ = make(script, tmp_path, weight=[sys.executable, str(script), str(world),
                                               "weight", "{color}", "{weight}"])  # fmt: skip
    with pytest.raises(AdapterError, match="cannot send 10% to green: nothing is live"):
        split(target).set_weight("green", 10, epoch=1)
    target.switch("blue", epoch=1)
    with pytest.raises(AdapterError, match="cannot send 10% to blue as a canary: it is live"):
        split(target).set_weight("blue", 10, epoch=1)
    with pytest.raises(
        AdapterError, match="canary weight must be a percentage from 0 to 100, got 101"
    ):
        split(target).set_weight("green", 101, epoch=1)
    assert [c[0] for c in calls(world)].count("weight") == 0


def test_weight_read_asks_the_team_system_and_confirms_each_weight(
    script: Path, tmp_path: Path
) -> None:
    world = tmp_path / "world"
    read = [sys.executable, str(script), str(world), "weight-read"]
    target, _ = weighted(script, tmp_path, weight_read=read)
    split(target).set_weight("green", 30, epoch=2)
    (world / "weight").write_text("40")  # changed by hand in the team's system
    assert split(target).weight() == 40
    (world / "stuck-weight").write_text("")
    with pytest.raises(AdapterError, match="weight 50% for green exited 0 but weight_read says 0%"):
        split(target).set_weight("green", 50, epoch=2)
    for printed in ("101", "ten", "-1", ""):
        (world / "weight").write_text(printed)
        with pytest.raises(AdapterError, match=f"weight_read printed {printed!r}, expected 0"):
            split(target).weight()


def test_the_weight_record_is_written_without_following_a_symlink(
    script: Path, tmp_path: Path
) -> None:
    target, _ = weighted(script, tmp_path)
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text("{}")
    (tmp_path / "st" / "weight.json").symlink_to(elsewhere)
    split(target).set_weight("green", 5, epoch=2)
    assert elsewhere.read_text() == "{}"
    assert not (tmp_path / "st" / "weight.json").is_symlink()
    assert split(target).weight() == 5


def test_without_a_weight_command_it_cannot_split_and_says_which_setting(
    script: Path, tmp_path: Path
) -> None:
    target, _ = make(script, tmp_path)
    assert target.weights() is None
    assert target.why_no_weights() == "the `weight` key is not set: an argv list with {weight}"
    with pytest.raises(ConfigError, match=r"settings\.stage: unknown placeholder \{weight\}"):
        make(script, tmp_path, stage=["deploy", "{weight}"])


# --- hostile values: the argv received is exactly the one intended ------------------------------

HOSTILE = [
    "; rm -rf ~",
    "$(reboot)",
    "`id`",
    "a | b && c || d & e",
    "line1\nline2\r\n",
    "-rf",
    "--help",
    "\x1b[2J\x1b]0;title\x07",
    "[bold]red[/bold]",
    "{app}{{",
    "'\"\\",
    " spaced  out ",
    "",
    "\u009b31m\u202e",
]
# NUL cannot be passed in argv by any OS; lone surrogates are not text.
argv_text = st.one_of(
    st.sampled_from(HOSTILE),
    st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=40),
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(version=argv_text, region=argv_text, commit=argv_text)
def test_hostile_values_arrive_verbatim(
    script: Path, tmp_path_factory: pytest.TempPathFactory, version: str, region: str, commit: str
) -> None:
    root = tmp_path_factory.mktemp("hostile")
    world = root / "world"
    world.mkdir()
    stage = [
        sys.executable, str(script), str(world), "record",
        "{version}", "--region={config[region]}", "x{commit}y", "{app}", "{epoch}",
    ]  # fmt: skip
    target = CommandTarget(
        "chat-api", "prod", templates(script, world, stage=stage), root / "state"
    )
    spec = ReleaseSpec(app="chat-api", version=version, commit=commit, digest="d",
                       config={"region": region})  # fmt: skip
    target.stage("green", spec, epoch=3)
    assert calls(world)[-1] == [
        "record",
        version,
        f"--region={region}",
        f"x{commit}y",
        "chat-api",
        "3",
    ]
