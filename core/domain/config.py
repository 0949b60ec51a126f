"""The workspace policy (shipdeck.toml) as typed, validated data.

Validation collects every problem with the file name and a key path
(`apps.chat-api.depends_on[0]: unknown app 'modle-server'`) instead of stopping at the first, so
one `shipdeck config check` run shows all there is to fix.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from shipdeck.core.domain.config_values import value_problems
from shipdeck.core.domain.occurrences import WallTime, parse_wall_time, to_utc
from shipdeck.core.domain.versions import DEFAULT_SCHEME, SCHEMES, VersionScheme
from shipdeck.core.domain.waves import find_cycle
from shipdeck.core.domain.windows import (
    FreezeSpec,
    WindowSpec,
    parse_duration,
    validate_cron,
    validate_timezone,
)
from shipdeck.core.errors import ConfigError

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

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

# Settings each adapter accepts: key -> (type, required). Kept here, not in the adapters, so
# `config check` validates a workspace without importing any SDK.
_ANY_LIST = list
TARGET_ADAPTERS: dict[str, dict[str, tuple[type | tuple[type, ...], bool]]] = {
    "local": {
        "port": (int, True),
        "blue_port": (int, False),
        "green_port": (int, False),
        "command": (_ANY_LIST, False),
        "health_path": (str, False),
        "health_timeout": ((int, float), False),
    },
    "nginx": {
        "include_file": (str, True),
        "upstream": (str, True),
        "blue_port": (int, True),
        "green_port": (int, True),
        "nginx_conf": (str, False),
        "nginx": (str, False),
        "nginx_args": (_ANY_LIST, False),
        "test": (_ANY_LIST, False),
        "reload": (_ANY_LIST, False),
        "pid_file": (str, False),
        "command": (_ANY_LIST, False),
        "url": (str, False),
        "health_path": (str, False),
        "version_path": (str, False),
        "timeout": ((int, float), False),
        "health_timeout": ((int, float), False),
        "start_timeout": ((int, float), False),
        "switch_timeout": ((int, float), False),
    },
    "aws-elb": {
        "listener_arn": (str, True),
        "blue_target_group_arn": (str, True),
        "green_target_group_arn": (str, True),
        "rule_arn": (str, False),
        "region": (str, False),
        "endpoint_url": (str, False),
        "profile": (str, False),
        "url": (str, False),
        "max_attempts": (int, False),
    },
    "command": {
        "stage": (_ANY_LIST, True),
        "health": (_ANY_LIST, True),
        "switch": (_ANY_LIST, True),
        "live_color": (_ANY_LIST, True),
        "stop_idle": (_ANY_LIST, False),
        "restart": (_ANY_LIST, False),
        "timeout": ((int, float), False),
        "endpoint": (str, False),
        "cwd": (str, False),
    },
}
LOG_ADAPTERS: dict[str, dict[str, tuple[type | tuple[type, ...], bool]]] = {
    "file": {"path": (str, True)},
    "command": {"argv": (_ANY_LIST, True)},
    "cloudwatch": {
        "group": (str, True),
        "stream": (str, False),
        "region": (str, False),
        "endpoint_url": (str, False),
        "profile": (str, False),
    },
}
TOKEN_LIMIT_ADAPTERS: dict[str, dict[str, tuple[type | tuple[type, ...], bool]]] = {
    "litellm-file": {"path": (str, True), "model": (str, True), "reload": (_ANY_LIST, False)},
    "http": {"url": (str, True), "model": (str, True), "token_env": (str, True)},
}
SOURCE_KINDS: dict[str, dict[str, tuple[type | tuple[type, ...], bool]]] = {
    "hf": {"endpoint": (str, False), "token_env": (str, False), "token_file": (str, False)},
    "s3": {"endpoint_url": (str, False), "profile": (str, False), "region": (str, False)},
    "file": {},
}


@dataclass(frozen=True)
class Role:
    name: str
    users: tuple[str, ...]
    permissions: frozenset[str]


@dataclass(frozen=True)
class ChecklistItem:
    id: str
    text: str
    command: tuple[str, ...] | None = None


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
    rollback_approvals: int = (
        0  # approvals a rollback needs here (default: none, it ends incidents)
    )


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
    versions: VersionScheme = DEFAULT_SCHEME  # [releases] versions: which strings are versions

    def env_order(self) -> list[str]:
        return sorted(self.environments, key=lambda e: self.environments[e].order)

    def previous_env(self, env: str) -> str | None:
        order = self.env_order()
        i = order.index(env)
        return order[i - 1] if i > 0 else None

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


class _Collector:
    """Walks the raw TOML and records `file: key.path: problem` lines."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.errors: list[str] = []

    def err(self, path: str, message: str) -> None:
        # Keys and values are quoted into the message: escape their control characters so each
        # problem stays one line (a quoted TOML key may hold a newline).
        line = f"{self.filename}: {path}: {message}"
        self.errors.append(_CONTROL.sub(lambda m: repr(m.group())[1:-1], line))

    def table(self, raw: Any, path: str) -> dict[str, Any]:
        if raw is None:
            return {}
        if not isinstance(raw, dict):
            self.err(path, f"must be a table, not {_typename(raw)}")
            return {}
        return raw

    def keys(
        self, raw: Mapping[str, Any], path: str, allowed: set[str] | Mapping[str, Any]
    ) -> None:
        for key in raw:
            if key not in allowed:
                hint = _closest(key, list(allowed))
                self.err(
                    _join(path, key), "unknown key" + (f" (did you mean '{hint}'?)" if hint else "")
                )

    def get(
        self,
        raw: Mapping[str, Any],
        path: str,
        key: str,
        kind: type | tuple[type, ...],
        default: Any = None,
        required: bool = False,
    ) -> Any:
        if key not in raw:
            if required:
                self.err(_join(path, key), "required key is missing")
            return default
        value = raw[key]
        if (kind is int and isinstance(value, bool)) or not isinstance(value, kind):
            self.err(_join(path, key), f"must be {_kindname(kind)}, not {_typename(value)}")
            return default
        return value

    def strings(self, raw: Mapping[str, Any], path: str, key: str) -> tuple[str, ...]:
        value = self.get(raw, path, key, list, [])
        out: list[str] = []
        for i, item in enumerate(value):
            if not isinstance(item, str):
                self.err(f"{_join(path, key)}[{i}]", f"must be a string, not {_typename(item)}")
            else:
                out.append(item)
        return tuple(out)


