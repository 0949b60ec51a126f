"""The composition root: the one place that wires adapters to core's ports.

Adapters are imported inside the factories, only when a command needs them, so `shipdeck --help`
and `shipdeck status -o json` never pay for boto3 or huggingface_hub.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from core.domain.config import WorkspaceConfig
from core.errors import UsageError
from core.ports import ArtifactSource, CheckpointStore, Clock, Target
from core.services.context import Context, SystemClock, resolve_actor
from core.storage.db import Database
from core.workspace import Workspace, open_workspace


def make_target_factory(workspace: Path) -> Any:
    def factory(app: str, env: str, adapter: str, settings: Mapping[str, Any]) -> Target:
        state_dir = workspace / ".shipdeck" / "targets" / app / env
        if adapter == "local":
            from adapters.local.target import LocalTarget

            return LocalTarget(app, env, settings, state_dir)
        raise UsageError(f"target adapter '{adapter}' for {app}/{env} is not available")

    return factory


def make_checkpoint_store(location: str) -> CheckpointStore:
    from adapters.checkpoint_file import FileCheckpoints

    return FileCheckpoints(location)


def make_sources(config: WorkspaceConfig) -> dict[str, ArtifactSource]:
    return {}


def build_context(
    workspace: Workspace,
    *,
    database_url: str | None = None,
    clock: Clock | None = None,
    read_only: bool = False,
    check_schema: bool = True,
) -> Context:
    from adapters.git_repo import GitRepositories

    db = Database(database_url or workspace.database_url())
    if check_schema:
        db.check_schema()
    return Context(
        workspace=workspace.root,
        config=workspace.config,
        db=db,
        actor=resolve_actor(workspace.config),
        git=GitRepositories(),
        targets=make_target_factory(workspace.root),
        checkpoints=make_checkpoint_store,
        sources=make_sources(workspace.config),
        clock=clock or SystemClock(),
        read_only=read_only,
    )


def open_context(path: str | Path | None = None, **kwargs: Any) -> Context:
    return build_context(open_workspace(path), **kwargs)
