"""`strategy` and the `[canary]` tables of shipdeck.toml: what a good file gives the engine
(per environment, overridden per app target), and every bad one refused with exit 4 and its key
path; and the plan digest, which covers the canary only where there is one."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from shipdeck.core.domain.canary import CanarySpec, Pause, SetWeight
from shipdeck.core.domain.config import WorkspaceConfig, parse_config
from shipdeck.core.domain.plan import PlanBody, PlanItem, plan_digest
from shipdeck.core.errors import ConfigError
from tests.support.cli import shipdeck
from tests.support.workspace import BASIC_TOML

PROD_CANARY = """
strategy = "canary"
[environments.prod.canary]
steps = [{ set_weight = 5 }, { pause = "5m" }, { set_weight = 25 }, { pause = {} },
         { set_weight = 50 }, { pause = "1m" }, { set_weight = 100 }]
[environments.prod.canary.analysis.error_rate]
success = "error_rate < 0.01"
interval = "1m"
count = 3
[environments.prod.canary.analysis.latency_p95_ms]
success = "latency_p95_ms <= 1.2 * stable"
interval = "30s"
failure_limit = 1
"""
TARGET = '\n[apps.{app}.targets.{env}]\nadapter = "local"\nport = {port}\n'


def _config(prod: str = PROD_CANARY, targets: str = "") -> str:
    text = BASIC_TOML.replace(
        'override_roles = ["release-managers"]\n',
        'override_roles = ["release-managers"]\n' + prod,
        1,
    )
    for n, app in enumerate(("model-server", "chat-api", "web")):
        for env in ("staging", "prod"):
            text += TARGET.format(app=app, env=env, port=21000 + 10 * n + (env == "prod"))
    return text + targets


def _parse(text: str) -> WorkspaceConfig:
    return parse_config(tomllib.loads(text))


def _problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        _parse(text)
    assert caught.value.exit_code == 4
    return [p.removeprefix("shipdeck.toml: ") for p in caught.value.all_errors]  # type: ignore[attr-defined]


def test_an_environment_canary_is_what_its_apps_walk() -> None:
    cfg = _parse(_config())
    spec = cfg.canary("chat-api", "prod")
    assert spec is not None
    assert spec.steps == (
        SetWeight(5),
        Pause(300.0),
        SetWeight(25),
        Pause(None),
        SetWeight(50),
        Pause(60.0),
        SetWeight(100),
    )
    errors, latency = spec.metrics
    assert (errors.name, errors.interval, errors.count, errors.failure_limit) == (
        "error_rate", 60.0, 3, 0,
    )  # fmt: skip
    assert latency.condition.text() == "latency_p95_ms <= 1.2 * stable"
    assert (latency.count, latency.failure_limit, latency.inconclusive_limit) == (1, 1, 0)
    assert cfg.canary("chat-api", "staging") is None  # staging stays blue/green
    assert cfg.canary("chat-api", "prod", kind="rollback") is None  # one switch back


def test_a_target_overrides_the_strategy_and_the_steps() -> None:
    targets = "\n[apps.web.targets.staging.canary]\nsteps = [{ set_weight = 10 }]\n"
    text = (
        _config(targets=targets)
        .replace(
            '[apps.web.targets.staging]\nadapter = "local"\n',
            '[apps.web.targets.staging]\nadapter = "local"\nstrategy = "canary"\n',
        )
        .replace(
            '[apps.model-server.targets.prod]\nadapter = "local"\n',
            '[apps.model-server.targets.prod]\nadapter = "local"\nstrategy = "blue-green"\n',
        )
    )
    cfg = _parse(text)
    assert cfg.canary("web", "staging") == CanarySpec((SetWeight(10),))
    assert cfg.canary("model-server", "prod") is None
    assert cfg.canary("web", "prod") is not None


def test_blue_green_stays_the_default() -> None:
    cfg = _parse(_config(prod=""))
    assert all(cfg.canary(a, e) is None for a in cfg.apps for e in cfg.environments)
    assert cfg.environments["prod"].strategy == "blue-green"


BAD: list[tuple[str, str, str]] = [
    ("unknown strategy", 'strategy = "linear"\n', "environments.prod.strategy: must be 'blue-green' or 'canary', not 'linear'"),
    ("canary without steps", 'strategy = "canary"\n', "apps.model-server.targets.prod: strategy 'canary' (from environments.prod) needs steps: add [apps.model-server.targets.prod.canary] or [environments.prod.canary]"),
    ("unknown canary key", "[environments.prod.canary]\nsteps = [{ set_weight = 5 }]\nstep = 1\n", "environments.prod.canary.step: unknown key (did you mean 'steps'?)"),
    ("steps missing", "[environments.prod.canary]\n", "environments.prod.canary.steps: required key is missing"),
    ("no weight", '[environments.prod.canary]\nsteps = [{ pause = "1m" }]\n', "environments.prod.canary.steps: needs at least one { set_weight = N }"),
    ("weight above 100", "[environments.prod.canary]\nsteps = [{ set_weight = 150 }]\n", "environments.prod.canary.steps[0].set_weight: must be a percentage from 1 to 100, not 150"),
    ("weights going down", "[environments.prod.canary]\nsteps = [{ set_weight = 50 }, { set_weight = 25 }]\n", "environments.prod.canary.steps[1].set_weight: must be above the previous weight 50"),
    ("after 100", '[environments.prod.canary]\nsteps = [{ set_weight = 100 }, { pause = "1m" }]\n', "environments.prod.canary.steps[1]: nothing can follow set_weight = 100 (it is the promote)"),
    ("two keys", '[environments.prod.canary]\nsteps = [{ set_weight = 5, pause = "1m" }]\n', "environments.prod.canary.steps[0]: must be a table with one key, set_weight or pause, not 2 keys"),
    ("bad pause", "[environments.prod.canary]\nsteps = [{ set_weight = 5 }, { pause = 5 }]\n", "environments.prod.canary.steps[1].pause: must be a duration like \"5m\", or {} (until promoted), not an integer"),
    ("a step that is a string", '[environments.prod.canary]\nsteps = ["5%"]\n', "environments.prod.canary.steps[0]: must be a table with one key, set_weight or pause, not a string"),
    ("an unknown step", "[environments.prod.canary]\nsteps = [{ set_wieght = 5 }]\n", "environments.prod.canary.steps[0].set_wieght: unknown key (did you mean 'set_weight'?)"),
    ("eval in a condition", '[environments.prod.canary]\nsteps = [{ set_weight = 5 }]\n[environments.prod.canary.analysis.e]\nsuccess = "__import__(\'os\') < 1"\ninterval = "1m"\n', "environments.prod.canary.analysis.e.success: '__import__('os') < 1' is not a condition like 'error_rate < 0.01' or 'latency_p95_ms <= 1.2 * stable'"),
    ("condition on another metric", '[environments.prod.canary]\nsteps = [{ set_weight = 5 }]\n[environments.prod.canary.analysis.errors]\nsuccess = "latency < 1"\ninterval = "1m"\n', "environments.prod.canary.analysis.errors.success: compares 'latency', not this metric 'errors'"),
    ("no interval", '[environments.prod.canary]\nsteps = [{ set_weight = 5 }]\n[environments.prod.canary.analysis.e]\nsuccess = "e < 1"\n', "environments.prod.canary.analysis.e.interval: required key is missing"),
    ("zero count", '[environments.prod.canary]\nsteps = [{ set_weight = 5 }]\n[environments.prod.canary.analysis.e]\nsuccess = "e < 1"\ninterval = "1m"\ncount = 0\n', "environments.prod.canary.analysis.e.count: must be 1 or more, not 0"),
    ("negative limit", '[environments.prod.canary]\nsteps = [{ set_weight = 5 }]\n[environments.prod.canary.analysis.e]\nsuccess = "e < 1"\ninterval = "1m"\nfailure_limit = -1\n', "environments.prod.canary.analysis.e.failure_limit: must be 0 or more, not -1"),
    ("bad interval", '[environments.prod.canary]\nsteps = [{ set_weight = 5 }]\n[environments.prod.canary.analysis.e]\nsuccess = "e < 1"\ninterval = "soon"\n', "environments.prod.canary.analysis.e.interval: "),
]  # fmt: skip


@pytest.mark.parametrize(("name", "prod", "problem"), BAD, ids=[b[0] for b in BAD])
def test_a_bad_canary_exits_4_naming_its_key_path(name: str, prod: str, problem: str) -> None:
    problems = _problems(_config(prod=prod))
    assert any(p.startswith(problem) for p in problems), problems


def test_a_target_strategy_is_checked_too() -> None:
    text = _config(prod="").replace(
        '[apps.web.targets.prod]\nadapter = "local"\n',
        '[apps.web.targets.prod]\nadapter = "local"\nstrategy = "canary"\n',
    )
    assert _problems(text) == [
        "apps.web.targets.prod.strategy: strategy 'canary' needs steps: add "
        "[apps.web.targets.prod.canary] or [environments.prod.canary]"
    ]


# --- the digest --------------------------------------------------------------------------------


def _digest(cfg: WorkspaceConfig) -> str:
    body = PlanBody("prod", "plan", (PlanItem("web", "1.0.0", 1, "d" * 64, "c" * 40, "a"),),
                    (("web",),))  # fmt: skip
    canaries = {a: s for a in body.apps if (s := cfg.canary(a, "prod")) is not None}
    return plan_digest(cfg.environments["prod"], body, canaries=canaries)


def test_the_digest_covers_the_canary_only_where_there_is_one() -> None:
    blue_green = _parse(_config(prod=""))
    assert _digest(blue_green) == plan_digest(
        blue_green.environments["prod"],
        PlanBody("prod", "plan", (PlanItem("web", "1.0.0", 1, "d" * 64, "c" * 40, "a"),),
                 (("web",),)),
    )  # fmt: skip
    canary = _digest(_parse(_config()))
    assert canary != _digest(blue_green)
    looser = _config().replace('success = "error_rate < 0.01"', 'success = "error_rate < 0.5"')
    assert _digest(_parse(looser)) != canary
    shorter = _config().replace('{ pause = "5m" }', '{ pause = "1m" }')
    assert _digest(_parse(shorter)) != canary


@pytest.mark.parametrize("weight", [None, '["./weigh.sh", "{color}", "{weight}"]'])
def test_config_check_refuses_a_canary_on_a_target_that_cannot_split_traffic(
    tmp_path: Path, weight: str | None
) -> None:
    command = (
        'adapter = "command"\nstage = ["true"]\nhealth = ["true"]\nswitch = ["true"]\n'
        'live_color = ["true"]\n' + (f"weight = {weight}\n" if weight else "")
    )
    text = re.sub(
        r'\[apps\.web\.targets\.prod\]\nadapter = "local"\nport = \d+\n',
        f"[apps.web.targets.prod]\n{command}",
        _config(),
    )
    (tmp_path / "shipdeck.toml").write_text(text, encoding="utf-8")

    ran = shipdeck("--workspace", str(tmp_path), "config", "check")

    if weight is not None:  # a weight command is what lets a command target split
        assert ran.code == 0, ran.err_lines
        return
    assert ran.code == 4
    file = tmp_path / "shipdeck.toml"
    # The local targets of the other two apps split traffic (their front proxy weighs it).
    assert ran.err_lines == [
        f"{file}: apps.web.targets.prod: the 'command' target adapter cannot split traffic as "
        "configured (the `weight` key is not set: an argv list with {weight}), so strategy "
        "'canary' cannot run there"
    ]
