"""Which canaries the workspace's targets cannot carry out: the factory tells (a Target whose
weights() is None switches all traffic at once), so `config check` and `plan run` refuse them
with exit 4 before anything is staged."""

from __future__ import annotations

from collections.abc import Iterable

from shipdeck.core.domain.config import WorkspaceConfig
from shipdeck.core.errors import ConfigError
from shipdeck.core.ports import SplitUnconfigured, TargetFactory


def canary_problems(
    config: WorkspaceConfig, targets: TargetFactory, only: Iterable[tuple[str, str]] | None = None
) -> list[str]:
    """One `apps.A.targets.E: ...` line per canary (of the (app, env) pairs in `only`, else of
    the whole workspace) whose target cannot split traffic."""
    pairs = only or [(a, e) for a, spec in config.apps.items() for e in spec.targets]
    problems = []
    for app, env in pairs:
        if config.canary(app, env) is None:
            continue
        tcfg = config.apps[app].targets[env]
        target = targets(app, env, tcfg.adapter, tcfg.settings)
        try:
            if target.weights() is not None:
                continue
            why = target.why_no_weights() if isinstance(target, SplitUnconfigured) else None
        finally:
            target.close()
        problems.append(
            f"apps.{app}.targets.{env}: the '{tcfg.adapter}' target adapter cannot split "
            + (f"traffic as configured ({why})" if why else "traffic")
            + ", so strategy 'canary' cannot run there"
        )
    return problems


def check_canaries(
    config: WorkspaceConfig, targets: TargetFactory, only: Iterable[tuple[str, str]]
) -> None:
    """ConfigError (exit 4) naming the first canary its target cannot carry out."""
    problems = canary_problems(config, targets, only)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ConfigError(f"shipdeck.toml: {problems[0]}{more}")
