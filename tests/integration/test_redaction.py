"""Credentials found by structure (URL userinfo, DSN passwords, key names in any style) and by
shape (AWS secret keys, password= and HTTP Basic in log lines, GitHub tokens, JWTs, Slack
webhooks) are masked wherever shipdeck stores, prints or audits them: the real CLI in a
subprocess, then the database and every file under .shipdeck/ searched for each planted value."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

from sqlalchemy import text

from tests.support.cli import cli
from tests.support.workspace import WorkspaceFixture

URL_TOKEN = "tok3n-" + "Zr8" * 4
DSN_PASSWORD = "dsnPass" + "w0rd" * 2
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
CAMEL_TOKEN = "camelValue" + "9" * 6
CLIENT_SECRET = "clientValue" + "7" * 6
LOG_PASSWORD = "hunter2" + "x" * 5
BASIC = base64.b64encode(b"deploy:basicPassw0rd").decode()
GITHUB_PAT = "github_pat_" + "11ABCDEFG0" + "a1B2" * 15
GHO = "gho_" + "Q1w2E3r4" * 4 + "T5y6"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJvcHMifQ.c2lnbmF0dXJlX29mX3RoZV90b2tlbg"
SLACK_HOOK = "https://hooks.slack.com/services/T01ABCDEF/B01ABCDEF/" + "abcXYZ123" * 3
CHECK_TOKEN = "ghp_" + "C0mmandPr1nted" * 3

TOML = """
[workspace]
name = "redaction"

[identity]
allow_env_actor = true
delegators = ["*"]

[environments.prod]
checklist = [{{ id = "scan", text = "Scan", command = ["{python}", "-c", "print('scan ok, token {check}')"] }}]

[apps.chat-api]
repo = "repos/chat-api"

[apps.chat-api.targets.prod]
adapter = "local"
port = 1

[apps.chat-api.targets.prod.logs]
adapter = "file"
path = "app.log"
"""


def test_credentials_by_structure_and_shape_never_come_out(ws: WorkspaceFixture) -> None:
    ws.write_config(TOML.format(python=sys.executable, check=CHECK_TOKEN))
    ws.repo("chat-api", 3)
    (ws.root / "app.log").write_text(
        f"2026-11-24T10:00:00Z login ok password={LOG_PASSWORD} from 10.0.0.7\n"
        f"2026-11-24T10:00:01Z upstream Authorization: Basic {BASIC}\n"
        f"2026-11-24T10:00:02Z git push with {GITHUB_PAT} and {GHO}\n"
        f"2026-11-24T10:00:03Z session {JWT} posted to {SLACK_HOOK}\n"
        f"2026-11-24T10:00:04Z db postgresql://app:{DSN_PASSWORD}@db:5432/x up\n"
    )
    planted = (URL_TOKEN, DSN_PASSWORD, AWS_SECRET, CAMEL_TOKEN, CLIENT_SECRET, LOG_PASSWORD)
    planted += (BASIC, GITHUB_PAT, GHO, JWT, SLACK_HOOK, CHECK_TOKEN)
    created = cli(
        ws, "-o", "json", "release", "create", "chat-api", "1.0.0",
        "--artifact", f"weights=https://deploy:{URL_TOKEN}@files.example/w.bin",
        "--artifact", f"db=postgresql://app:{DSN_PASSWORD}@db.example:5432/app",
        "--config", f"apiToken={CAMEL_TOKEN}", "--config", f"client-secret={CLIENT_SECRET}",
        "--notes", f"rotated: aws secret is {AWS_SECRET}; old bot {GHO}",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    release = json.loads(created.stdout)["release"]
    assert {a["name"]: a["uri"] for a in release["artifacts"]} == {
        "weights": "https://deploy:***@files.example/w.bin",
        "db": "postgresql://app:***@db.example:5432/app",
    }
    assert release["config"] == {"apiToken": "***", "client-secret": "***"}
    assert release["notes"] == "rotated: aws secret is ***; old bot ***"
    plan = cli(ws, "-o", "json", "plan", "create", "--env", "prod", "chat-api@1.0.0")
    plan_id = json.loads(plan.stdout)["plan"]["id"]
    ticked = cli(ws, "-o", "json", "plan", "check", plan_id, "scan")
    assert ticked.returncode == 0, ticked.stderr
    outputs: list[subprocess.CompletedProcess[str]] = [created, plan, ticked]
    outputs += [
        cli(ws, "release", "show", "chat-api", "1.0.0"),
        cli(ws, "-o", "yaml", "release", "show", "chat-api", "1.0.0"),
        cli(ws, "-o", "json", "plan", "show", plan_id),
        cli(ws, "plan", "show", plan_id),
        cli(ws, "-o", "json", "audit", "list"),
        cli(ws, "audit", "list"),
        cli(ws, "audit", "export", "--format", "csv"),
        cli(ws, "audit", "export", "--format", "jsonl"),
        cli(ws, "-o", "json", "task", "logs", "chat-api", "--env", "prod"),
    ]
    logs = cli(ws, "task", "logs", "chat-api", "--env", "prod")
    assert logs.returncode == 0, logs.stderr
    assert logs.stdout.splitlines() == [
        "2026-11-24T10:00:00Z login ok password=*** from 10.0.0.7",
        "2026-11-24T10:00:01Z upstream Authorization: ***",
        "2026-11-24T10:00:02Z git push with *** and ***",
        "2026-11-24T10:00:03Z session *** posted to ***",
        "2026-11-24T10:00:04Z db postgresql://app:***@db:5432/x up",
    ]
    for done in [*outputs, logs]:
        assert done.returncode == 0, (done.args, done.stderr)
        for secret in planted:
            assert secret not in done.stdout + done.stderr, (done.args, secret)

    with ws.base.db.read() as conn:
        stored = repr(conn.execute(text("SELECT * FROM audit_event")).all())
        stored += repr(conn.execute(text("SELECT manifest, notes FROM release")).all())
        ticks = conn.execute(text("SELECT output FROM checklist_tick")).scalars().all()
    assert ticks == ["scan ok, token ***\n"]
    for secret in planted:
        assert secret not in stored, secret
    for path in Path(ws.root / ".shipdeck").rglob("*"):
        if path.is_file():
            for secret in planted:
                assert secret.encode() not in path.read_bytes(), (path, secret)
