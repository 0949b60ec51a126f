"""Scripts must not pay for the TUI or for SDKs they do not use: `shipdeck --help` and
`shipdeck status -o json` run in a fresh interpreter and report what they imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from shipdeck.core.services.releases import create_release
from tests.support.deployments import record_deployment
from tests.support.workspace import BASIC_TOML, WorkspaceFixture

REPO_ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("textual", "boto3", "botocore", "huggingface_hub")

# Runs the real CLI entry function in a fresh interpreter, then reports the command's exit code,
# its stdout and which top-level packages (shipdeck's own by layer) ended up imported.
RUNNER = """
import io, json, sys
from contextlib import redirect_stdout
from shipdeck.tui.cli import run
out = io.StringIO()
with redirect_stdout(out):
    code = run(sys.argv[1:])
loaded = sorted({".".join(n.split(".")[:2]) if n.startswith("shipdeck.") else n.split(".")[0]
                 for n in sys.modules})
print(json.dumps({"code": code, "out": out.getvalue(), "loaded": loaded}))
"""


def fresh(*argv: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", RUNNER, *argv],
        env={**(env or os.environ), "PYTHONPATH": str(REPO_ROOT)},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    report: dict[str, Any] = json.loads(done.stdout)
    report["err"] = done.stderr
    return report


def test_help_imports_no_tui_and_no_sdk() -> None:
    report = fresh("--help")
    assert report["code"] == 0
    assert "status" in report["out"] and "audit" in report["out"]
    assert not set(HEAVY) & set(report["loaded"]), report["loaded"]
    assert "shipdeck.tui" in report["loaded"]  # the runner really ran the CLI


def test_help_through_the_entry_module_per_importtime() -> None:
    """The same through `python -X importtime -m shipdeck.tui.cli --help`, Python's own import trace."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "shipdeck.tui.cli", "--help"],
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if "|" in line}
    assert "typer" in imported and "Usage: shipdeck" in done.stdout
    assert not {m for m in imported if m.split(".")[0] in HEAVY}


@pytest.fixture
def targets_ws(ws: WorkspaceFixture) -> WorkspaceFixture:
    """The basic workspace with local targets (status probes them) and something deployed."""
    ws.write_config(
        BASIC_TOML
        + '\n[apps.chat-api.targets.prod]\nadapter = "local"\nport = 9\n'
        + '\n[apps.web.artifacts]\nmodel = "hf://org/model@0123456789abcdef0123456789abcdef01234567"\n'
    )
    alice = ws.as_user("alice")
    for app in ("model-server", "chat-api"):
        create_release(alice, app, "1.0.0")
        record_deployment(alice, app, "prod", "1.0.0")
    return ws


def test_status_json_imports_no_tui_and_no_sdk(targets_ws: WorkspaceFixture) -> None:
    report = fresh("-o", "json", "status", env=targets_ws.env("erin"))
    assert report["code"] == 0, report["err"]
    doc = json.loads(report["out"])
    assert doc["schema_version"] == 1
    chat_prod = doc["apps"][1]["environments"][1]
    assert chat_prod["deployed"]["version"] == "1.0.0"
    assert chat_prod["endpoint"] == "http://127.0.0.1:9"  # the local target was consulted
    assert "shipdeck.adapters" in report["loaded"]
    assert not set(HEAVY) & set(report["loaded"]), report["loaded"]
    assert "sqlalchemy" in report["loaded"]  # it really read the database


def test_core_alone_imports_no_front_end_or_sdk() -> None:
    code = (
        "import sys, shipdeck.core.bootstrap, shipdeck.core.services.status, "
        "shipdeck.core.services.releases, shipdeck.core.services.audit_log, "
        "shipdeck.core.domain.config; "
        "print(sorted({'.'.join(m.split('.')[:2]) if m.startswith('shipdeck.') "
        "else m.split('.')[0] for m in sys.modules}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    loaded = set(json.loads(done.stdout.replace("'", '"')))
    assert not loaded & {"textual", "rich", "shipdeck.tui", "git", *HEAVY}, loaded
