"""What a plan means for the environment's history, read from the deployment records.

Plans keep the state their own run left them in ("succeeded"), which stays true of the run but
not of the environment: a later rollback or run replaces what it shipped. These functions say so,
for `plan list`, `plan show` and the TUI alike:
- item_changes: per item, the version live now and whether the plan would be a downgrade;
- rollback_info: for a rollback plan, from and to versions, who and why, and why it needed no
  approvals (or how many it needs: `[environments.E] rollback_approvals`);
- superseded: which later plans replaced what this plan put live, and whether that was a rollback.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from shipdeck.core.domain.config import Environment
from shipdeck.core.domain.plan import PlanBody, PlanItem
from shipdeck.core.domain.versions import is_downgrade
from shipdeck.core.storage import deployments, history
from shipdeck.core.storage.db import Tx


@dataclass(frozen=True)
class ItemChange:
    """One item against what is live in the plan's environment now."""

    app: str
    live_version: str | None
    version: str
    downgrade: bool

    @property
    def sentence(self) -> str:
        """'downgrade: chat-api 1.4.0 → 1.3.1 (live now)', for warnings before a plan runs."""
        return f"downgrade: {self.app} {self.live_version} → {self.version} (live now)"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RollbackInfo:
    app: str
    from_version: str | None
    to_version: str
    by: str
    reason: str
    approvals_required: int
    approvals_note: str  # why none were needed, or how many it needs and from whom

    @property
    def what(self) -> str:
        """'chat-api 1.4.0 → 1.3.1 by alice: latency regression', for the CLI's plan lines."""
        return (
            f"{self.app} {self.from_version or '?'} → {self.to_version} by {self.by}: "
            f"{self.reason or 'no reason given'}"
        )

    @property
    def label(self) -> str:
        """'rollback chat-api 1.4.0 → 1.3.1', for lists and titles."""
        return f"rollback {self.app} {self.from_version or '?'} → {self.to_version}"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Supersession:
    """A later plan put another release of `app` live over what this plan had shipped."""

    app: str
    plan: str
    kind: str  # the later plan's kind: plan | deploy | rollback
    version: str
    at: datetime
    rolled_back: bool  # the later plan was a rollback of this plan's deployment

    @property
    def sentence(self) -> str:
        verb = "rolled back by" if self.rolled_back else "superseded by"
        return f"{self.app}: {verb} {self.plan} ({self.version}, {self.at:%Y-%m-%d %H:%M} UTC)"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "at": self.at.isoformat()}


def live_versions(conn: Tx, env: str) -> dict[str, str]:
    """Per app, the version live in `env` now (the newest deployment that is still live)."""
    return {app: r.version for (app, e), r in deployments.live(conn).items() if e == env}


def item_changes(conn: Tx, env: str, items: Sequence[PlanItem]) -> tuple[ItemChange, ...]:
    live = live_versions(conn, env)
    return tuple(
        ItemChange(i.app, live.get(i.app), i.version, is_downgrade(live.get(i.app), i.version))
        for i in sorted(items, key=lambda i: i.app)
    )


def approvals_note(env: Environment) -> str:
    """Why a rollback in `env` needs the approvals it does: one sentence, for both front ends."""
    need = env.rollback_approvals
    if need == 0:
        return (
            f"no approvals needed: in {env.name} a rollback needs only the 'rollback' permission "
            f"(set [environments.{env.name}] rollback_approvals to require them)"
        )
    roles = " or ".join(env.approvals.roles)
    return (
        f"needs {need} approval{'s' if need > 1 else ''} from {roles}: "
        f"[environments.{env.name}] rollback_approvals = {need}"
    )


def rollback_info(
    conn: Tx, env: Environment, body: PlanBody, created_by: str
) -> RollbackInfo | None:
    if body.kind != "rollback" or not body.items:
        return None
    item = body.items[0]
    replaced = body.replaces.get(item.app)
    from_version = None if replaced is None else deployments.version_of(conn, replaced)
    return RollbackInfo(
        item.app,
        from_version,
        item.version,
        created_by,
        body.reason,
        env.rollback_approvals,
        approvals_note(env),
    )


def superseded(conn: Tx, plan_ids: Sequence[str]) -> dict[str, tuple[Supersession, ...]]:
    """For each plan, the later plans that replaced what it put live (per app, the first one)."""
    if not plan_ids:
        return {}
    out: dict[str, list[Supersession]] = {}
    for d in history.took_traffic(conn, plan_ids):
        later = history.successor(conn, d)
        if later is None or d.plan_id is None:
            continue
        rolled_back = later.plan_kind == "rollback" and d.outcome == "rolled_back"
        by = str(later.plan_id)  # joined to its plan: never None
        out.setdefault(d.plan_id, []).append(
            Supersession(d.app, by, later.plan_kind, later.version, later.at, rolled_back)
        )
    return {k: tuple(sorted(v, key=lambda s: s.app)) for k, v in out.items()}