def name_problem(name: str) -> str | None:
    """Why `name` cannot be a user or actor name: the audit chain reserves control characters
    as field separators, and a name must read the same on screen as in the record."""
    if _CONTROL.search(name):
        return f"user name '{_CONTROL.sub(lambda m: repr(m.group())[1:-1], name)}' holds a control character"
    return None


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _typename(value: Any) -> str:
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "an array",
        dict: "a table",
    }.get(type(value), type(value).__name__)


def _kindname(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(
        _typename(k()) if k in (bool, int, float, str, list, dict) else k.__name__ for k in kinds
    )


def _closest(word: str, options: list[str]) -> str | None:
    import difflib

    match = difflib.get_close_matches(word, options, n=1, cutoff=0.75)
    return match[0] if match else None


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
    c = _Collector(filename)
    for path, problem in value_problems(raw):
        c.err(path, problem)
    c.keys(raw, "", _TOP)

    ws = c.table(raw.get("workspace"), "workspace")
    c.keys(ws, "workspace", {"name", "database"})
    name = c.get(ws, "workspace", "name", str, "shipdeck")
    database = c.get(ws, "workspace", "database", str)

    identity = _parse_identity(c, c.table(raw.get("identity"), "identity"))

    rel = c.table(raw.get("releases"), "releases")
    c.keys(rel, "releases", {"versions"})
    versions = c.get(rel, "releases", "versions", str, DEFAULT_SCHEME)
    if versions not in SCHEMES:
        c.err("releases.versions", f"must be one of {', '.join(SCHEMES)}, not '{versions}'")
        versions = DEFAULT_SCHEME

    roles = _parse_roles(c, c.table(raw.get("roles"), "roles"))
    windows = _parse_windows(c, c.table(raw.get("windows"), "windows"))
    freezes = _parse_freezes(c, c.table(raw.get("freezes"), "freezes"))
    envs = _parse_environments(
        c, c.table(raw.get("environments"), "environments"), roles, windows, freezes
    )
    sources = _parse_sources(c, c.table(raw.get("sources"), "sources"))
    apps = _parse_apps(c, c.table(raw.get("apps"), "apps"), envs, sources)
    notifications = _parse_notifications(c, c.table(raw.get("notifications"), "notifications"))

    if c.errors:
        first = c.errors[0]
        more = f" (and {len(c.errors) - 1} more)" if len(c.errors) > 1 else ""
        err = ConfigError(first + more)
        err.all_errors = c.errors  # type: ignore[attr-defined]
        raise err
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
        versions=versions,
    )


