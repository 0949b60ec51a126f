"""`task logs` never prints a file through a symlink planted in the workspace: the real CLI,
real files and links; exit 4 with a sentence naming the file, and the refusal audited."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.cli import cli
from tests.support.workspace import BASIC_TOML, WorkspaceFixture

SECRET = "root:$6$only-the-operator-may-read-this"


def _logs_at(ws: WorkspaceFixture, path: str) -> None:
    ws.write_config(
        BASIC_TOML + f'\n[apps.web.targets.prod]\nadapter = "local"\nport = 1\n\n'
        f'[apps.web.targets.prod.logs]\nadapter = "file"\npath = "{path}"\n'
    )


@pytest.mark.parametrize("planted", ["file", "folder"])
def test_task_logs_refuses_a_planted_symlink(
    ws: WorkspaceFixture, tmp_path: Path, planted: str
) -> None:
    victim = tmp_path / "private" / "shadow"
    victim.parent.mkdir()
    victim.write_text(SECRET + "\n")
    if planted == "file":
        _logs_at(ws, "web.log")
        (ws.root / "web.log").symlink_to(victim)
        expected = f"{ws.root / 'web.log'}: refused: it is a symbolic link"
    else:
        _logs_at(ws, "logs/shadow")
        (ws.root / "logs").symlink_to(victim.parent, target_is_directory=True)
        expected = (
            f"{ws.root / 'logs' / 'shadow'}: refused: it is under {ws.root / 'logs'}, "
            "which is a symbolic link"
        )
    table = cli(ws, "task", "logs", "web", "--env", "prod")
    doc = cli(ws, "-o", "json", "task", "logs", "web", "--env", "prod")
    assert table.returncode == 4 and doc.returncode == 4
    assert table.stdout == "" and SECRET not in table.stderr + doc.stdout
    assert table.stderr.startswith(f"shipdeck: error: {expected}")
    assert json.loads(doc.stdout)["error"]["kind"] == "unsafe_file"
    failed = cli(ws, "-o", "json", "audit", "list", "--kind", "task.logs.failed").stdout
    assert [e["payload"]["error"].split(": refused")[0] for e in json.loads(failed)["events"]] == [
        expected.split(": refused")[0]
    ] * 2
