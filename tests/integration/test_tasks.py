"""Day-2 tasks through the real CLI on live local targets: logs, restart, token limits.

Each is audited with who, parameters and result; protected environments want a task role, a
reason and confirmation; a failure is one line with the documented exit code and its own event.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from shipdeck.core.services import audit_log
from shipdeck.core.services.audit_log import AuditFilter
from shipdeck.core.services.runs import deploy
from tests.integration.shipping import live, release_all, shipping
from tests.support.cli import cli
from tests.support.workspace import WorkspaceFixture

GATEWAY = """\
# LiteLLM proxy config (gateway for chat-api)
model_list:
  - model_name: chat-api
    litellm_params:
      model: openai/gpt-4o-mini
      tpm: 100000   # tokens per minute
      rpm: 600
  - model_name: other
    litellm_params: {model: openai/other, tpm: 5, rpm: 1}
"""

EXTRA = """
[apps.chat-api.targets.prod.token_limits]
adapter = "litellm-file"
path = "gateway.yaml"
model = "chat-api"
"""


@pytest.fixture()
def prod(ws: WorkspaceFixture) -> Iterator[WorkspaceFixture]:
    """chat-api live in a protected prod whose tasks need release-managers."""
    with shipping(
        ws,
        env_extra={
            "prod": 'protected = true\ntask_roles = ["release-managers"]',
            "staging": "",
        },
    ):
        cfg = (ws.root / "shipdeck.toml").read_text()
        cfg = cfg.replace(
            'requires_previous = true\napprovals = { required = 2, roles = ["approvers"] }\nchecklist = ["Release notes reviewed"]\n',
            "",
        )
        ws.write_config(cfg + EXTRA)
        (ws.root / "gateway.yaml").write_text(GATEWAY)
        alice = live(ws)
        release_all(alice, "1.0.0", apps=("chat-api",))
        assert deploy(alice, "chat-api", "1.0.0", "prod").ok
        yield ws


def events(ws: WorkspaceFixture, kind: str) -> list[audit_log.Event]:
    return audit_log.list_events(ws.as_user("erin"), AuditFilter(kind=kind), limit=50)


def task(
    ws: WorkspaceFixture,
    name: str,
    *flags: str,
    yes: bool = True,
    json_out: bool = False,
    actor: str = "alice",
) -> subprocess.CompletedProcess[str]:
    """`shipdeck [--yes] [-o json] task NAME chat-api --env prod FLAGS` as `actor`."""
    options = (["--yes"] if yes else []) + (["-o", "json"] if json_out else [])
    return cli(ws, *options, "task", name, "chat-api", "--env", "prod", *flags, actor=actor)


def test_logs_are_pulled_stripped_and_audited(prod: WorkspaceFixture) -> None:
    from tests.integration.shipping import front_port, get_version

    port = front_port(prod, "chat-api", "prod")
    for _ in range(3):
        assert get_version(port) == "1.0.0"
    done = task(prod, "logs", "--lines", "5", yes=False, json_out=True)
    assert done.returncode == 0, done.stderr
    lines = json.loads(done.stdout)["lines"]
    assert 0 < len(lines) <= 5 and any("/version" in line for line in lines)
    ev = events(prod, "task.logs")[0]
    assert ev.actor == "alice" and ev.payload["lines"] == 5 and ev.payload["returned"] == len(lines)


def test_restart_needs_role_reason_and_confirmation_in_protected_env(
    prod: WorkspaceFixture,
) -> None:
    denied = task(prod, "restart", "--reason", "x", actor="bob")
    assert denied.returncode == 4 and "not permitted" in denied.stderr
    assert events(prod, "access.denied")[0].actor == "bob"

    no_reason = task(prod, "restart")
    assert no_reason.returncode == 2 and "--reason" in no_reason.stderr

    unconfirmed = task(prod, "restart", "--reason", "leak", yes=False)
    assert unconfirmed.returncode == 3 and "--yes" in unconfirmed.stderr
    assert not events(prod, "task.restart")

    ok = task(prod, "restart", "--reason", "memory leak", json_out=True)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["healthy"] is True
    ev = events(prod, "task.restart")[0]
    assert ev.payload["reason"] == "memory leak" and ev.payload["healthy"] is True


def test_token_limits_show_change_refuse_and_record(prod: WorkspaceFixture) -> None:
    shown = task(prod, "token-limit", yes=False, json_out=True)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout) | {"schema_version": 1} == {
        "schema_version": 1,
        "app": "chat-api",
        "env": "prod",
        "tpm": 100000,
        "rpm": 600,
    }
    for bad in ("0", "-5"):
        refused = task(prod, "token-limit", "--tpm", bad, "--reason", "r")
        assert (
            refused.returncode == 2 and "--tpm" in refused.stderr and "positive" in refused.stderr
        )
    not_int = task(prod, "token-limit", "--tpm", "1.5", "--reason", "r")
    assert not_int.returncode == 2 and "Traceback" not in not_int.stderr

    changed = task(
        prod, "token-limit", "--tpm", "250000", "--reason", "launch traffic", json_out=True
    )
    assert changed.returncode == 0, changed.stderr
    doc = json.loads(changed.stdout)
    assert doc["old"] == {"tpm": 100000, "rpm": 600} and doc["new"] == {"tpm": 250000, "rpm": 600}
    text = (prod.root / "gateway.yaml").read_text()
    assert (
        "tpm: 250000   # tokens per minute" in text
        and "{model: openai/other, tpm: 5, rpm: 1}" in text
    )
    ev = events(prod, "task.token-limit")[0]
    assert ev.payload["old"]["tpm"] == 100000 and ev.payload["new"]["tpm"] == 250000
    assert ev.payload["reason"] == "launch traffic"


def test_a_failing_task_is_one_line_exit_5_and_audited(prod: WorkspaceFixture) -> None:
    (prod.root / "gateway.yaml").write_text("model_list: [oops\n")
    failed = task(prod, "token-limit", "--rpm", "10", "--reason", "r")
    assert failed.returncode == 5, failed.stderr
    assert len(failed.stderr.strip().splitlines()) == 1 and "Traceback" not in failed.stderr
    assert "gateway.yaml" in failed.stderr
    assert Path(prod.root / "gateway.yaml").read_text() == "model_list: [oops\n"
    ev = events(prod, "task.token-limit.failed")[0]
    assert ev.actor == "alice" and "gateway.yaml" in ev.payload["error"]