def _parse_identity(c: _Collector, raw: dict[str, Any]) -> IdentityConfig:
    c.keys(raw, "identity", {"allow_env_actor", "delegators", "default_actor", "source"})
    allow = bool(c.get(raw, "identity", "allow_env_actor", bool, False))
    delegators = c.strings(raw, "identity", "delegators")
    default_actor = c.get(raw, "identity", "default_actor", str)
    source = c.get(raw, "identity", "source", str, "os")
    if source not in IDENTITY_SOURCES:
        c.err("identity.source", f"must be 'os' or 'database', not '{source}'")
        source = "os"
    if (delegators or default_actor) and not allow:
        c.err(
            "identity.delegators" if delegators else "identity.default_actor",
            "needs allow_env_actor = true (delegation is off in this workspace)",
        )
    if allow and not delegators:
        c.err(
            "identity.allow_env_actor",
            'names no delegators: add delegators = ["ci-runner"] (the OS users trusted to '
            'set SHIPDECK_ACTOR), or "*" for a single-person workspace',
        )
    if source == "database" and (allow or delegators):
        c.err("identity.source", "'database' takes the actor from PostgreSQL: no delegation")
    return IdentityConfig(allow, delegators, default_actor, source)


def _parse_roles(c: _Collector, raw: dict[str, Any]) -> dict[str, Role]:
    roles: dict[str, Role] = {}
    for rname, rraw in raw.items():
        path = f"roles.{rname}"
        r = c.table(rraw, path)
        c.keys(r, path, {"users", "permissions"})
        perms = c.strings(r, path, "permissions")
        for i, p in enumerate(perms):
            if p != "*" and p not in PERMISSIONS:
                hint = _closest(p, list(PERMISSIONS))
                c.err(
                    f"{path}.permissions[{i}]",
                    f"unknown permission '{p}'" + (f" (did you mean '{hint}'?)" if hint else ""),
                )
        users = c.strings(r, path, "users")
        for i, user in enumerate(users):
            if (problem := name_problem(user)) is not None:
                c.err(f"{path}.users[{i}]", problem)
        roles[rname] = Role(rname, users, frozenset(perms))
    return roles


def _parse_windows(c: _Collector, raw: dict[str, Any]) -> dict[str, WindowSpec]:
    out: dict[str, WindowSpec] = {}
    for wname, wraw in raw.items():
        path = f"windows.{wname}"
        w = c.table(wraw, path)
        c.keys(w, path, {"cron", "duration", "end", "timezone", "kind"})
        cron = c.get(w, path, "cron", str, required=True)
        if cron is not None and (problem := validate_cron(cron)):
            c.err(f"{path}.cron", problem)
            cron = None
        duration, end, length_ok = _window_length(c, w, path)
        tz = c.get(w, path, "timezone", str, "UTC")
        if (problem := validate_timezone(tz)) is not None:
            c.err(f"{path}.timezone", problem)
            tz = None
        kind = c.get(w, path, "kind", str, "allow")
        if kind not in ("allow", "deny"):
            c.err(f"{path}.kind", f"must be 'allow' or 'deny', not '{kind}'")
            kind = None
        if cron and length_ok and tz and kind:
            out[wname] = WindowSpec(wname, cron, duration, tz, kind, end)
    return out


def _window_length(
    c: _Collector, w: Mapping[str, Any], path: str
) -> tuple[timedelta | None, WallTime | None, bool]:
    """A window lasts an elapsed `duration` or until a local wall-clock `end`: exactly one."""
    if "duration" in w and "end" in w:
        c.err(f"{path}.end", "use either duration or end, not both")
        return None, None, False
    if "end" not in w:
        duration = _duration(c, w, path, "duration", required=True)
        return duration, None, duration is not None
    text = c.get(w, path, "end", str, required=True)
    if text is None:
        return None, None, False
    try:
        return None, parse_wall_time(text), True
    except ValueError as exc:
        c.err(f"{path}.end", str(exc))
        return None, None, False


