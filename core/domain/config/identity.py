"""`[identity]` and `[roles]`: who acts, who may speak for whom, and what each role may do."""

from __future__ import annotations

from typing import Any

from shipdeck.core.domain.config.collector import CONTROL, Collector, escape_controls
from shipdeck.core.domain.config.model import (
    IDENTITY_SOURCES,
    PERMISSIONS,
    IdentityConfig,
    Role,
)


def name_problem(name: str) -> str | None:
    """Why `name` cannot be a user or actor name: the audit chain reserves control characters
    as field separators, and a name must read the same on screen as in the record."""
    if CONTROL.search(name):
        return f"user name '{escape_controls(name)}' holds a control character"
    return None


def parse_identity(c: Collector, raw: dict[str, Any]) -> IdentityConfig:
    c.keys(raw, "identity", {"allow_env_actor", "delegators", "default_actor", "source"})
    allow = bool(c.get(raw, "identity", "allow_env_actor", bool, False))
    delegators = c.strings(raw, "identity", "delegators")
    default_actor = c.get(raw, "identity", "default_actor", str)
    source = c.choice(raw, "identity", "source", IDENTITY_SOURCES, "os")
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
    return IdentityConfig(
        allow, delegators, default_actor, "database" if source == "database" else "os"
    )


def parse_roles(c: Collector, raw: dict[str, Any]) -> dict[str, Role]:
    roles: dict[str, Role] = {}
    for rname, rraw in raw.items():
        path = f"roles.{rname}"
        r = c.table(rraw, path)
        c.keys(r, path, {"users", "permissions"})
        perms = c.strings(r, path, "permissions")
        for i, p in enumerate(perms):
            if p != "*" and p not in PERMISSIONS:
                c.unknown(f"{path}.permissions[{i}]", "permission", p, list(PERMISSIONS))
        users = c.strings(r, path, "users")
        for i, user in enumerate(users):
            if (problem := name_problem(user)) is not None:
                c.err(f"{path}.users[{i}]", problem)
        roles[rname] = Role(rname, users, frozenset(perms))
    return roles
