"""A service spawned by a supervisor that died before recording it is not lost: the intent
(argv and a spawn id) is recorded first, and the next look finds the child by that id."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from shipdeck.adapters.local.processes import ProcessSupervisor, _Entry


def test_a_child_spawned_just_before_the_recorder_died_is_found_and_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "state"
    dying = ProcessSupervisor(state)
    saves: list[int] = []
    real_save = ProcessSupervisor._save

    def save_then_die(self: ProcessSupervisor, entries: Any) -> None:
        saves.append(1)
        if len(saves) == 2:  # the record after the spawn: the recorder is killed here
            raise KeyboardInterrupt
        real_save(self, entries)

    monkeypatch.setattr(ProcessSupervisor, "_save", save_then_die)
    argv = [sys.executable, "-c", "import time; time.sleep(120)"]
    with pytest.raises(KeyboardInterrupt):
        dying.start("blue", argv, tmp_path / "blue.log")
    monkeypatch.setattr(ProcessSupervisor, "_save", real_save)
    # Popen returns once exec has begun (its error pipe closes early in exec), a moment before
    # the kernel sets up the new environment that identifies the child: a later process looks
    # long after that; this one waits for it, as a condition.
    until_execed()

    later = ProcessSupervisor(state)  # a new process looking at the same state
    pid = later.pid("blue")
    assert pid is not None, "the child outlived its recorder unrecorded"
    assert Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:2] == [
        sys.executable.encode(),
        b"-c",
    ]
    assert later.start("blue", argv, tmp_path / "blue.log") == pid  # adopted, not doubled
    later.stop("blue")
    assert not Path(f"/proc/{pid}").exists() or _zombie(pid)
    assert later.pid("blue") is None


def until_execed(deadline: float = 30.0) -> None:
    """Until every live child of this process shows its command line (its exec has finished);
    a zombie (an earlier test's child not reaped yet) has none and is not waited for."""
    end = time.monotonic() + deadline
    while any(not (p / "cmdline").read_bytes() for p in _live_children()):
        assert time.monotonic() < end, "a child never finished its exec"
        time.sleep(0.001)


def _live_children() -> list[Path]:
    out = []
    for proc in Path("/proc").iterdir():
        try:
            fields = (proc / "stat").read_text().rsplit(") ", 1)[1].split()
            if fields[0] not in ("Z", "X") and int(fields[1]) == os.getpid():
                out.append(proc)
        except (OSError, IndexError, ValueError):
            continue
    return out


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")
    except OSError:
        return True


def test_a_spawn_that_never_started_is_not_alive(tmp_path: Path) -> None:
    sup = ProcessSupervisor(tmp_path / "state")
    intent = _Entry(0, 0, "", ["x"], str(tmp_path / "log"), "no-such-spawn")
    sup._save({"blue": intent})  # an intent whose spawn never happened (killed before fork)
    assert sup.pid("blue") is None and sup.names() == []
