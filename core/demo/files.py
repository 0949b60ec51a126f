"""The files that make a folder the demo workspace: shipdeck.toml (with free loopback ports for
its targets), the LiteLLM gateway configs and the marker `demo stop` looks for."""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path

from shipdeck.core.demo.content import APPS

# The file that marks a folder as built by `shipdeck demo`: `demo stop` ends processes only there.
MARKER = Path(".shipdeck") / "demo"


def free_ports(n: int) -> list[int]:
    """n distinct free loopback ports (the demo's targets must not collide with anything)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


# What the demo workspace declares before its apps: people, roles, windows and environments.
HEAD = """\
# The shipdeck demo workspace (built by `shipdeck demo`).
[workspace]
name = "demo"

[identity]
# Whoever runs the demo acts as alice, or as SHIPDECK_ACTOR (bob, carol, ...): one
# person plays every role. A team workspace names its CI runners here instead.
allow_env_actor = true
delegators = ["*"]
default_actor = "alice"

[roles.release-managers]
users = ["alice"]
permissions = ["*"]

[roles.developers]
users = ["dave"]
permissions = ["release.create", "plan.create", "plan.check", "deploy", "task.logs"]

[roles.approvers]
users = ["bob", "carol"]
permissions = ["plan.approve", "plan.check"]

[roles.auditors]
users = ["erin"]
permissions = []

[roles.on-call]
users = ["frank"]
permissions = ["rollback", "reconcile", "task.logs", "task.restart", "task.token-limit"]

# No deploys during the monthly database maintenance.
[windows.db-maintenance]
cron = "0 2 1 * *"
duration = "2h"
timezone = "Europe/Berlin"
kind = "deny"

[freezes.new-year]
start = 2026-12-31T12:00:00+00:00
end = 2027-01-02T08:00:00+00:00
reason = "New year freeze"

[environments.staging]
warm = "30s"

[environments.prod]
requires_previous = true
approvals = { required = 2, roles = ["approvers"] }
checklist = [
  "Release notes reviewed",
  "On-call informed",
]
windows = ["db-maintenance"]
freezes = ["new-year"]
override_roles = ["release-managers"]
task_roles = ["on-call", "release-managers"]
protected = true
warm = "2m"
"""


def demo_toml(ports: list[int]) -> str:
    lines = [HEAD]
    port = iter(ports)
    for app in APPS:
        deps = ", ".join(f'"{d}"' for d in app.depends_on)
        lines += [
            f"[apps.{app.name}]",
            f'repo = "repos/{app.name}"',
            f'owner = "{app.owner}"',
            f'oncall = "#{app.owner}-oncall"',
            f"depends_on = [{deps}]",
        ]
        if app.name == "chat-api":
            lines.append("config = { max_tokens = 4096, temperature = 0.2 }")
        lines.append("")
        for env in ("staging", "prod"):
            front = next(port)
            lines += [
                f"[apps.{app.name}.targets.{env}]",
                'adapter = "local"',
                f"port = {front}",
                f"blue_port = {next(port)}",
                f"green_port = {next(port)}",
                "",
            ]
            if app.name == "model-server":
                lines += _eval_gate(env)
            if app.name == "web" and env == "staging":
                lines += CANARY
            if app.name == "chat-api":
                lines += [
                    f"[apps.chat-api.targets.{env}.token_limits]",
                    'adapter = "litellm-file"',
                    f'path = "gateway/{env}.yaml"',
                    'model = "chat-api"',
                    "",
                ]
    return "\n".join(lines)


# web ships to staging as a canary: a fifth of the traffic, then half, each weight judged on its
# error rate; it waits for a person (P in the run view, or `plan promote`) before taking it all.
CANARY = [
    'strategy = "canary"',
    "[apps.web.targets.staging.canary]",
    'steps = [{ set_weight = 20 }, { pause = "30s" }, { set_weight = 50 }, { pause = {} }]',
    "# With no traffic there is nothing to judge: the analysis is inconclusive and the canary",
    "# waits for a person. Send some (curl the front port in a loop) to see it judged.",
    "[apps.web.targets.staging.canary.analysis.error_rate]",
    'success = "error_rate < 0.01"',
    'interval = "10s"',
    "",
]


def _eval_gate(env: str) -> list[str]:
    """The model server's eval gate: core/demo/evaluator.py against the staged color."""
    python = json.dumps(sys.executable)
    return [
        "# Before traffic moves, the staged color is evaluated: no metric may be more than the",
        "# allowed percentage worse than what the live release measured (try a -distilled version).",
        f"[apps.model-server.targets.{env}.eval]",
        f'command = [{python}, "-m", "shipdeck.core.demo.evaluator", "{{url}}"]',
        "timeout = 30",
        'metrics.accuracy = { min = 0.85, max_regression = "5%" }',
        'metrics.latency_ms = { max = 500, max_regression = "50%" }',
        "",
    ]


GATEWAY_YAML = """\
# LiteLLM proxy config: the gateway in front of the chat models (token limits per model).
model_list:
  - model_name: chat-api
    litellm_params:
      model: openai/demo-chat
      tpm: {tpm}
      rpm: {rpm}
  - model_name: embedder
    litellm_params:
      model: openai/demo-embed
      tpm: 1000000
      rpm: 3000
"""


def write_workspace_files(root: Path) -> None:
    """shipdeck.toml, the demo marker and a gateway config per environment."""
    (root / "shipdeck.toml").write_text(demo_toml(free_ports(len(APPS) * 6)), encoding="utf-8")
    (root / MARKER).parent.mkdir(exist_ok=True)
    (root / MARKER).write_text(
        "built by `shipdeck demo`; `shipdeck demo stop` ends its processes\n"
    )
    (root / "gateway").mkdir()
    for env, (tpm, rpm) in {"staging": (20_000, 100), "prod": (120_000, 600)}.items():
        (root / "gateway" / f"{env}.yaml").write_text(GATEWAY_YAML.format(tpm=tpm, rpm=rpm))
