"""`task logs` never prints a file through a symlink planted in the workspace: the real CLI,
real files and links; exit 4 with a sentence naming the file, and the refusal audited."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

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


GATEWAY = (
    "# LiteLLM proxy config, bind-mounted into the gateway container\r\n"
    "model_list:\r\n"
    "  - model_name: web\r\n"
    "    litellm_params:\r\n"
    "      model: openai/gpt-4o-mini\r\n"
    "      tpm: 100000   # tokens per minute\r\n"
    "      rpm: 600\r\n"
)


def test_token_limit_edits_a_symlinked_gateway_config_at_its_real_path(
    ws: WorkspaceFixture, tmp_path: Path
) -> None:
    real = tmp_path / "gateway-deploy" / "litellm.yaml"
    real.parent.mkdir()
    real.write_bytes(GATEWAY.encode())
    inode = real.stat().st_ino
    (ws.root / "gateway.yaml").symlink_to(real)
    ws.write_config(
        BASIC_TOML + '\n[apps.web.targets.prod]\nadapter = "local"\nport = 1\n\n'
        '[apps.web.targets.prod.token_limits]\nadapter = "litellm-file"\npath = "gateway.yaml"\n'
        'model = "web"\n'
    )
    done = cli(ws, "--yes", "-o", "json", "task", "token-limit", "web", "--env", "prod",
               "--tpm", "250000", "--reason", "launch")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["new"] == {"tpm": 250000, "rpm": 600}
    assert (ws.root / "gateway.yaml").is_symlink() and real.stat().st_ino == inode
    assert real.read_bytes() == GATEWAY.replace("tpm: 100000 ", "tpm: 250000 ").encode()
    with open(real) as fh:  # as LiteLLM's proxy reads it (ProxyConfig._get_config_from_file)
        assert yaml.safe_load(fh)["model_list"][0]["litellm_params"]["tpm"] == 250000
