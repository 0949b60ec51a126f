"""A canary on `command` targets, end to end through the CLI, on SQLite and PostgreSQL: the
team's own script is given each weight as argv, a detached runner waits at the pause until
`plan promote` (then switches) or `plan abort` (then sets 0 and switches nothing back). There is
no analysis: a command target has no metrics source, so the steps are weights and pauses."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from shipdeck.core.ports import other_color
from shipdeck.core.services.plans import create_plan
from shipdeck.core.services.runs import RunResult, run_plan, wait_run
from tests.integration.shipping import live, release_all, until_step
from tests.support.cli import cli
from tests.support.workspace import BASIC_TOML, WorkspaceFixture

# The team's deploy system: its state in files, every argv it got in calls.jsonl.
DEPLOY = """
import json, pathlib, sys
world = pathlib.Path(sys.argv[1]); cmd, args = sys.argv[2], sys.argv[3:]
world.mkdir(parents=True, exist_ok=True)
with open(world / "calls.jsonl", "a", encoding="utf-8") as log:
    log.write(json.dumps([cmd, *args]) + "\\n")
live, weight = world / "live", world / "weight"
if cmd == "stage":
    (world / args[0]).write_text(args[1])
elif cmd == "health":
    sys.exit(0 if (world / args[0]).exists() else 1)
elif cmd == "switch":
    live.write_text(args[0])
    weight.unlink(missing_ok=True)
elif cmd == "live":
    print(live.read_text() if live.exists() else "")
elif cmd == "weight":
    weight.write_text(" ".join(args))
"""
CANARY = """
[environments.staging.canary]
steps = [{ set_weight = 10 }, { pause = {} }, { set_weight = 50 }, { set_weight = 100 }]
"""


def _workspace(ws: WorkspaceFixture) -> Path:
    """Every app's staging and prod on the script above; web's world folder is returned."""
    script = ws.root / "deploy.py"
    script.write_text(DEPLOY, encoding="utf-8")
    text = CANARY + BASIC_TOML.replace(
        "[environments.staging]\n", '[environments.staging]\nstrategy = "canary"\n'
    )
    for app in ("model-server", "chat-api", "web"):
        for env in ("staging", "prod"):
            world = str(ws.root / "world" / app / env)

            def argv(*tail: str, world: str = world) -> str:
                return json.dumps([sys.executable, str(script), world, *tail])  # TOML too

            text += (
                f'\n[apps.{app}.targets.{env}]\nadapter = "command"\n'
                f"stage = {argv('stage', '{color}', '{version}')}\n"
                f"health = {argv('health', '{color}')}\n"
                f"switch = {argv('switch', '{color}')}\n"
                f"live_color = {argv('live')}\n"
                f"weight = {argv('weight', '{color}', '{weight}', '{version}')}\n"
            )
    ws.write_config(text)
    return ws.root / "world" / "web" / "staging"


def _calls(world: Path, cmd: str) -> list[list[str]]:
    lines = (world / "calls.jsonl").read_text(encoding="utf-8").splitlines()
    return [c for c in map(json.loads, lines) if c[0] == cmd]


def _paused_at_10(ws: WorkspaceFixture) -> tuple[str, str, str]:
    """web 1.0.0 live (a first deployment switches at once), then 2.0.0 as a canary in a
    detached runner, paused at 10%: (plan id, live color, canary color)."""
    alice = live(ws)
    release_all(alice, "1.0.0", apps=["web"])
    assert run_plan(alice, create_plan(alice, "staging", ["web"]).id).ok
    first = (ws.root / "world" / "web" / "staging" / "live").read_text()
    release_all(alice, "2.0.0", apps=["web"])
    plan = create_plan(alice, "staging", ["web@2.0.0"])
    assert cli(ws, "plan", "run", plan.id).returncode == 0
    until_step(alice, plan.id, "canary", "started", detail="paused at 10%")
    return plan.id, first, other_color(first)  # type: ignore[arg-type]


def _canary_rows(result: RunResult) -> list[str]:
    return [s.detail for s in result.steps if s.step == "canary" and s.state == "done"]


def test_a_promoted_canary_walks_its_weights_then_switches(ws: WorkspaceFixture) -> None:
    world = _workspace(ws)
    plan, _, canary = _paused_at_10(ws)
    assert (world / "weight").read_text() == f"{canary} 10 2.0.0"
    status = json.loads(cli(ws, "-o", "json", "status", "--app", "web", "--env", "staging").stdout)
    assert status["apps"][0]["environments"][0]["canary_weight"] == 10

    assert cli(ws, "plan", "promote", plan).returncode == 0
    result = wait_run(live(ws), plan, timeout=120)

    assert result.state == "succeeded", result.result
    assert _calls(world, "weight") == [["weight", canary, "10", "2.0.0"],
                                       ["weight", canary, "50", "2.0.0"]]  # fmt: skip
    assert [r for r in _canary_rows(result) if r.startswith("weight")] == [
        "weight 10%",
        "weight 50%",
    ]
    assert (world / "live").read_text() == canary and not (world / "weight").exists()
    settings = ws.base.config.apps["web"].targets["staging"].settings
    weights = ws.base.targets("web", "staging", "command", settings).weights()
    assert weights is not None and weights.weight() == 0  # the switch ended the split


def test_an_aborted_canary_goes_back_to_weight_0_and_stays_on_the_live_color(
    ws: WorkspaceFixture,
) -> None:
    world = _workspace(ws)
    plan, first, canary = _paused_at_10(ws)

    assert cli(ws, "plan", "abort", plan, "--yes").returncode == 0
    result = wait_run(live(ws), plan, timeout=120)

    assert result.state == "aborted", result.result
    assert _calls(world, "weight") == [["weight", canary, "10", "2.0.0"],
                                       ["weight", canary, "0", "2.0.0"]]  # fmt: skip
    assert "weight 0% (aborted by alice)" in _canary_rows(result)
    assert (world / "live").read_text() == first and (world / "weight").read_text() == (
        f"{canary} 0 2.0.0"
    )
    assert [c[1] for c in _calls(world, "switch")] == [first]  # only the first deployment's
