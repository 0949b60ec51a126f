"""Checklist commands through the command runner, with real processes: a command that outlives
its item's `timeout` is killed with everything it started, and its intent was committed before
it ran and stays, named by the `plan.checked` outcome."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from shipdeck.core.errors import OperationFailed
from shipdeck.core.services.audit_log import AuditFilter, list_events
from shipdeck.core.services.plans import check_item, create_plan
from tests.integration.shipping import local_toml, release_all
from tests.support.workspace import WorkspaceFixture

# Starts a grandchild that records its pid and sleeps forever, waits until the pid is on disk,
# leaves a marker, then sleeps forever itself: only the item's timeout ends it.
HANGS = """\
import os, subprocess, sys, time
pid_file, marker = sys.argv[1:]
subprocess.Popen([sys.executable, "-c",
    "import os, sys, time; open(sys.argv[1] + '.tmp', 'w').write(str(os.getpid()));"
    " os.replace(sys.argv[1] + '.tmp', sys.argv[1]); time.sleep(10**6)", pid_file])
while not os.path.exists(pid_file):
    time.sleep(0.01)
open(marker, "w").write("ran")
print("grandchild started", flush=True)
time.sleep(10**6)
"""


def _gone(pid: int) -> bool:
    """Dead: no such process, or a zombie waiting for init to reap it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def test_a_timed_out_check_leaves_no_process_behind_and_its_intent_came_first(
    ws: WorkspaceFixture, tmp_path: Path
) -> None:
    script, pid_file, marker = tmp_path / "hangs.py", tmp_path / "grandchild.pid", tmp_path / "ran"
    script.write_text(HANGS)
    argv = json.dumps([sys.executable, str(script), str(pid_file), str(marker)])
    check = f'checklist = [{{ id = "smoke", text = "Smoke", command = {argv}, timeout = 4 }}]'
    ws.write_config(local_toml(env_extra={"staging": check}))  # targets; the plan never runs
    alice = ws.as_user("alice")
    release_all(alice, "1.0.0", apps=("web",))
    plan = create_plan(alice, "staging", ["web@1.0.0"], draft=True)

    with pytest.raises(OperationFailed, match=r"checklist item 'smoke'.*did not finish"):
        check_item(alice, plan.id, "smoke")

    assert marker.read_text() == "ran"  # the command really ran, up to its timeout
    grandchild = int(pid_file.read_text())
    assert _gone(grandchild), f"grandchild {grandchild} outlived its checklist command"

    [intent] = list_events(alice, AuditFilter(kind="plan.check.intent", plan=plan.id))
    [checked] = list_events(alice, AuditFilter(kind="plan.checked", plan=plan.id))
    assert intent.payload["command"] == json.loads(argv) and intent.payload["timeout"] == 4
    assert intent.seq < checked.seq
    assert checked.payload["intent_seq"] == intent.seq
    assert checked.payload["ok"] is False and checked.payload["exit_code"] is None
