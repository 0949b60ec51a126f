"""`[apps.*]`: each app's repository, dependencies, artifacts, config values and per-environment
targets."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from shipdeck.core.domain.config.collector import Collector
from shipdeck.core.domain.config.model import (
    AdapterConfig,
    App,
    ArtifactConfig,
    Environment,
    Source,
    TargetConfig,
)
from shipdeck.core.domain.config.schemas import (
    LOG_ADAPTERS,
    TARGET_ADAPTERS,
    TOKEN_LIMIT_ADAPTERS,
    Schema,
    adapter_settings,
)
from shipdeck.core.domain.config.strategy import canary_of, parse_strategy
from shipdeck.core.domain.waves import find_cycle

_TARGET_TABLES = {"logs", "token_limits", "eval", "strategy", "canary"}
_KEYS = {"repo", "owner", "oncall", "depends_on", "artifacts", "config", "targets"}


def parse_apps(
    c: Collector,
    raw: dict[str, Any],
    envs: Mapping[str, Environment],
    sources: Mapping[str, Source],
) -> dict[str, App]:
    """Every app, then one dependency cycle if there is one (the first found, as a path)."""
    apps: dict[str, App] = {}
    for aname, araw in raw.items():
        apps[aname] = _parse_app(c, aname, araw, raw, envs, sources)
    cycle = find_cycle({n: [d for d in a.depends_on if d in apps] for n, a in apps.items()})
    if cycle:
        c.err(f"apps.{cycle[0]}.depends_on", "dependency cycle " + " -> ".join(cycle))
    return apps


def _parse_app(
    c: Collector,
    aname: str,
    raw: Any,
    names: Collection[str],
    envs: Mapping[str, Environment],
    sources: Mapping[str, Source],
) -> App:
    path = f"apps.{aname}"
    c.name(path, "app", aname)
    a = c.table(raw, path)
    c.keys(a, path, _KEYS)
    repo = c.get(a, path, "repo", str, "", required=True)
    deps = c.strings(a, path, "depends_on")
    for i, d in enumerate(deps):
        if d not in names:
            c.unknown(f"{path}.depends_on[{i}]", "app", d, list(names))
        elif d == aname:
            c.err(f"{path}.depends_on[{i}]", "an app cannot depend on itself")
    artifacts = _parse_artifacts(c, a, path, sources)
    config = c.table(a.get("config"), f"{path}.config")
    targets = _parse_targets(c, a, path, envs)
    return App(
        name=aname,
        repo=repo,
        owner=c.get(a, path, "owner", str, ""),
        oncall=c.get(a, path, "oncall", str, ""),
        depends_on=deps,
        artifacts=artifacts,
        config=config,
        targets=targets,
    )


def _parse_artifacts(
    c: Collector, a: Mapping[str, Any], path: str, sources: Mapping[str, Source]
) -> tuple[ArtifactConfig, ...]:
    """`name = "uri"` or `name = {uri, source, promote_to}`."""
    artifacts: list[ArtifactConfig] = []
    for art, art_raw in c.table(a.get("artifacts"), f"{path}.artifacts").items():
        apath = f"{path}.artifacts.{art}"
        if isinstance(art_raw, str):
            art_raw = {"uri": art_raw}
        t = c.table(art_raw, apath)
        c.keys(t, apath, {"uri", "source", "promote_to"})
        uri = c.get(t, apath, "uri", str, required=True)
        src = c.get(t, apath, "source", str)
        if src is not None and src not in sources:
            c.unknown(f"{apath}.source", "source", src, list(sources))
        if uri is not None and "://" not in uri:
            c.err(
                f"{apath}.uri",
                f"must be a URI like hf://org/model@rev, s3://bucket/key or file://dir, not '{uri}'",
            )
        artifacts.append(ArtifactConfig(art, uri or "", src, c.get(t, apath, "promote_to", str)))
    return tuple(artifacts)


def _parse_targets(
    c: Collector, a: Mapping[str, Any], path: str, envs: Mapping[str, Environment]
) -> dict[str, TargetConfig]:
    """One target adapter per environment, each with optional `logs`, `token_limits`, `eval`,
    `strategy` and `canary`."""
    targets: dict[str, TargetConfig] = {}
    for ename, traw in c.table(a.get("targets"), f"{path}.targets").items():
        tpath = f"{path}.targets.{ename}"
        if ename not in envs:
            c.unknown(tpath, "environment", ename, list(envs))
            continue
        t = c.table(traw, tpath)
        target = adapter_settings(c, t, tpath, TARGET_ADAPTERS, "target adapter", _TARGET_TABLES)
        logs = _nested(c, t, tpath, "logs", LOG_ADAPTERS, "log adapter")
        limits = _nested(c, t, tpath, "token_limits", TOKEN_LIMIT_ADAPTERS, "token limit adapter")
        gate = None
        if "eval" in t and target:
            # The evaluation model is imported only for a workspace that gates on one.
            from shipdeck.core.domain.config.evaluation import parse_eval

            gate = parse_eval(c, t["eval"], f"{tpath}.eval", target.adapter)
        strategy = parse_strategy(c, t, tpath)
        canary = canary_of(c, t, tpath)
        uses = strategy or envs[ename].strategy
        if uses == "canary" and canary is None and envs[ename].canary is None and "canary" not in t:
            origin = "" if strategy else f" (from environments.{ename})"
            c.err(
                f"{tpath}.strategy" if strategy else tpath,
                f"strategy 'canary'{origin} needs steps: add [{tpath}.canary] or "
                f"[environments.{ename}.canary]",
            )
        if target:
            targets[ename] = TargetConfig(
                target.adapter, target.settings, logs, limits, gate, strategy, canary
            )
    return targets


def _nested(
    c: Collector,
    t: Mapping[str, Any],
    tpath: str,
    key: str,
    schemas: Mapping[str, Schema],
    what: str,
) -> AdapterConfig | None:
    """A target's optional adapter sub-table (`logs`, `token_limits`)."""
    if key not in t:
        return None
    return adapter_settings(c, c.table(t[key], f"{tpath}.{key}"), f"{tpath}.{key}", schemas, what)
