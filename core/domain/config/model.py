"""The workspace policy as typed data: what every service and front end reads once
shipdeck.toml has been validated (parse.py builds it)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from shipdeck.core.domain.model_gates import ModelPolicy
from shipdeck.core.domain.versions import DEFAULT_SCHEME, VersionScheme
from shipdeck.core.domain.windows import FreezeSpec, WindowSpec

if TYPE_CHECKING:  # a workspace without canaries or eval gates never loads either model
    from shipdeck.core.domain.canary import CanarySpec
    from shipdeck.core.domain.evaluation import EvalGate

PERMISSIONS = (
    "release.create",
    "plan.create",
    "plan.check",
    "plan.approve",
    "plan.run",
    "plan.abort",
    "deploy",
    "rollback",
    "override",
    "reconcile",
    "task.logs",
    "task.restart",
    "task.token-limit",
    "audit.checkpoint",
    "workspace.admin",
)


@dataclass(frozen=True)
class Role:
    name: str
    users: tuple[str, ...]
    permissions: frozenset[str]


CHECK_TIMEOUT = 600.0  # seconds a checklist command may run when its item sets no `timeout`


@dataclass(frozen=True)
class ChecklistItem:
    id: str
    text: str
    command: tuple[str, ...] | None = None
    timeout: float | None = None  # seconds; None: CHECK_TIMEOUT

    @property
    def time_limit(self) -> float:
        return CHECK_TIMEOUT if self.timeout is None else self.timeout


@dataclass(frozen=True)
class ApprovalPolicy:
    required: int = 0
    roles: tuple[str, ...] = ()


@dataclass(frozen=True)
class Environment:
    name: str
    order: int
    approvals: ApprovalPolicy = ApprovalPolicy()
    checklist: tuple[ChecklistItem, ...] = ()
    windows: tuple[str, ...] = ()
    freezes: tuple[str, ...] = ()
    requires_previous: bool = False
    protected: bool = False
    override_roles: tuple[str, ...] = ()
    task_roles: tuple[str, ...] = ()
    failure_policy: Literal["rollback", "halt"] = "rollback"
    warm_seconds: float = 0.0
    models: ModelPolicy = field(default_factory=ModelPolicy)
    rollback_approvals: int = (
        0  # approvals a rollback needs here (default: none, it ends incidents)
    )
    strategy: Literal["blue-green", "canary"] = "blue-green"
    canary: CanarySpec | None = None  # [environments.E.canary]: the steps its canaries take


@dataclass(frozen=True)
class AdapterConfig:
    adapter: str
    settings: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TargetConfig:
    adapter: str
    settings: Mapping[str, Any]
    logs: AdapterConfig | None = None
    token_limits: AdapterConfig | None = None
    eval: EvalGate | None = None  # the gate the staged color passes before the switch
    strategy: Literal["blue-green", "canary"] | None = None  # None: the environment's
    canary: CanarySpec | None = None  # None: the environment's [canary] table


@dataclass(frozen=True)
class ArtifactConfig:
    name: str
    uri: str
    source: str | None = None
    promote_to: str | None = None


@dataclass(frozen=True)
class App:
    name: str
    repo: str
    owner: str = ""
    oncall: str = ""
    depends_on: tuple[str, ...] = ()
    artifacts: tuple[ArtifactConfig, ...] = ()
    config: Mapping[str, Any] = field(default_factory=dict)
    targets: Mapping[str, TargetConfig] = field(default_factory=dict)


@dataclass(frozen=True)
class Source:
    name: str
    kind: str
    settings: Mapping[str, Any]


@dataclass(frozen=True)
class Notification:
    name: str
    url: str
    format: Literal["json", "slack"] = "json"
    events: tuple[str, ...] = ()
    headers_env: Mapping[str, str] = field(default_factory=dict)


NOTIFY_EVENTS = (
    "plan.awaiting_approval",
    "run.started",
    "run.succeeded",
    "run.failed",
    "run.rolled_back",
    "override.used",
)


IDENTITY_SOURCES = ("os", "database")
ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")  # ${NAME} in [workspace] database


@dataclass(frozen=True)
class IdentityConfig:
    """Who the actor is: the kernel's user (source "os") or PostgreSQL's session_user
    ("database"). Delegation (SHIPDECK_ACTOR) is for the OS users named in `delegators` only."""

    allow_env_actor: bool = False
    delegators: tuple[str, ...] = ()
    default_actor: str | None = None
    source: Literal["os", "database"] = "os"

    def may_delegate(self, os_user: str) -> bool:
        return self.allow_env_actor and ("*" in self.delegators or os_user in self.delegators)


@dataclass(frozen=True)
class WorkspaceConfig:
    name: str
    database: str | None
    identity: IdentityConfig
    roles: Mapping[str, Role]
    environments: Mapping[str, Environment]
    windows: Mapping[str, WindowSpec]
    freezes: Mapping[str, FreezeSpec]
    apps: Mapping[str, App]
    sources: Mapping[str, Source] = field(default_factory=dict)
    notifications: Mapping[str, Notification] = field(default_factory=dict)
    model_scan_limit: int = 2048 << 20  # bytes; a pickle file above it is recorded unscanned
    versions: VersionScheme = DEFAULT_SCHEME  # [releases] versions: which strings are versions

    def env_order(self) -> list[str]:
        return sorted(self.environments, key=lambda e: self.environments[e].order)

    def previous_env(self, env: str) -> str | None:
        order = self.env_order()
        i = order.index(env)
        return order[i - 1] if i > 0 else None

    def eval_gate(self, app: str, env: str, kind: str = "plan") -> EvalGate | None:
        """The eval gate a plan of `kind` holds `app` to in `env`: the engine runs it and the
        plan's digest covers it. A rollback restores what was live before, so it has none."""
        spec = self.apps.get(app)
        target = spec.targets.get(env) if spec is not None else None
        return None if target is None or kind == "rollback" else target.eval

    def canary(self, app: str, env: str, kind: str = "plan") -> CanarySpec | None:
        """The canary `app` walks in `env` before its switch, None where it ships blue/green:
        the target's `strategy` (else the environment's) and its `[canary]` table (else the
        environment's). The engine walks it and the plan's digest covers it; a rollback
        restores what was live before in one switch, so it has none."""
        spec = self.apps.get(app)
        target = spec.targets.get(env) if spec is not None else None
        envcfg = self.environments.get(env)
        if target is None or envcfg is None or kind == "rollback":
            return None
        if (target.strategy or envcfg.strategy) != "canary":
            return None
        return target.canary or envcfg.canary

    def roles_of(self, user: str) -> list[str]:
        return [r.name for r in self.roles.values() if user in r.users]

    def permissions_of(self, user: str) -> frozenset[str]:
        """No roles defined means a single-user workspace where everyone may do everything."""
        if not self.roles:
            return frozenset(PERMISSIONS)
        perms: set[str] = set()
        for role in self.roles.values():
            if user in role.users:
                perms |= set(PERMISSIONS) if "*" in role.permissions else role.permissions
        return frozenset(perms)

    def secret_env_names(self) -> set[str]:
        """Environment variables this workspace reads credentials from."""
        names = {
            str(s.settings["token_env"]) for s in self.sources.values() if "token_env" in s.settings
        }
        for app in self.apps.values():
            for target in app.targets.values():
                if target.token_limits and "token_env" in target.token_limits.settings:
                    names.add(str(target.token_limits.settings["token_env"]))
        for n in self.notifications.values():
            names.update(n.headers_env.values())
        # Only the password's ${VAR}s: a login name in the URL is who acts, shown everywhere.
        password = re.match(r"[^:/]+://[^:@/]*:([^@]*)@", self.database or "")
        names.update(ENV_REF.findall(password.group(1)) if password else ())
        return names

    def window_specs(self, env: str) -> tuple[list[WindowSpec], list[FreezeSpec]]:
        e = self.environments[env]
        return [self.windows[w] for w in e.windows], [self.freezes[f] for f in e.freezes]
