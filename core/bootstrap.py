"""The composition root: the one place that wires adapters to core's ports.

Adapters are imported inside the factories, only when a command needs them, so `shipdeck --help`
and `shipdeck status -o json` never pay for boto3 (~200 ms) or huggingface_hub.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from shipdeck.core.domain.config import AdapterConfig, WorkspaceConfig
from shipdeck.core.domain.secrets import environment_secrets
from shipdeck.core.errors import AdapterError, UsageError
from shipdeck.core.ports import (
    ArtifactSource,
    CheckpointStore,
    Clock,
    Color,
    CountsTraffic,
    LiveColorReader,
    LogSource,
    MachineProcesses,
    MetricQueries,
    MetricsSource,
    Notifier,
    Target,
    TargetFactory,
    TokenLimitStore,
)
from shipdeck.core.services.context import Context, SystemClock, resolve_actor
from shipdeck.core.storage.db import Database
from shipdeck.core.workspace import Workspace, open_workspace


def _resolve_path(workspace: Path, value: str) -> Path:
    path = Path(value)
    return path if path.is_absolute() else workspace / path


_TARGETS = (".shipdeck", "targets")


def target_state_dir(workspace: Path, app: str, env: str) -> Path:
    """Where a target keeps what it knows (switch, processes, fencing) in the workspace."""
    return workspace.joinpath(*_TARGETS, app, env)


def make_target_factory(workspace: Path) -> Callable[[str, str, str, Mapping[str, Any]], Target]:
    def factory(app: str, env: str, adapter: str, settings: Mapping[str, Any]) -> Target:
        state_dir = target_state_dir(workspace, app, env)
        if adapter == "local":
            from shipdeck.adapters.local.target import LocalTarget

            return LocalTarget(app, env, settings, state_dir)
        if adapter == "command":
            from shipdeck.adapters.command import CommandTarget

            return CommandTarget(app, env, settings, state_dir)
        if adapter == "nginx":
            from shipdeck.adapters.nginx import NginxTarget

            paths = {
                k: str(_resolve_path(workspace, v))
                for k, v in settings.items()
                if k in ("include_file", "nginx_conf", "pid_file", "access_log")
            }
            return NginxTarget(app, env, {**settings, **paths}, state_dir)
        if adapter == "aws-elb":
            from shipdeck.adapters.aws_elb import ElbTarget

            return ElbTarget(app, env, settings)
        raise UsageError(f"target {app}/{env}: unknown adapter '{adapter}'")

    return factory


def make_live_color_reader(workspace: Path, targets: TargetFactory) -> LiveColorReader:
    """A local target's color straight from its state file; other adapters through their target."""

    # A string, not a Path per cell: building paths was a third of a warm status at a thousand
    # apps (bench/status_json.py); os.path.join names the same folder as target_state_dir.
    targets_root = os.path.join(workspace, *_TARGETS)

    def live_color(app: str, env: str, adapter: str, settings: Mapping[str, Any]) -> Color | None:
        if adapter == "local":
            from shipdeck.adapters.local.backend import live_color_in

            state_dir = os.path.join(targets_root, app, env)
            return live_color_in(state_dir, f"local target {app}/{env}")
        target = targets(app, env, adapter, settings)
        try:
            return target.live_color()
        finally:
            target.close()

    return live_color


def machine_targets(workspace: Workspace) -> list[tuple[str, str, MachineProcesses]]:
    """(app, env, target) for every `local` target that has state in this workspace, i.e. may
    have started processes on this machine."""
    from shipdeck.adapters.local.target import LocalTarget

    found: list[tuple[str, str, MachineProcesses]] = []
    for app, spec in workspace.config.apps.items():
        for env, t in spec.targets.items():
            state = target_state_dir(workspace.root, app, env)
            if t.adapter == "local" and state.is_dir():
                found.append((app, env, LocalTarget(app, env, t.settings, state)))
    return found


# Adapters whose targets count their own traffic (ports.CountsTraffic).
COUNTING_ADAPTERS = ("local", "nginx")