def _duration(
    c: _Collector, raw: Mapping[str, Any], path: str, key: str, required: bool
) -> timedelta | None:
    text = c.get(raw, path, key, str, required=required)
    if text is None:
        return None
    try:
        return parse_duration(text)
    except ValueError as exc:
        c.err(_join(path, key), str(exc))
        return None


def _parse_freezes(c: _Collector, raw: dict[str, Any]) -> dict[str, FreezeSpec]:
    out: dict[str, FreezeSpec] = {}
    for fname, fraw in raw.items():
        path = f"freezes.{fname}"
        f = c.table(fraw, path)
        c.keys(f, path, {"start", "end", "reason", "timezone"})
        zone = None
        if "timezone" in f:
            tz = c.get(f, path, "timezone", str)
            if tz is not None and (problem := validate_timezone(tz)) is not None:
                c.err(f"{path}.timezone", problem)
            elif tz is not None:
                zone = ZoneInfo(tz)
        start = _instant(c, f, path, "start", zone)
        end = _instant(c, f, path, "end", zone)
        reason = c.get(f, path, "reason", str, "")
        if start and end:
            if end <= start:
                c.err(f"{path}.end", "must be after start")
            else:
                out[fname] = FreezeSpec(fname, start, end, reason)
    return out


def _instant(
    c: _Collector, raw: Mapping[str, Any], path: str, key: str, zone: ZoneInfo | None
) -> datetime | None:
    """A freeze bound: with an offset, or a local wall-clock time in the freeze's `timezone`
    (DST-correct; a repeated local time starts at its first and ends at its second occurrence,
    so the freeze covers both)."""
    value = c.get(raw, path, key, (datetime, str), required=True)
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            c.err(_join(path, key), f"not an ISO 8601 date-time: '{value}'")
            return None
    if isinstance(value, datetime) and value.tzinfo is None:
        if zone is not None:
            return to_utc(value, zone, later=key == "end").astimezone(zone)
        c.err(
            _join(path, key),
            "needs a UTC offset (e.g. 2026-12-20T00:00:00+01:00) or a timezone key for the freeze",
        )
        return None
    return value


def _parse_environments(
    c: _Collector,
    raw: dict[str, Any],
    roles: Mapping[str, Role],
    windows: Mapping[str, WindowSpec],
    freezes: Mapping[str, FreezeSpec],
) -> dict[str, Environment]:
    allowed = {
        "approvals",
        "checklist",
        "windows",
        "freezes",
        "requires_previous",
        "protected",
        "override_roles",
        "task_roles",
        "failure_policy",
        "warm",
        "rollback_approvals",
    }
    out: dict[str, Environment] = {}
    if not raw:
        c.err("environments", "at least one environment is required")
    for order, (ename, eraw) in enumerate(raw.items()):
        path = f"environments.{ename}"
        e = c.table(eraw, path)
        c.keys(e, path, allowed)
        ap_raw = c.table(e.get("approvals"), f"{path}.approvals")
        c.keys(ap_raw, f"{path}.approvals", {"required", "roles"})
        required = c.get(ap_raw, f"{path}.approvals", "required", int, 0)
        if required < 0:
            c.err(f"{path}.approvals.required", "must be 0 or more")
        ap_roles = _role_refs(c, ap_raw, f"{path}.approvals", "roles", roles)
        if required and not ap_roles:
            c.err(f"{path}.approvals.roles", "required when approvals.required > 0")
        checklist = _parse_checklist(c, e.get("checklist"), f"{path}.checklist")
        wins = c.strings(e, path, "windows")
        for i, w in enumerate(wins):
            if w not in windows:
                _unknown(c, f"{path}.windows[{i}]", "window", w, list(windows))
        frz = c.strings(e, path, "freezes")
        for i, f in enumerate(frz):
            if f not in freezes:
                _unknown(c, f"{path}.freezes[{i}]", "freeze", f, list(freezes))
        requires_previous = bool(c.get(e, path, "requires_previous", bool, False))
        if requires_previous and order == 0:
            c.err(f"{path}.requires_previous", "the first environment has no previous one")
        policy = c.get(e, path, "failure_policy", str, "rollback")
        if policy not in ("rollback", "halt"):
            c.err(f"{path}.failure_policy", f"must be 'rollback' or 'halt', not '{policy}'")
            policy = "rollback"
        warm = _duration(c, e, path, "warm", required=False)
        rollback_approvals = c.get(e, path, "rollback_approvals", int, 0)
        if rollback_approvals < 0:
            c.err(f"{path}.rollback_approvals", "must be 0 or more")
        elif rollback_approvals and not ap_roles:
            c.err(f"{path}.rollback_approvals", "needs approvals.roles (who may approve)")
        out[ename] = Environment(
            name=ename,
            order=order,
            approvals=ApprovalPolicy(required, ap_roles),
            checklist=checklist,
            windows=tuple(w for w in wins if w in windows),
            freezes=tuple(f for f in frz if f in freezes),
            requires_previous=requires_previous,
            protected=bool(c.get(e, path, "protected", bool, False)),
            override_roles=_role_refs(c, e, path, "override_roles", roles),
            task_roles=_role_refs(c, e, path, "task_roles", roles),
            failure_policy=policy,
            warm_seconds=warm.total_seconds() if warm else 0.0,
            rollback_approvals=max(rollback_approvals, 0),
        )
    return out


