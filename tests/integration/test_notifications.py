"""Webhooks fire on plan and run events; a failing webhook never blocks or loses the run and is
audited. Real HTTP to loopback servers, real local targets."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text

from shipdeck.core.services import audit_log
from shipdeck.core.services.audit_log import AuditFilter
from shipdeck.core.services.plans import create_plan
from shipdeck.core.services.runs import deploy
from tests.integration.shipping import live, local_toml, release_all, shipping
from tests.support.cli import cli
from tests.support.http import QuietHandler, serving
from tests.support.workspace import WorkspaceFixture


class Hook:
    """A loopback webhook receiver that answers `status` and keeps every JSON body."""

    def __init__(self, status: int) -> None:
        self.status = status
        self.bodies: list[dict[str, Any]] = []
        self.url = ""

    def handler(self) -> type[QuietHandler]:
        hook = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                hook.bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(hook.status)
                self.end_headers()

        return Handler

    def events(self) -> list[str]:
        return [b["event"] for b in self.bodies]


@pytest.fixture()
def hooks(ws: WorkspaceFixture) -> Iterator[tuple[Hook, Hook]]:
    good, broken = Hook(200), Hook(500)
    with serving(good.handler()) as good_base, serving(broken.handler()) as broken_base:
        good.url, broken.url = good_base + "/hook", broken_base + "/hook"
        top = (
            f'[notifications.ops]\nurl = "{good.url}"\n\n'
            f'[notifications.chat]\nurl = "{broken.url}"\nformat = "slack"\n'
            'events = ["run.succeeded", "run.rolled_back"]\n'
        )
        with shipping(ws, top=top):
            yield good, broken


def test_webhooks_fire_and_a_broken_one_is_audited_not_blocking(
    ws: WorkspaceFixture, hooks: tuple[Hook, Hook]
) -> None:
    good, broken = hooks
    alice = live(ws)
    release_all(alice, "1.0.0", apps=("model-server",))
    result = deploy(alice, "model-server", "1.0.0", "staging")
    assert result.ok, result.as_dict()
    assert good.events() == ["run.started", "run.succeeded"]
    assert good.bodies[1]["payload"]["state"] == "succeeded"
    assert good.bodies[1]["payload"]["actor"] == "alice"
    # The chat hook only asked for outcomes, got one (Slack shape), answered 500: the run stands.
    assert len(broken.bodies) == 1 and "text" in broken.bodies[0]
    failures = audit_log.list_events(alice, AuditFilter(kind="notify.failed"))
    assert [(e.payload["notifier"], e.payload["event"]) for e in failures] == [
        ("chat", "run.succeeded")
    ]
    assert "500" in failures[0].payload["error"]

    plan = create_plan(alice, "prod", ["model-server@1.0.0"])
    assert plan.state == "awaiting_approval"
    assert good.events()[-1] == "plan.awaiting_approval"
    assert good.bodies[-1]["payload"]["plan"] == plan.id
    assert audit_log.verify(alice).ok


class HeaderHook:
    """A loopback receiver that keeps each request's Authorization header and answers `status`
    with `reply` as its body (a receiver that quotes back what it got, as some do on a 401)."""

    def __init__(self, status: int, reply: str = "") -> None:
        self.status, self.reply = status, reply
        self.auth: list[str | None] = []

    def handler(self) -> type[QuietHandler]:
        hook = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                hook.auth.append(self.headers.get("Authorization"))
                body = hook.reply.replace("{auth}", self.headers.get("Authorization") or "")
                self.send_response(hook.status)
                self.end_headers()
                self.wfile.write(body.encode())

        return Handler


SHORT_SECRET = "k9Zq2"  # shorter than any pattern or guessed-credential floor would mask


def _hooked_workspace(ws: WorkspaceFixture, url: str) -> None:
    top = f'[notifications.ops]\nurl = "{url}"\nheaders_env = {{ Authorization = "HOOK_AUTH" }}\n'
    ws.write_config(local_toml(top=top))  # targets configured, never started: plans only


def _failures(ws: WorkspaceFixture) -> list[dict[str, Any]]:
    return [e.payload for e in audit_log.list_events(ws.base, AuditFilter(kind="notify.failed"))]


def test_headers_env_headers_are_delivered(ws: WorkspaceFixture) -> None:
    hook = HeaderHook(200)
    with serving(hook.handler()) as base:
        _hooked_workspace(ws, base + "/hook")
        env = {"HOOK_AUTH": f"Bearer {SHORT_SECRET}"}
        assert cli(ws, "release", "create", "model-server", "1.0.0").returncode == 0
        done = cli(ws, "plan", "create", "--env", "prod", "model-server@1.0.0", extra_env=env)
    assert done.returncode == 0, done.stderr
    assert hook.auth == [f"Bearer {SHORT_SECRET}"]  # the variable's value, sent as the header
    assert _failures(ws) == []


def test_a_short_header_secret_never_reaches_the_audit_log(ws: WorkspaceFixture) -> None:
    hook = HeaderHook(401, reply="rejected credentials {auth}")
    with serving(hook.handler()) as base:
        _hooked_workspace(ws, base + "/hook")
        env = {"HOOK_AUTH": SHORT_SECRET}
        for version in ("1.0.0", "1.0.1"):  # two plans: the same one twice would be one plan
            assert cli(ws, "release", "create", "model-server", version).returncode == 0
        done = cli(ws, "plan", "create", "--env", "prod", "model-server@1.0.0", extra_env=env)
        missing = cli(ws, "plan", "create", "--env", "prod", "model-server@1.0.1")
    assert done.returncode == 0 and missing.returncode == 0, done.stderr + missing.stderr
    assert hook.auth == [SHORT_SECRET]
    first, second = _failures(ws)[::-1]
    assert first["error"].startswith("webhook 127.0.0.1:") and "HTTP 401" in first["error"]
    assert "rejected credentials ***" in first["error"]
    # Without the variable nothing is sent, and the failure names the variable, not a value.
    assert second["error"].endswith(
        "environment variable HOOK_AUTH (header Authorization) is not set"
    )
    with ws.base.db.read() as conn:
        stored = repr(conn.execute(text("SELECT * FROM audit_event")).all())
    assert SHORT_SECRET not in stored
