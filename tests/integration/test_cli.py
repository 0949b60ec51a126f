"""The headless contract's global behaviour: usage errors, JSON error documents, schema checks.

`shipdeck()` (tests/support/cli.py) runs the real CLI in-process with a given environment and
captures both streams.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.cli import Ran, shipdeck, shipdeck_process
from tests.support.workspace import BASIC_TOML, WorkspaceFixture


def assert_one_line_error(r: Ran, code: int) -> None:
    assert r.code == code, (r.code, r.out, r.err)
    assert "Traceback" not in r.out + r.err
    assert len(r.err_lines) == 1, r.err
    assert r.err.startswith("shipdeck: error: ")


def bare_workspace(tmp_path: Path, db_url: str) -> dict[str, str]:
    """A workspace whose database has never been upgraded; the env to run the CLI in it."""
    root = tmp_path / "bare"
    root.mkdir()
    (root / "shipdeck.toml").write_text(BASIC_TOML, encoding="utf-8")
    return {
        **os.environ,
        "SHIPDECK_WORKSPACE": str(root),
        "SHIPDECK_DATABASE_URL": db_url,
        "SHIPDECK_ACTOR": "alice",
        "NO_COLOR": "1",
    }


@pytest.mark.parametrize(
    "argv",
    [
        ["nosuch"],
        ["status", "--bogus"],
        ["--bogus", "status"],
        ["-o", "xml", "status"],
        ["release", "create"],  # missing arguments
        ["audit", "list", "--limit", "many"],
    ],
)
def test_usage_errors_exit_2_with_one_line(argv: list[str]) -> None:
    r = shipdeck(*argv)
    assert_one_line_error(r, 2)
    assert r.out == ""


def test_unknown_command_in_a_real_process_has_no_traceback() -> None:
    r = shipdeck_process("nosuch")
    assert_one_line_error(r, 2)
    assert "nosuch" in r.err


def test_group_without_command_shows_help_and_exits_2() -> None:
    r = shipdeck("audit")
    assert r.code == 2
    assert "Traceback" not in r.err
    assert "verify" in r.err  # the group's help names its commands
    assert r.err_lines[-1] == "shipdeck: error: missing command (try 'shipdeck audit --help')"


@pytest.mark.parametrize("argv", [["nosuch"], ["status", "--bogus"], ["audit"]])
def test_json_usage_errors_write_the_error_document(argv: list[str]) -> None:
    r = shipdeck("-o", "json", *argv)
    assert r.code == 2
    doc = r.json()
    assert doc["schema_version"] == 1
    assert doc["error"]["exit_code"] == 2
    assert doc["error"]["kind"] == "usage"
    assert doc["error"]["blockers"] == []
    assert "\n" not in doc["error"]["message"]


def test_json_failure_of_a_command_writes_the_error_document(ws: WorkspaceFixture) -> None:
    r = shipdeck("-o", "json", "status", "--env", "nosuch", env=ws.env())
    assert r.code == 2
    doc = r.json()
    assert doc == {
        "schema_version": 1,
        "error": {
            "exit_code": 2,
            "kind": "not_found",
            "message": "--env: unknown environment 'nosuch' (known: staging, prod)",
            "blockers": [],
        },
    }
    assert r.err_lines == ["shipdeck: error: " + doc["error"]["message"]]


def test_options_do_not_leak_between_in_process_runs(ws: WorkspaceFixture) -> None:
    assert shipdeck("-o", "json", "status", env=ws.env()).json()["schema_version"] == 1
    r = shipdeck("nosuch", env=ws.env())
    assert r.code == 2 and r.out == ""  # table mode again: the error is not a JSON document


def test_missing_workspace_is_a_usage_error(tmp_path: Path) -> None:
    env = {**os.environ, "SHIPDECK_WORKSPACE": str(tmp_path / "nowhere")}
    r = shipdeck("status", env=env)
    assert_one_line_error(r, 2)
    assert "shipdeck init" in r.err


def test_schema_behind_exits_4_until_upgraded(tmp_path: Path, db_url: str) -> None:
    env = bare_workspace(tmp_path, db_url)
    r = shipdeck("status", env=env)
    assert_one_line_error(r, 4)
    assert "run 'shipdeck db upgrade'" in r.err
    assert "password" not in r.err.lower()

    j = shipdeck("-o", "json", "audit", "verify", env=env)
    assert j.code == 4
    assert j.json()["error"]["kind"] == "schema_behind"

    up = shipdeck("-o", "json", "db", "upgrade", env=env)
    assert up.code == 0, up.err
    assert up.json()["from"] is None and up.json()["to"]
    ok = shipdeck("-o", "json", "status", env=env)
    assert ok.code == 0, ok.err
    assert [a["app"] for a in ok.json()["apps"]] == ["model-server", "chat-api", "web"]