def _unknown(c: _Collector, path: str, what: str, value: str, options: list[str]) -> None:
    hint = _closest(value, options)
    c.err(path, f"unknown {what} '{value}'" + (f" (did you mean '{hint}'?)" if hint else ""))


def _role_refs(
    c: _Collector, raw: Mapping[str, Any], path: str, key: str, roles: Mapping[str, Role]
) -> tuple[str, ...]:
    names = c.strings(raw, path, key)
    for i, r in enumerate(names):
        if r not in roles:
            _unknown(c, f"{_join(path, key)}[{i}]", "role", r, list(roles))
    return tuple(r for r in names if r in roles)


def _parse_checklist(c: _Collector, raw: Any, path: str) -> tuple[ChecklistItem, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        c.err(path, f"must be an array, not {_typename(raw)}")
        return ()
    items: list[ChecklistItem] = []
    seen: set[str] = set()
    for i, entry in enumerate(raw):
        ipath = f"{path}[{i}]"
        if isinstance(entry, str):
            item = ChecklistItem(_slug(entry), entry)
        elif isinstance(entry, dict):
            c.keys(entry, ipath, {"id", "text", "command"})
            text = c.get(entry, ipath, "text", str, required=True) or ""
            cid = c.get(entry, ipath, "id", str, _slug(text))
            command = c.strings(entry, ipath, "command") if "command" in entry else None
            if command is not None and not command:
                c.err(f"{ipath}.command", "must name a program (a non-empty argv array)")
            item = ChecklistItem(cid, text, command or None)
        else:
            c.err(ipath, f"must be a string or a table, not {_typename(entry)}")
            continue
        if item.id in seen:
            c.err(ipath, f"duplicate checklist id '{item.id}'")
        seen.add(item.id)
        items.append(item)
    return tuple(items)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "item"


def _settings(
    c: _Collector,
    raw: Mapping[str, Any],
    path: str,
    schemas: Mapping[str, Mapping[str, tuple[type | tuple[type, ...], bool]]],
    what: str,
    extra: set[str] = frozenset(),  # type: ignore[assignment]
) -> AdapterConfig | None:
    adapter = c.get(raw, path, "adapter", str, required=True)
    if adapter is None:
        return None
    if adapter not in schemas:
        _unknown(c, f"{path}.adapter", what, adapter, list(schemas))
        return None
    schema = schemas[adapter]
    c.keys({k: v for k, v in raw.items() if k not in extra}, path, {"adapter", *schema})
    settings: dict[str, Any] = {}
    for key, (kind, required) in schema.items():
        value = c.get(raw, path, key, kind, required=required)
        if value is not None:
            if isinstance(value, list) and not all(isinstance(x, str) for x in value):
                c.err(_join(path, key), "must be an array of strings (an argv)")
            settings[key] = value
    return AdapterConfig(adapter, settings)


def _parse_sources(c: _Collector, raw: dict[str, Any]) -> dict[str, Source]:
    out: dict[str, Source] = {}
    for sname, sraw in raw.items():
        path = f"sources.{sname}"
        s = c.table(sraw, path)
        kind = c.get(s, path, "kind", str, required=True)
        if kind is None:
            continue
        if kind not in SOURCE_KINDS:
            _unknown(c, f"{path}.kind", "source kind", kind, list(SOURCE_KINDS))
            continue
        cfg = _settings(
            c,
            {"adapter": kind, **{k: v for k, v in s.items() if k != "kind"}},
            path,
            SOURCE_KINDS,
            "source kind",
        )
        if cfg:
            out[sname] = Source(sname, kind, cfg.settings)
    return out


def _parse_apps(
    c: _Collector,
    raw: dict[str, Any],
    envs: Mapping[str, Environment],
    sources: Mapping[str, Source],
) -> dict[str, App]:
    allowed = {"repo", "owner", "oncall", "depends_on", "artifacts", "config", "targets"}
    apps: dict[str, App] = {}
    for aname, araw in raw.items():
        path = f"apps.{aname}"
        a = c.table(araw, path)
        c.keys(a, path, allowed)
        repo = c.get(a, path, "repo", str, "", required=True)
        deps = c.strings(a, path, "depends_on")
        for i, d in enumerate(deps):
            if d not in raw:
                _unknown(c, f"{path}.depends_on[{i}]", "app", d, list(raw))
            elif d == aname:
                c.err(f"{path}.depends_on[{i}]", "an app cannot depend on itself")
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
                _unknown(c, f"{apath}.source", "source", src, list(sources))
            if uri is not None and "://" not in uri:
                c.err(
                    f"{apath}.uri",
                    f"must be a URI like hf://org/model@rev, s3://bucket/key or file://dir, not '{uri}'",
                )
            artifacts.append(
                ArtifactConfig(art, uri or "", src, c.get(t, apath, "promote_to", str))
            )
        config = c.table(a.get("config"), f"{path}.config")
        targets: dict[str, TargetConfig] = {}
        for ename, traw in c.table(a.get("targets"), f"{path}.targets").items():
            tpath = f"{path}.targets.{ename}"
            if ename not in envs:
                _unknown(c, tpath, "environment", ename, list(envs))
                continue
            t = c.table(traw, tpath)
            target = _settings(
                c, t, tpath, TARGET_ADAPTERS, "target adapter", {"logs", "token_limits"}
            )
            logs = (
                _settings(
                    c,
                    c.table(t["logs"], f"{tpath}.logs"),
                    f"{tpath}.logs",
                    LOG_ADAPTERS,
                    "log adapter",
                )
                if "logs" in t
                else None
            )
            limits = (
                _settings(
                    c,
                    c.table(t["token_limits"], f"{tpath}.token_limits"),
                    f"{tpath}.token_limits",
                    TOKEN_LIMIT_ADAPTERS,
                    "token limit adapter",
                )
                if "token_limits" in t
                else None
            )
            if target:
                targets[ename] = TargetConfig(target.adapter, target.settings, logs, limits)
        apps[aname] = App(
            name=aname,
            repo=repo,
            owner=c.get(a, path, "owner", str, ""),
            oncall=c.get(a, path, "oncall", str, ""),
            depends_on=deps,
            artifacts=tuple(artifacts),
            config=config,
            targets=targets,
        )
    cycle = find_cycle({n: [d for d in a.depends_on if d in apps] for n, a in apps.items()})
    if cycle:
        c.err(f"apps.{cycle[0]}.depends_on", "dependency cycle " + " -> ".join(cycle))
    return apps


def _parse_notifications(c: _Collector, raw: dict[str, Any]) -> dict[str, Notification]:
    out: dict[str, Notification] = {}
    for nname, nraw in raw.items():
        path = f"notifications.{nname}"
        n = c.table(nraw, path)
        c.keys(n, path, {"url", "format", "events", "headers_env"})
        url = c.get(n, path, "url", str, required=True)
        fmt = c.get(n, path, "format", str, "json")
        if fmt not in ("json", "slack"):
            c.err(f"{path}.format", f"must be 'json' or 'slack', not '{fmt}'")
        events = c.strings(n, path, "events")
        for i, ev in enumerate(events):
            if ev not in NOTIFY_EVENTS:
                _unknown(c, f"{path}.events[{i}]", "event", ev, list(NOTIFY_EVENTS))
        headers = c.table(n.get("headers_env"), f"{path}.headers_env")
        if url:
            out[nname] = Notification(
                nname, url, fmt if fmt == "slack" else "json", events or NOTIFY_EVENTS, headers
            )
    return out
