"""Workspace files are opened without following a planted symlink: real files, real links, a
real supervised process whose log is a link to a file it must not write."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from shipdeck.adapters.local.processes import ProcessSupervisor
from shipdeck.adapters.local.target import BACKEND_FILE, live_color_in
from shipdeck.adapters.logs import FileLogSource
from shipdeck.core.errors import AdapterError, ExitCode, UnsafeFile
from shipdeck.core.storage.nofollow import open_nofollow


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, Path]:
    """A workspace with logs/app.log, and a victim file outside it holding a secret."""
    root, outside = tmp_path / "ws", tmp_path / "outside"
    (root / "logs").mkdir(parents=True)
    outside.mkdir()
    (root / "logs" / "app.log").write_text("ok line\n")
    (outside / "victim").write_text("root:SECRET-HASH\n")
    return root, outside


def read(fd: int) -> str:
    with open(fd, "rb") as fh:
        return fh.read().decode()


def test_plain_files_open_inside_and_outside_the_workspace(layout: tuple[Path, Path]) -> None:
    root, outside = layout
    assert read(open_nofollow(root / "logs" / "app.log", os.O_RDONLY, root=root)) == "ok line\n"
    assert read(open_nofollow(outside / "victim", os.O_RDONLY, root=root)).startswith("root:")


def test_a_link_at_the_file_is_refused(layout: tuple[Path, Path]) -> None:
    root, outside = layout
    planted = root / "logs" / "planted.log"
    planted.symlink_to(outside / "victim")
    with pytest.raises(UnsafeFile) as err:
        open_nofollow(planted, os.O_RDONLY, root=root)
    assert err.value.exit_code == ExitCode.NOT_PERMITTED
    assert err.value.message.startswith(f"{planted}: refused: it is a symbolic link")
    with pytest.raises(UnsafeFile):  # outside the workspace too, the last component
        open_nofollow(planted, os.O_RDONLY)


def test_a_link_at_a_folder_above_the_file_is_refused(layout: tuple[Path, Path]) -> None:
    root, outside = layout
    (root / "state").symlink_to(outside, target_is_directory=True)
    target = root / "state" / "victim"
    with pytest.raises(UnsafeFile) as err:
        open_nofollow(target, os.O_WRONLY | os.O_APPEND, root=root)
    assert err.value.message.startswith(
        f"{target}: refused: it is under {root / 'state'}, which is a symbolic link"
    )
    assert (outside / "victim").read_text() == "root:SECRET-HASH\n"


def test_a_planted_log_link_is_not_appended_to_by_a_started_process(
    layout: tuple[Path, Path],
) -> None:
    root, outside = layout
    state = root / ".shipdeck" / "targets" / "web" / "prod"
    (state / "logs").mkdir(parents=True)
    (state / "logs" / "blue.log").symlink_to(outside / "victim")
    sup = ProcessSupervisor(state)
    argv = [sys.executable, "-c", "print('written by the app')"]
    with pytest.raises(UnsafeFile, match=r"blue\.log: refused: it is a symbolic link"):
        sup.start("blue", argv, state / "logs" / "blue.log")
    assert sup.pid("blue") is None
    assert (outside / "victim").read_text() == "root:SECRET-HASH\n"


def test_a_new_log_is_not_world_readable(layout: tuple[Path, Path]) -> None:
    root, _ = layout
    state = root / ".shipdeck" / "targets" / "web" / "prod"
    sup = ProcessSupervisor(state)
    log = state / "logs" / "green.log"
    sup.start("green", [sys.executable, "-c", "print('hello')"], log)
    try:
        assert log.stat().st_mode & 0o007 == 0
    finally:
        sup.stop("green")


def test_file_logs_refuse_a_link_planted_in_the_workspace(layout: tuple[Path, Path]) -> None:
    root, outside = layout
    (root / "logs" / "app.log").unlink()
    (root / "logs" / "app.log").symlink_to(outside / "victim")
    source = FileLogSource(root / "logs" / "app.log", workspace=root)
    with pytest.raises(UnsafeFile, match=r"app\.log: refused: it is a symbolic link"):
        source.tail(lines=10)


def test_a_link_planted_at_a_targets_state_file_is_refused_not_read(tmp_path: Path) -> None:
    """A group member who points the live-color file at another file decides nothing: the
    reader refuses the link (status shows the cell as unknown) instead of reading through it."""
    state, outside = tmp_path / "state", tmp_path / "outside"
    state.mkdir()
    outside.mkdir()
    (state / BACKEND_FILE).write_text('{"color": "blue"}')
    assert live_color_in(state, "web/prod") == "blue"
    (outside / "forged").write_text('{"color": "green"}')
    (state / BACKEND_FILE).unlink()
    (state / BACKEND_FILE).symlink_to(outside / "forged")
    with pytest.raises(AdapterError) as err:
        live_color_in(state, "web/prod")
    assert str(err.value).startswith(f"web/prod: {state / BACKEND_FILE}: refused: it is a symbolic")
