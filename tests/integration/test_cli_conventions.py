"""CLI conventions (issue 8): global options anywhere, --version, shell completion, durations,
table widths, commands that need a terminal, and Ctrl-C as exit 130.

These do not depend on the storage backend, so they run on SQLite only.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from shipdeck import __version__
from shipdeck.core.services.releases import create_release
from tests.support.cli import REPO_ROOT, shipdeck, shipdeck_process
from tests.support.terminal import shipdeck_on_terminal
from tests.support.workspace import BASIC_TOML, FixedClock, WorkspaceFixture, three_apps


@pytest.fixture
def sqlite_ws(tmp_path: Path) -> Iterator[WorkspaceFixture]:
    root = tmp_path / "ws"
    root.mkdir()
    w = three_apps(root, f"sqlite:///{tmp_path / 'state.db'}", FixedClock())
    yield w
    w.close()


# --- global options before or after the verb -------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["-o", "json", "status"],
        ["status", "-o", "json"],
        ["status", "--output=json"],
        ["status", "-ojson"],
        ["release", "list", "-o", "json"],
    ],
)
def test_global_options_work_after_the_verb(sqlite_ws: WorkspaceFixture, argv: list[str]) -> None:
    r = shipdeck(*argv, env=sqlite_ws.env("erin"))
    assert r.code == 0, r.err
    assert r.json()["schema_version"] == 1


def test_workspace_option_after_the_verb(sqlite_ws: WorkspaceFixture, tmp_path: Path) -> None:
    env = {**sqlite_ws.env("erin"), "SHIPDECK_WORKSPACE": str(tmp_path / "nowhere")}
    r = shipdeck("status", "-w", str(sqlite_ws.root), "-o", "json", env=env)
    assert r.code == 0, r.err
    assert [a["app"] for a in r.json()["apps"]] == ["model-server", "chat-api", "web"]


def test_yes_after_the_verb_is_the_global_option(sqlite_ws: WorkspaceFixture) -> None:
    # Accepted as an option (not "No such option: --yes"): the run then fails on the plan id.
    r = shipdeck("plan", "run", "nosuch", "--yes", "--timeout", "30", env=sqlite_ws.env())
    assert r.code == 2, r.err
    assert "No such option" not in r.err and "nosuch" in r.err


def test_a_value_that_looks_like_a_global_option_stays_a_value(
    sqlite_ws: WorkspaceFixture,
) -> None:
    r = shipdeck(
        "release", "create", "web", "9.0.0", "--notes", "--yes", "-o", "json",
        env=sqlite_ws.env(),
    )  # fmt: skip
    assert r.code == 0, r.err
    shown = shipdeck("release", "show", "web", "9.0.0", "-o", "json", env=sqlite_ws.env())
    assert shown.json()["release"]["notes"] == "--yes"


# --- version -----------------------------------------------------------------------------------


def test_version_flag_and_command() -> None:
    assert shipdeck("--version").out == f"shipdeck {__version__}\n"
    assert shipdeck("version").out == f"shipdeck {__version__}\n"
    doc = shipdeck("version", "-o", "json").json()
    assert doc == {"schema_version": 1, "version": __version__}


# --- completion --------------------------------------------------------------------------------


def _path_with_shipdeck() -> str:
    """PATH on which `shipdeck` is this checkout's console script (the completion scripts call
    `shipdeck` back by name)."""
    return os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])


def test_bash_completion_script_parses_and_completes_a_command(tmp_path: Path) -> None:
    r = shipdeck("completion", "bash")
    assert r.code == 0, r.err
    script = tmp_path / "shipdeck.bash"
    script.write_text(r.out)
    subprocess.run(["bash", "-n", str(script)], check=True)
    # What bash does on <Tab> after `shipdeck sta`: call the function `complete -F` registered.
    probe = (
        f"source {script}; COMP_WORDS=(shipdeck sta); COMP_CWORD=1; "
        "$(complete -p shipdeck | sed 's/.*-F \\([^ ]*\\) .*/\\1/') shipdeck; "
        'printf "%s\\n" "${COMPREPLY[@]}"'
    )
    env = {**os.environ, "PATH": _path_with_shipdeck(), "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run(
        ["bash", "--norc", "-c", probe], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["status"]


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_zsh_and_fish_completion_scripts_call_shipdeck_back(shell: str, tmp_path: Path) -> None:
    r = shipdeck("completion", shell)
    assert r.code == 0, r.err
    assert "_SHIPDECK_COMPLETE=complete_" + shell in r.out
    if shutil.which(shell):
        script = tmp_path / f"shipdeck.{shell}"
        script.write_text(r.out)
        subprocess.run([shell, "-n", str(script)], check=True)


def test_completion_for_an_unknown_shell_is_a_usage_error() -> None:
    r = shipdeck("completion", "tcsh")
    assert r.code == 2
    assert r.err_lines == [
        "shipdeck: error: completion: unknown shell 'tcsh' (expected bash, zsh or fish)"
    ]


# --- durations ---------------------------------------------------------------------------------


@pytest.mark.parametrize("timeout", ["30", "300ms", "30s", "5m", "1h"])
def test_timeout_takes_every_duration_form(sqlite_ws: WorkspaceFixture, timeout: str) -> None:
    r = shipdeck("plan", "run", "nosuch", "--wait", "--timeout", timeout, env=sqlite_ws.env())
    assert r.code == 2
    assert "invalid duration" not in r.err and "nosuch" in r.err


def test_a_bad_duration_names_the_option(sqlite_ws: WorkspaceFixture) -> None:
    r = shipdeck("plan", "run", "P", "--wait", "--timeout", "soon", env=sqlite_ws.env())
    assert r.code == 2
    assert r.err.startswith("shipdeck: error: --timeout: invalid duration 'soon'")


# --- table widths --------------------------------------------------------------------------------

LONG_VERSION = "3.0.0-with-a-rather-long-version-string-that-would-not-fit"


def _long_release(ws: WorkspaceFixture) -> None:
    create_release(ws.as_user("alice"), "chat-api", LONG_VERSION)


def test_tables_on_a_pipe_keep_every_cell_whole(sqlite_ws: WorkspaceFixture) -> None:
    _long_release(sqlite_ws)
    r = shipdeck("status", env=sqlite_ws.env("erin"))
    assert r.code == 0, r.err
    assert "…" not in r.out
    assert LONG_VERSION in r.out


def test_tables_on_a_terminal_use_its_width(sqlite_ws: WorkspaceFixture) -> None:
    _long_release(sqlite_ws)
    narrow = shipdeck_on_terminal("status", env=sqlite_ws.env("erin"), columns=60)
    wide = shipdeck_on_terminal("status", env=sqlite_ws.env("erin"), columns=200)
    assert narrow.code == wide.code == 0, narrow.err + wide.err
    assert max(len(line) for line in narrow.out.splitlines()) == 60
    assert "…" in narrow.out and LONG_VERSION not in narrow.out
    assert LONG_VERSION in wide.out and "…" not in wide.out
    assert all(len(line) <= 200 for line in wide.out.splitlines())


def test_wide_output_never_cuts_even_on_a_terminal(sqlite_ws: WorkspaceFixture) -> None:
    _long_release(sqlite_ws)
    r = shipdeck_on_terminal("status", "-o", "wide", env=sqlite_ws.env("erin"), columns=40)
    assert r.code == 0, r.err
    assert LONG_VERSION in r.out and "…" not in r.out


def test_audit_list_on_a_pipe_keeps_the_whole_detail(sqlite_ws: WorkspaceFixture) -> None:
    notes = "why: " + "a long release note " * 20 + "END"
    create_release(sqlite_ws.as_user("alice"), "chat-api", "9.9.9", notes=notes)
    r = shipdeck("audit", "list", "--kind", "release.created", env=sqlite_ws.env("erin"))
    assert r.code == 0, r.err
    assert "END" in r.out and "…" not in r.out


# --- commands that need a terminal ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "hint"),
    [
        (["tui"], "shipdeck tui needs a terminal"),
        (["demo"], "pass --no-tui to only build the workspace"),
    ],
)
def test_full_screen_commands_refuse_without_a_terminal(
    sqlite_ws: WorkspaceFixture, tmp_path: Path, argv: list[str], hint: str
) -> None:
    target = tmp_path / "demo"
    r = shipdeck_process(*argv, *(["--dir", str(target)] if argv == ["demo"] else []),
                         env=sqlite_ws.env())  # fmt: skip
    assert r.code == 2, (r.out, r.err)
    assert len(r.err_lines) == 1 and hint in r.err, r.err
    assert "\x1b" not in r.out + r.err
    assert not target.exists()  # the demo refused before building anything


# --- Ctrl-C --------------------------------------------------------------------------------------

FOLLOW_TOML = """
[apps.web.targets.staging]
adapter = "local"
port = 1

