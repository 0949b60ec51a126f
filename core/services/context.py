"""Who is acting, on which workspace, with which ports: what every service call receives.

Built once by core.bootstrap; the TUI and the CLI both hold one and pass it to service functions.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipdeck.core.domain.config import WorkspaceConfig, name_problem
from shipdeck.core.errors import ConfigError, PermissionDenied, ShipdeckError
from shipdeck.core.kernel import os_user
from shipdeck.core.ports import (
    ArtifactSource,
    CheckpointStore,
    Clock,
    CommandRunner,
    GitPort,
    LiveColorReader,
    LogSource,
    MetricQueries,
    MetricsSource,
    Notifier,
    ProcessIdentity,
    RunLauncher,
    TargetFactory,
    TokenLimitStore,
    WeightScanner,
)
from shipdeck.core.storage.db import Database, Tx
from shipdeck.core.system.launcher import DetachedLauncher
from shipdeck.core.system.processes import ProcProcesses

if TYPE_CHECKING:
    from shipdeck.core.storage.audit import NewEvent, Who
    from shipdeck.core.storage.binding import Bind


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

    @cached_property
    def who(self) -> Who:
        """Made once per actor: every audited change names it."""
        from shipdeck.core.storage.audit import Who

        return Who(self.name, self.os_user, self.ssh_client)


def resolve_actor(
    config: WorkspaceConfig,
    environ: Mapping[str, str] | None = None,
    *,
    session_user: str | None = None,
) -> Actor:
    """Who acts: the kernel's user, PostgreSQL's session_user where [identity] source =
    "database", or the SHIPDECK_ACTOR a trusted delegator names. A SHIPDECK_ACTOR that the
    workspace does not honour is refused (exit 4), never silently dropped: a CI job that thinks
    it acts for carol must not quietly act as itself.

    SSH_CLIENT is recorded as the session reports it; anyone can set it, so it decides nothing."""
    env = os.environ if environ is None else environ
    os_name = os_user()
    ident = config.identity
    claimed = env.get("SHIPDECK_ACTOR", "")
    name = os_name
    if ident.source == "database":
        if session_user is None:
            raise ConfigError(
                '[identity] source = "database" needs PostgreSQL (set [workspace] database)'
            )
        if claimed:
            raise PermissionDenied(
                f"not permitted: SHIPDECK_ACTOR={claimed}: this workspace takes identity from the "
                f'database ([identity] source = "database"), so you act as {session_user}; '
                "unset SHIPDECK_ACTOR"
            )
        name = session_user
    elif claimed or (ident.default_actor and ident.may_delegate(os_name)):
        if not ident.allow_env_actor:
            raise PermissionDenied(
                f"not permitted: SHIPDECK_ACTOR={claimed}: this workspace allows no delegation "
                f"([identity] allow_env_actor = false); unset SHIPDECK_ACTOR to act as {os_name}"
            )
        if not ident.may_delegate(os_name):
            raise PermissionDenied(
                f"not permitted: SHIPDECK_ACTOR={claimed}: OS user {os_name} is not a delegator "
                f"([identity] delegators); unset SHIPDECK_ACTOR to act as {os_name}"
            )
        name = claimed or ident.default_actor or os_name
        if (problem := name_problem(name)) is not None:
            raise ConfigError(f"SHIPDECK_ACTOR: {problem}")
    ssh = env.get("SSH_CLIENT", "").split(" ")[0] or None
    return Actor(
        name=name,
        os_user=os_name,
        ssh_client=ssh,
        roles=tuple(config.roles_of(name)),
        permissions=config.permissions_of(name),
    )


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
    commands: CommandRunner  # checklist commands and eval gates
    clock: Clock = field(default_factory=SystemClock)
    # The machine's processes: real ones by default (core.system), fakes in the engine's tests.
    launcher: RunLauncher = field(default_factory=DetachedLauncher)
    processes: ProcessIdentity = field(default_factory=ProcProcesses)
    secrets: tuple[str, ...] = ()  # credential values to mask wherever text leaves the core
    scanner: WeightScanner | None = None  # pickle-based weights at release time
    metrics: MetricsSource | None = None  # what a canary's analysis reads (bootstrap.make_metrics)
    queries: MetricQueries | None = None  # its metrics that name a Prometheus query
    read_only: bool = False

    def now(self) -> datetime:
        return self.clock.now()

    @property
    def database_label(self) -> str:
        """Which state this is, short and password-free: a SQLite file relative to the
        workspace when it lives there, a PostgreSQL URL without its password or options."""
        if self.db.path is not None:
            try:
                return f"sqlite {self.db.path.resolve().relative_to(self.workspace.resolve())}"
            except ValueError:
                return f"sqlite {self.db.path}"
        if self.db.is_sqlite:
            return "sqlite (in memory)"
        url = self.db.display_url.split("?", 1)[0]
        return url.replace("postgresql+psycopg://", "postgresql://")

    def close(self) -> None:
        """Let go of the database connections (a front end that is done with this context)."""
        self.db.dispose()

    @property
    def state_dir(self) -> Path:
        return self.workspace / ".shipdeck"

    def audit(
        self,
        conn: Tx,
        kind: str,
        payload: Mapping[str, Any] | None = None,
        *,
        app: str | None = None,
        env: str | None = None,
        plan: str | None = None,
        binds: Sequence[Bind] = (),
    ) -> int:
        """Append `kind`; `binds` are the state rows (table, key) this event vouches for.

        The chain's writer is imported by the first change, not with the context: a process that
        only reads (status, the TUI's first frame) never needs it (bench/tui_start.py)."""
        from shipdeck.core.storage import audit

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

    def audit_all(self, conn: Tx, events: Sequence[NewEvent]) -> list[int]:
        """Append `events` in order, under one lock of the chain's head; their sequences."""
        from shipdeck.core.storage import audit

        return audit.append_all(conn, self.actor.who, events, at=self.now(), secrets=self.secrets)

    @contextmanager
    def change(
        self,
        kind: str,
        payload: Mapping[str, Any] | None = None,
        *,
        app: str | None = None,
        env: str | None = None,
        plan: str | None = None,
    ) -> Iterator[tuple[Tx, dict[str, Any]]]:
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

    def refusal(self, permission: str | tuple[str, ...], roles: tuple[str, ...] = ()) -> str | None:
        """Why this context's actor may not do this (None: they may), by the module's one rule:
        `require` audits and raises it; the allowed-actions function shows it before anyone tries."""
        return refusal(self.actor, self.read_only, permission, roles)

    def require(
        self,
        permission: str | tuple[str, ...],
        *,
        app: str | None = None,
        env: str | None = None,
        plan: str | None = None,
        roles: tuple[str, ...] = (),
    ) -> None:
        """Refuse (exit 4) unless the actor may do this (the rule is `refusal`); the refusal
        itself is audited. Every service that changes state calls this first
        (tests/integration/test_guarded_writes.py holds them to it)."""
        why = refusal(self.actor, self.read_only, permission, roles)
        if why is None:
            return
        first = permission if isinstance(permission, str) else permission[0]
        with self.db.write() as conn:
            self.audit(
                conn,
                "access.denied",
                {"permission": first, "reason": why},
                app=app,
                env=env,
                plan=plan,
            )
        raise PermissionDenied(f"not permitted: {why}")


def refusal(
    actor: Actor,
    read_only: bool,
    permission: str | tuple[str, ...],
    roles: tuple[str, ...] = (),
) -> str | None:
    """Why `actor` may not do this, or None: the one permission and read-only rule both front
    ends and every command go through. `permission` may name alternatives (any one suffices);
    `roles`, when given, narrows who may act to members of those roles (e.g. an environment's
    override_roles), on top of the permission."""
    wanted = (permission,) if isinstance(permission, str) else permission
    if read_only:
        return "this session is read-only"
    if not set(wanted) & actor.permissions:
        held = ", ".join(actor.roles) or "no role"
        return f"{actor.name} ({held}) lacks permission '{' or '.join(wanted)}'"
    if roles and not set(roles) & set(actor.roles):
        return f"{actor.name} is not in {' or '.join(roles)}"
    return None