class TargetMetrics:
    """The canary analysis' MetricsSource: the traffic a target counts itself (a `local`
    target's front proxy, an `nginx` target's access log). Other adapters count none, so an
    analysis there fails its step naming why."""

    def __init__(self, workspace: Path, config: WorkspaceConfig) -> None:
        self.workspace = workspace
        self.config = config
        self.targets = make_target_factory(workspace)

    def sample(self, app: str, env: str, color: Color, window: float) -> dict[str, float]:
        spec = self.config.apps.get(app)
        target = spec.targets.get(env) if spec else None
        if target is None or target.adapter not in COUNTING_ADAPTERS:
            adapter = target.adapter if target else "no"
            raise AdapterError(
                f"{app}/{env}: the '{adapter}' target has no metrics for a canary's analysis "
                f"(only {' and '.join(map(repr, COUNTING_ADAPTERS))} targets count their own "
                "traffic so far)"
            )
        built = self.targets(app, env, target.adapter, target.settings)
        try:
            assert isinstance(built, CountsTraffic)
            return built.metrics(color, window)
        finally:
            built.close()


def make_metrics(config: WorkspaceConfig, workspace: Path) -> MetricsSource | None:
    """TargetMetrics when any app has a target that counts its traffic, else none (an analysis
    then says so)."""
    counting = any(
        t.adapter in COUNTING_ADAPTERS for a in config.apps.values() for t in a.targets.values()
    )
    return TargetMetrics(workspace, config) if counting else None


def make_queries(config: WorkspaceConfig) -> MetricQueries | None:
    """The Prometheus client when some canary analysis names a query, else none (and no import:
    `status` never pays for it)."""
    specs = [e.canary for e in config.environments.values()]
    specs += [t.canary for a in config.apps.values() for t in a.targets.values()]
    if not any(m.prometheus for spec in specs if spec for m in spec.metrics):
        return None
    from shipdeck.adapters.prometheus import PrometheusQueries

    return PrometheusQueries()


def make_checkpoint_store(location: str) -> CheckpointStore:
    if location.startswith("s3://"):
        from shipdeck.adapters.s3_checkpoints import S3Checkpoints

        return S3Checkpoints(location)
    from shipdeck.adapters.checkpoint_file import FileCheckpoints

    return FileCheckpoints(location)


def make_sources(
    config: WorkspaceConfig, workspace: Path
) -> Callable[[str], ArtifactSource | None]:
    """Artifact sources by [sources] name or by URI scheme, built on first use and kept.
    Relative file:// paths are read from the workspace folder."""
    cache: dict[str, ArtifactSource | None] = {}

    def get(key: str) -> ArtifactSource | None:
        if key not in cache:
            named = config.sources.get(key) or next(
                (s for s in config.sources.values() if s.kind == key), None
            )
            kind = named.kind if named else key
            settings = named.settings if named else {}
            source: ArtifactSource | None = None
            if kind == "hf":
                from shipdeck.adapters.huggingface import HuggingFaceSource

                source = HuggingFaceSource.from_settings(settings)
            elif kind == "s3":
                from shipdeck.adapters.s3 import S3Source

                source = S3Source.from_settings(settings)
            elif kind == "file":
                from shipdeck.adapters.file_source import FileSource

                source = FileSource(workspace)
            cache[key] = source
        return cache[key]

    return get


def make_log_sources(workspace: Path, config: WorkspaceConfig) -> Callable[[str, str], LogSource]:
    def get(app: str, env: str) -> LogSource:
        target = config.apps[app].targets.get(env)
        if target is None:
            raise UsageError(f"{app}/{env}: no target configured, so no logs")
        logs: AdapterConfig | None = target.logs
        if logs is None:
            if target.adapter in ("local", "nginx"):
                from shipdeck.adapters.logs import FileLogSource

                live = make_target_factory(workspace)(app, env, target.adapter, target.settings)
                color = live.live_color()
                if color is None:
                    raise UsageError(f"{app}/{env}: nothing is live yet, so no logs")
                log = live.log_path(color)  # type: ignore[attr-defined]
                return FileLogSource(log, workspace=workspace)
            raise UsageError(f"{app}/{env}: no [apps.{app}.targets.{env}.logs] configured")
        s = logs.settings
        if logs.adapter == "file":
            from shipdeck.adapters.logs import FileLogSource

            return FileLogSource(_resolve_path(workspace, s["path"]), workspace=workspace)
        if logs.adapter == "command":
            from shipdeck.adapters.logs import CommandLogSource

            return CommandLogSource(
                s["argv"], {"app": app, "env": env}, label=f"command log {app}/{env}"
            )
        from shipdeck.adapters.logs import CloudWatchLogSource

        return CloudWatchLogSource(
            s["group"], s.get("stream"), s.get("region"), s.get("endpoint_url"), s.get("profile")
        )

    return get


