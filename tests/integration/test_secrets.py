"""Secrets planted in config values, adapter output and the environment never come out again:
not on stdout or stderr, not in JSON, not in the audit table, not in any file shipdeck writes."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from sqlalchemy import text

from tests.support.cli import cli
from tests.support.fake_hub import FakeHub
from tests.support.workspace import WorkspaceFixture

HF_TOKEN = "hf_" + "Q7x" * 10
GATEWAY_TOKEN = "gw-" + "s3cr3tValue" * 3
API_KEY = "sk-" + "A1b2" * 8
PASSWORD = "correct-horse-battery"

TOML = """
[workspace]
name = "secrets"

[identity]
allow_env_actor = true
delegators = ["*"]

[sources.hub]
kind = "hf"
endpoint = "{hub}"
token_env = "HF_TOKEN"

[environments.prod]

[apps.chat-api]
repo = "repos/chat-api"
config = {{ api_key = "{api_key}", max_tokens = 4096 }}

[apps.chat-api.artifacts.model]
uri = "hf://acme/chat-model@main"
source = "hub"

[apps.chat-api.targets.prod]
adapter = "local"
port = 1

[apps.chat-api.targets.prod.logs]
adapter = "file"
path = "app.log"

[apps.chat-api.targets.prod.token_limits]
adapter = "http"
url = "http://127.0.0.1:9"
model = "chat-api"
token_env = "GATEWAY_TOKEN"
"""


def run(ws: WorkspaceFixture, *args: str) -> subprocess.CompletedProcess[str]:
    secrets = {"HF_TOKEN": HF_TOKEN, "GATEWAY_TOKEN": GATEWAY_TOKEN, "DB_PASSWORD": PASSWORD}
    return cli(ws, *args, extra_env=secrets)


def test_planted_secrets_never_come_out(ws: WorkspaceFixture) -> None:
    planted = (HF_TOKEN, GATEWAY_TOKEN, API_KEY, PASSWORD)
    with FakeHub() as hub:
        hub.add_token(HF_TOKEN)
        repo = hub.add_repo("acme/chat-model", private=True)
        repo.grant(HF_TOKEN)
        repo.commit({"config.json": "{}", "model.safetensors": b"w" * 1000})
        ws.write_config(TOML.format(hub=hub.endpoint, api_key=API_KEY))
        (ws.root / "app.log").write_text(
            f"2026-11-24T10:00:00Z boot with HF_TOKEN={HF_TOKEN}\n"
            f"2026-11-24T10:00:01Z GET /v1 Authorization: Bearer {GATEWAY_TOKEN}\n"
            f"2026-11-24T10:00:02Z db password {PASSWORD}\n"
        )
        outputs = [
            run(
                ws,
                "-o",
                "json",
                "release",
                "create",
                "chat-api",
                "1.0.0",
                "--notes",
                f"rotated {GATEWAY_TOKEN}",
                "--config",
                f"password={PASSWORD}",
            ),
            run(ws, "release", "create", "chat-api", "1.0.1", "--commit", HF_TOKEN),
            run(ws, "-o", "json", "release", "show", "chat-api", "1.0.0"),
            run(ws, "release", "show", "chat-api", "1.0.0"),
            run(ws, "-o", "json", "status"),
            run(ws, "-o", "json", "audit", "list"),
            run(ws, "audit", "export", "--format", "csv"),
            run(ws, "-o", "json", "task", "logs", "chat-api", "--env", "prod"),
            run(ws, "task", "logs", "chat-api", "--env", "prod"),
            run(ws, "-o", "yaml", "task", "token-limit", "chat-api", "--env", "prod"),
        ]
        auth_headers = [r.headers.get("authorization", "") for r in hub.recorded()]
    assert outputs[0].returncode == 0, outputs[0].stderr
    assert json.loads(outputs[0].stdout)["release"]["artifacts"][0]["resolved"].startswith(
        "hf://acme/"
    )
    assert f"Bearer {HF_TOKEN}" in auth_headers  # the token was really used...
    assert outputs[1].returncode == 2 and outputs[8].returncode == 0 and outputs[9].returncode == 5
    assert "***" in outputs[8].stdout  # ...and masked where the log quoted it
    for done in outputs:
        for secret in planted:
            assert secret not in done.stdout, (done.args, secret)
            assert secret not in done.stderr, (done.args, secret)

    with ws.base.db.read() as conn:
        rows = conn.execute(text("SELECT * FROM audit_event")).all()
        releases = conn.execute(text("SELECT manifest, notes FROM release")).all()
    stored = repr(rows) + repr(releases)
    assert len(rows) >= 3
    for secret in planted:
        assert secret not in stored
    for path in Path(ws.root / ".shipdeck").rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for secret in planted:
                assert secret.encode() not in data, (path, secret)
