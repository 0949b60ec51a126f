"""WebhookNotifier against a loopback HTTP receiver."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from shipdeck.adapters.webhook import WebhookNotifier, slack_message
from shipdeck.core.errors import AdapterError, ConfigError
from tests.support.http import QuietHandler, serving
from tests.support.moto_server import free_port

SECRET_PATH = "/services/T000/B000/XXXXsecretXXXX"


@dataclass
class Receiver:
    base: str
    status: int = 200
    received: list[tuple[dict[str, str], Any]] = field(default_factory=list)


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    state = Receiver(base="")

    class Handler(QuietHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            state.received.append((dict(self.headers), json.loads(self.rfile.read(length))))
            body = b"ok" if state.status < 300 else f"failed at {self.path}".encode()
            self.send_response(state.status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    with serving(Handler) as base:
        state.base = base
        yield state


PAYLOAD = {"app": "chat-api", "env": "prod", "version": "2.0.0", "actor": "alice", "waves": 2}


def test_json_post_with_headers_from_the_environment(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOK_TOKEN", "Bearer t0ken")
    notifier = WebhookNotifier(
        receiver.base + "/hook", headers={"Authorization": "HOOK_TOKEN"}, timeout=5
    )
    notifier.send("run.succeeded", PAYLOAD)
    ((headers, body),) = receiver.received
    assert headers["Authorization"] == "Bearer t0ken"
    assert headers["Content-Type"] == "application/json"
    assert body["event"] == "run.succeeded" and body["payload"] == PAYLOAD
    assert body["sent_at"].endswith("+00:00")


def test_slack_payload_shape(receiver: Receiver) -> None:
    WebhookNotifier(receiver.base + SECRET_PATH, format="slack").send(
        "plan.approved", {**PAYLOAD, "comment": "<!channel> & \x1b[31mred\x1b[0m"}
    )
    ((_, body),) = receiver.received
    assert set(body) == {"text", "blocks"}
    assert body["text"] == (
        "shipdeck: plan.approved (app=chat-api, env=prod, version=2.0.0, actor=alice)"
    )
    header, details = body["blocks"]
    assert header == {"type": "section", "text": {"type": "mrkdwn", "text": "*plan.approved*"}}
    assert details["type"] == "section"
    texts = [f["text"] for f in details["fields"]]
    assert all(f["type"] == "mrkdwn" for f in details["fields"])
    assert "*app*\nchat-api" in texts
    assert "*comment*\n&lt;!channel&gt; &amp; red" in texts  # no mention, no escape sequence


def test_slack_message_limits_fields() -> None:
    many = {f"k{i}": "v" * 5000 for i in range(30)}
    blocks = slack_message("e", many)["blocks"]
    fields = blocks[1]["fields"]
    assert len(fields) == 10 and all(len(f["text"]) <= 2000 for f in fields)
    assert slack_message("bare", {})["blocks"] == [
        {"type": "section", "text": {"type": "mrkdwn", "text": "*bare*"}}
    ]


def test_server_error_is_one_line_without_the_secret_path(receiver: Receiver) -> None:
    receiver.status = 500
    with pytest.raises(AdapterError) as info:
        WebhookNotifier(receiver.base + SECRET_PATH, format="slack").send("run.failed", PAYLOAD)
    message = str(info.value)
    port = receiver.base.rsplit(":", 1)[1]
    assert message == f"webhook 127.0.0.1:{port}: run.failed: HTTP 500: failed at ***"
    assert "secret" not in message


def test_unreachable_receiver(monkeypatch: pytest.MonkeyPatch) -> None:
    dead = WebhookNotifier(f"http://127.0.0.1:{free_port()}/hook", timeout=2)
    with pytest.raises(AdapterError, match=r"run\.failed: cannot reach: .*refused"):
        dead.send("run.failed", PAYLOAD)


def test_missing_header_variable_and_bad_config(receiver: Receiver) -> None:
    notifier = WebhookNotifier(receiver.base, headers={"X-Token": "SHIPDECK_NO_SUCH_VAR"})
    with pytest.raises(AdapterError, match=r"SHIPDECK_NO_SUCH_VAR \(header X-Token\) is not set"):
        notifier.send("e", {})
    assert receiver.received == []
    with pytest.raises(ConfigError, match="format must be json or slack"):
        WebhookNotifier(receiver.base, format="teams")
    with pytest.raises(ConfigError, match="url must be http or https"):
        WebhookNotifier("file:///etc/passwd")