def make_token_limits(
    workspace: Path, config: WorkspaceConfig
) -> Callable[[str, str], TokenLimitStore]:
    def get(app: str, env: str) -> TokenLimitStore:
        target = config.apps[app].targets.get(env)
        limits = target.token_limits if target else None
        if limits is None:
            raise UsageError(f"{app}/{env}: no [apps.{app}.targets.{env}.token_limits] configured")
        s = limits.settings
        if limits.adapter == "litellm-file":
            from shipdeck.adapters.token_limits import LiteLLMFileLimits

            return LiteLLMFileLimits(
                _resolve_path(workspace, s["path"]), s["model"], s.get("reload")
            )
        from shipdeck.adapters.token_limits import HttpGatewayLimits

        return HttpGatewayLimits(s["url"], s["model"], s["token_env"])

    return get


def make_notifiers(
    config: WorkspaceConfig,
) -> Callable[[], list[tuple[str, Notifier, tuple[str, ...]]]]:
    def get() -> list[tuple[str, Notifier, tuple[str, ...]]]:
        if not config.notifications:
            return []
        from shipdeck.adapters.webhook import WebhookNotifier

        return [
            (
                n.name,
                WebhookNotifier(
                    n.url,
                    n.format,
                    # Header name -> the NAME of its variable: the adapter reads the value at
                    # send time, and names a missing variable without ever holding its value.
                    headers=dict(n.headers_env),
                ),
                n.events,
            )
            for n in config.notifications.values()
        ]

    return get


def build_context(
    workspace: Workspace,
    *,
    database_url: str | None = None,
    clock: Clock | None = None,
    read_only: bool = False,
    check_schema: bool = True,
) -> Context:
    from shipdeck.adapters.commands import ProcessRunner
    from shipdeck.adapters.git_repo import GitRepositories
    from shipdeck.adapters.picklescan_scanner import PickleScanner

    db = Database(database_url or workspace.database_url())
    if check_schema:
        db.check_schema()
    cfg = workspace.config
    targets = make_target_factory(workspace.root)
    session_user = db.session_user() if cfg.identity.source == "database" else None
    return Context(
        workspace=workspace.root,
        config=cfg,
        db=db,
        actor=resolve_actor(cfg, session_user=session_user),
        git=GitRepositories(),
        targets=targets,
        live_colors=make_live_color_reader(workspace.root, targets),
        checkpoints=make_checkpoint_store,
        commands=ProcessRunner(),
        clock=clock or SystemClock(),
        read_only=read_only,
        scanner=PickleScanner(),
        **configured_ports(cfg, workspace.root),
    )


def configured_ports(config: WorkspaceConfig, root: Path) -> dict[str, Any]:
    """The Context fields built from shipdeck.toml's settings (rebuilt when it changes)."""
    return {
        "sources": make_sources(config, root),
        "log_sources": make_log_sources(root, config),
        "token_limits": make_token_limits(root, config),
        "notifiers": make_notifiers(config),
        "metrics": make_metrics(config, root),
        "queries": make_queries(config),
        "secrets": environment_secrets(os.environ, config.secret_env_names()),
    }


def open_context(path: str | Path | None = None, **kwargs: Any) -> Context:
    return build_context(open_workspace(path), **kwargs)


def reconfigure(ctx: Context, config: WorkspaceConfig) -> Context:
    """The same session under a changed shipdeck.toml (an open TUI re-reads it): ports that take
    settings from it are rebuilt, and the same person's roles and permissions are read again.
    The name stays: who is acting does not change because the policy file did."""
    name = ctx.actor.name
    actor = replace(
        ctx.actor, roles=tuple(config.roles_of(name)), permissions=config.permissions_of(name)
    )
    return replace(ctx, config=config, actor=actor, **configured_ports(config, ctx.workspace))
