"""The demo's people: who they are and, read back from its shipdeck.toml, what each may do."""

from __future__ import annotations

from dataclasses import dataclass

from shipdeck.core.domain.config import WorkspaceConfig

DEMO_USERS = {
    "alice": "Alice Moreau",
    "bob": "Bob Lindqvist",
    "carol": "Carol Okafor",
    "dave": "Dave Ng",
    "erin": "Erin Walsh",
    "frank": "Frank Osei",
}


# What each demo role is for, in the words the demo's welcome text and the README use.
ROLE_DUTIES = {
    "release-managers": "ships releases and plans (every permission)",
    "developers": "cuts releases, drafts plans, deploys",
    "approvers": "approve prod plans (two needed), tick checklists",
    "auditors": "read-only: status, plans, audit log, metrics",
    "on-call": "rollback, reconcile, logs, restart, token limits",
}


@dataclass(frozen=True)
class DemoUser:
    user: str
    name: str
    roles: tuple[str, ...]
    duties: str


def demo_users(config: WorkspaceConfig) -> list[DemoUser]:
    """The people of the demo and what they may do, read from its shipdeck.toml."""
    prod = config.environments.get("prod")
    users = []
    for user, name in DEMO_USERS.items():
        roles = tuple(config.roles_of(user))
        duties = [ROLE_DUTIES.get(r, r) for r in roles]
        if prod is not None and set(roles) & set(prod.override_roles):
            duties.append("break-glass overrides in prod")
        users.append(DemoUser(user, name, roles, "; ".join(duties)))
    return users