[apps.web.targets.staging.logs]
adapter = "file"
path = "web.log"
"""


def test_ctrl_c_on_follow_exits_130(sqlite_ws: WorkspaceFixture) -> None:
    sqlite_ws.write_config(BASIC_TOML + FOLLOW_TOML)
    (sqlite_ws.root / "web.log").write_text("ready line\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "shipdeck.tui.cli", "task", "logs", "web", "--env", "staging",
         "--follow"],
        env={**sqlite_ws.env(), "PYTHONPATH": str(REPO_ROOT)},
        cwd=sqlite_ws.root, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
        # A terminal's Ctrl-C reaches a process whose SIGINT is not ignored; under nohup or a
        # script's `&` the child would inherit SIG_IGN and rightly ignore it.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "ready line\n"  # the tail is out: it is following now
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == "shipdeck: error: interrupted"


def test_ctrl_c_swallowed_by_a_finaliser_still_stops_the_follower() -> None:
    """SIGINT handled inside a __del__ loses its KeyboardInterrupt ("Exception ignored"); the
    follower must still stop on its next poll and the command still end as interrupted."""
    import gc

    from shipdeck.tui.commands.common import interrupt_stop

    class Finaliser:
        def __del__(self) -> None:
            os.kill(os.getpid(), signal.SIGINT)  # the handler runs here, inside the finaliser

    polls = 0
    before = signal.signal(signal.SIGINT, signal.default_int_handler)  # SIG_IGN under nohup
    try:
        with pytest.raises(KeyboardInterrupt), interrupt_stop() as stop:
            Finaliser()
            gc.collect()
            while not stop.wait(0.01):  # what every follower does between reads
                polls += 1
                assert polls < 1000, "the follower never saw the interrupt"
        assert stop.is_set()
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, before)


def test_a_follower_started_with_sigint_ignored_keeps_ignoring_it() -> None:
    from shipdeck.tui.commands.common import interrupt_stop

    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with interrupt_stop() as stop:
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            os.kill(os.getpid(), signal.SIGINT)
            assert not stop.wait(0.05)  # ignored: the follower goes on
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, before)
