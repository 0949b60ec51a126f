"""Who is acting, on which workspace, with which ports: what every service call receives.

Built once by core.bootstrap; the TUI and the CLI both hold one and pass it to service functions.
"""

from __future__ import annotations

import getpass
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Table

from shipdeck.core.domain.config import WorkspaceConfig, name_problem
from shipdeck.core.errors import ConfigError, PermissionDenied, ShipdeckError
from shipdeck.core.ports import (
    ArtifactSource,
    CheckpointStore,
    Clock,
    GitPort,
    LiveColorReader,
    LogSource,
    Notifier,
    TargetFactory,
    TokenLimitStore,
)
from shipdeck.core.storage import audit
from shipdeck.core.storage.db import Database


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


@dataclass(frozen=True)
class Actor:
    """The person (or service account) acting, and the OS facts recorded beside the name."""

    name: str
    os_user: str
    ssh_client: str | None
    roles: tuple[str, ...]
    permissions: frozenset[str]

    @property
    def who(self) -> audit.Who:
        return audit.Who(self.name, self.os_user, self.ssh_client)


def resolve_actor(config: WorkspaceConfig, environ: Mapping[str, str] | None = None) -> Actor:
    """The OS login user; SHIPDECK_ACTOR only where the workspace allows it (CI, tests)."""
    env = os.environ if environ is None else environ
    os_user = env.get("USER") or env.get("LOGNAME") or _login_name()
    name = os_user
    if config.allow_env_actor and env.get("SHIPDECK_ACTOR"):
        name = env["SHIPDECK_ACTOR"]
        if (problem := name_problem(name)) is not None:
            raise ConfigError(f"SHIPDECK_ACTOR: {problem}")
    ssh = env.get("SSH_CLIENT", "").split(" ")[0] or None
    return Actor(
        name=name,
        os_user=os_user,
        ssh_client=ssh,
        roles=tuple(config.roles_of(name)),
        permissions=config.permissions_of(name),
    )


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid-{os.getuid()}"


@dataclass
class Context:
    workspace: Path
    config: WorkspaceConfig
    db: Database
    actor: Actor
    git: GitPort
    targets: TargetFactory
    live_colors: LiveColorReader
    checkpoints: Callable[[str], CheckpointStore]
    sources: Callable[[str], ArtifactSource | None]
    log_sources: Callable[[str, str], LogSource]
    token_limits: Callable[[str, str], TokenLimitStore]
    notifiers: Callable[[], list[tuple[str, Notifier, tuple[str, ...]]]]
    clock: Clock = field(default_factory=SystemClock)
    secrets: tuple[str, ...] = ()  # credential values to mask wherever text leaves the core
    read_only: bool = False

    def now(self) -> datetime:
        return self.clock.now()

    @property
    def state_dir(self) -> Path:
        return self.workspace / ".shipdeck"

    def audit(
        self,
        conn: Connection,
        kind: str,
        payload: Mapping[str, Any] | None = None,
        *,
        app: str | None = None,
        env: str | None = None,
        plan: str | None = None,
        binds: Sequence[tuple[Table, Mapping[str, Any]]] = (),
    ) -> int:
        """Append `kind`; `binds` are the state rows (table, key) this event vouches for."""
        return audit.append(
            conn,
            self.actor.who,
            kind,
            payload or {},
            at=self.now(),
            app=app,
            env=env,
            plan=plan,
            secrets=self.secrets,
            binds=binds,
        )

    @contextmanager
    def change(
        self,
        kind: str,
        payload: Mapping[str, Any] | None = None,
        *,
        app: str | None = None,
        env: str | None = None,
        plan: str | None = None,
    ) -> Iterator[tuple[Connection, dict[str, Any]]]:
        """A write transaction whose audit event is appended in it, after the caller's changes.

        The caller may add to the yielded payload dict (e.g. ids it created) before it is written.
        """
        body = dict(payload or {})
        with self.db.write() as conn:
            yield conn, body
            self.audit(conn, kind, body, app=app, env=env, plan=plan)

    @contextmanager
    def effect(
        self,
        kind: str,
        payload: Mapping[str, Any] | None = None,
        *,
        app: str | None = None,
        env: str | None = None,
        plan: str | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Bracket an effect outside the database with its intent and its outcome.

        The intent (`KIND.intent`) commits in its own transaction before the body runs: if it
        cannot be recorded, the storage error propagates and the effect is never attempted. The
        body fills the yielded dict with what happened; it becomes the outcome event `KIND` (or
        `KIND.failed` with the error), which names the intent by `intent_seq`. An outcome that
        cannot be written leaves the intent open, and `audit verify` and `reconcile` report it.
        """
        params = dict(payload or {})
        with self.db.write() as conn:
            seq = self.audit(conn, f"{kind}.intent", params, app=app, env=env, plan=plan)
        outcome: dict[str, Any] = {}
        try:
            yield outcome
        except BaseException as exc:
            failure = {**params, **outcome, "error": str(exc)[:300], "intent_seq": seq}
            try:
                with self.db.write() as conn:
                    self.audit(conn, f"{kind}.failed", failure, app=app, env=env, plan=plan)
            except ShipdeckError:
                pass  # the original error matters more; the open intent tells the rest
            raise
        with self.db.write() as conn:
            self.audit(conn, kind, {**outcome, "intent_seq": seq}, app=app, env=env, plan=plan)

    def require(
        self,
        permission: str,
        *,
        app: str | None = None,
        env: str | None = None,
        plan: str | None = None,
        roles: tuple[str, ...] = (),
    ) -> None:
        """Refuse (exit 4) unless the actor may do this; the refusal itself is audited.

        `roles`, when given, narrows who may act to members of those roles (e.g. an environment's
        override_roles), on top of the permission.
        """
        why: str | None = None
        if self.read_only:
            why = "this session is read-only"
        elif permission not in self.actor.permissions:
            held = ", ".join(self.actor.roles) or "no role"
            why = f"{self.actor.name} ({held}) lacks permission '{permission}'"
        elif roles and not set(roles) & set(self.actor.roles):
            why = f"{self.actor.name} is not in {' or '.join(roles)}"
        if why is None:
            return
        with self.db.write() as conn:
            self.audit(
                conn,
                "access.denied",
                {"permission": permission, "reason": why},
                app=app,
                env=env,
                plan=plan,
            )
        raise PermissionDenied(f"not permitted: {why}")
