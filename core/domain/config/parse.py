"""parse_config: parsed TOML in, a validated WorkspaceConfig out, or one ConfigError listing every
problem. Each top-level table has its own parser module; this one reads the small tables and runs
the others in the order their references need (roles and windows before environments, those and
sources before apps)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shipdeck.core.domain.config.apps import parse_apps
from shipdeck.core.domain.config.collector import Collector
from shipdeck.core.domain.config.environments import parse_environments
from shipdeck.core.domain.config.identity import parse_identity, parse_roles
from shipdeck.core.domain.config.model import WorkspaceConfig
from shipdeck.core.domain.config.notifications import parse_notifications
from shipdeck.core.domain.config.sources import parse_sources
from shipdeck.core.domain.config.windows import parse_freezes, parse_windows
from shipdeck.core.domain.config_values import value_problems
from shipdeck.core.domain.versions import DEFAULT_SCHEME, SCHEMES, VersionScheme
from shipdeck.core.errors import ConfigError, first_of

_TOP = {
    "workspace",
    "identity",
    "roles",
    "environments",
    "windows",
    "freezes",
    "apps",
    "sources",
    "notifications",
    "releases",
}


def parse_config(raw: Mapping[str, Any], filename: str = "shipdeck.toml") -> WorkspaceConfig:
    """Turn parsed TOML into a WorkspaceConfig, or raise ConfigError listing every problem."""
    c = Collector(filename)
    for path, problem in value_problems(raw):
        c.err(path, problem)
    c.keys(raw, "", _TOP)
    name, database, scan_limit_mib = _parse_workspace(c, c.table(raw.get("workspace"), "workspace"))
    identity = parse_identity(c, c.table(raw.get("identity"), "identity"))
    versions = _parse_releases(c, c.table(raw.get("releases"), "releases"))
    roles = parse_roles(c, c.table(raw.get("roles"), "roles"))
    windows = parse_windows(c, c.table(raw.get("windows"), "windows"))
    freezes = parse_freezes(c, c.table(raw.get("freezes"), "freezes"))
    envs = parse_environments(
        c, c.table(raw.get("environments"), "environments"), roles, windows, freezes
    )
    sources = parse_sources(c, c.table(raw.get("sources"), "sources"))
    apps = parse_apps(c, c.table(raw.get("apps"), "apps"), envs, sources)
    notifications = parse_notifications(c, c.table(raw.get("notifications"), "notifications"))
    _raise_collected(c)
    return WorkspaceConfig(
        name=name,
        database=database,
        identity=identity,
        roles=roles,
        environments=envs,
        windows=windows,
        freezes=freezes,
        apps=apps,
        sources=sources,
        notifications=notifications,
        model_scan_limit=max(scan_limit_mib, 1) << 20,
        versions=versions,
    )


def _parse_workspace(c: Collector, ws: Mapping[str, Any]) -> tuple[str, str | None, int]:
    """`[workspace]`: name, database URL, model scan limit (MiB)."""
    c.keys(ws, "workspace", {"name", "database", "model_scan_limit_mib"})
    name = c.get(ws, "workspace", "name", str, "shipdeck")
    database = c.get(ws, "workspace", "database", str)
    scan_limit = c.get(ws, "workspace", "model_scan_limit_mib", int, 2048)
    if scan_limit <= 0:
        c.err("workspace.model_scan_limit_mib", f"must be 1 or more, not {scan_limit}")
    return name, database, scan_limit


def _parse_releases(c: Collector, rel: Mapping[str, Any]) -> VersionScheme:
    """`[releases] versions`: which strings count as versions."""
    c.keys(rel, "releases", {"versions"})
    versions = c.get(rel, "releases", "versions", str, DEFAULT_SCHEME)
    if versions not in SCHEMES:
        c.err("releases.versions", f"must be one of {', '.join(SCHEMES)}, not '{versions}'")
        return DEFAULT_SCHEME
    return versions


def _raise_collected(c: Collector) -> None:
    """The first problem is the message (with how many more); all of them ride along for
    `config check`."""
    if not c.errors:
        return
    err = ConfigError(first_of(c.errors))
    err.all_errors = c.errors  # type: ignore[attr-defined]
    raise err
