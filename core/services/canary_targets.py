"""Which canaries the workspace's targets cannot carry out: the factory tells (a Target whose
weights() is None switches all traffic at once; one that counts its own traffic says what its
analysis lacks, e.g. nginx without access_log), so `config check` and `plan run` refuse them
with exit 4 before anything is staged."""

from __future__ import annotations

from collections.abc import Iterable

from shipdeck.core.domain.config import WorkspaceConfig
from shipdeck.core.errors import ConfigError
from shipdeck.core.ports import CountsTraffic, SplitUnconfigured, TargetFactory


def canary_problems(
    config: WorkspaceConfig, targets: TargetFactory, only: Iterable[tuple[str, str]] | None = None
) -> list[str]:
    """One `apps.A.targets.E: ...` line per canary (of the (app, env) pairs in `only`, else of
    the whole workspace) whose target cannot split traffic, or cannot measure its analysis."""
    pairs = only or [(a, e) for a, spec in config.apps.items() for e in spec.targets]
    problems = []
    for app, env in pairs:
        spec = config.canary(app, env)
        if spec is None:
            continue
        tcfg = config.apps[app].targets[env]
        target = targets(app, env, tcfg.adapter, tcfg.settings)
        # metrics that name a Prometheus query are not the target's to count
        counted = any(m.prometheus is None for m in spec.metrics)
        try:
            weighted = target.weights() is not None
            why = None
            if not weighted and isinstance(target, SplitUnconfigured):
                why = target.why_no_weights()
            counts = target if isinstance(target, CountsTraffic) else None
            unmeasured = counts.metrics_problem() if counts and counted else None
        finally:
            target.close()
        if not weighted:
            problems.append(
                f"apps.{app}.targets.{env}: the '{tcfg.adapter}' target adapter cannot split "
                + (f"traffic as configured ({why})" if why else "traffic")
                + ", so strategy 'canary' cannot run there"
            )
        elif unmeasured:
            problems.append(f"apps.{app}.targets.{env}.{unmeasured}")
    return problems


def check_canaries(
    config: WorkspaceConfig, targets: TargetFactory, only: Iterable[tuple[str, str]]
) -> None:
    """ConfigError (exit 4) naming the first canary its target cannot carry out."""
    problems = canary_problems(config, targets, only)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ConfigError(f"shipdeck.toml: {problems[0]}{more}")
