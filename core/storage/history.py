"""Reads across plans and their deployments: which later plans replaced what a plan put live.

A plan's own row keeps the state its run left it in; what became of what it shipped is in the
deployment records that came after, which these reads find.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, select

from shipdeck.core.storage.deployments import DeploymentRow, as_row
from shipdeck.core.storage.tables import DEPLOYMENTS, PLANS

TOOK_TRAFFIC = ("succeeded", "rolled_back")  # outcomes of deployments that were live a while


@dataclass(frozen=True)
class Successor(DeploymentRow):
    """A later deployment, with the kind of the plan that made it (plan | deploy | rollback)."""

    plan_kind: str


def took_traffic(conn: Connection, plan_ids: Sequence[str]) -> list[DeploymentRow]:
    """The deployments these plans made that took traffic."""
    query = select(DEPLOYMENTS).where(
        DEPLOYMENTS.c.plan_id.in_(list(plan_ids)), DEPLOYMENTS.c.outcome.in_(TOOK_TRAFFIC)
    )
    return [as_row(DeploymentRow, r) for r in conn.execute(query)]


def successor(conn: Connection, d: DeploymentRow) -> Successor | None:
    """The first later deployment of another plan that took traffic for d's app and environment."""
    query = (
        select(DEPLOYMENTS, PLANS.c.kind.label("plan_kind"))
        .join(PLANS, PLANS.c.id == DEPLOYMENTS.c.plan_id)
        .where(
            DEPLOYMENTS.c.app == d.app,
            DEPLOYMENTS.c.env == d.env,
            DEPLOYMENTS.c.id > d.id,
            DEPLOYMENTS.c.plan_id != d.plan_id,
            DEPLOYMENTS.c.outcome.in_(TOOK_TRAFFIC),
        )
        .order_by(DEPLOYMENTS.c.id)
        .limit(1)
    )
    found = conn.execute(query).first()
    return None if found is None else as_row(Successor, found)
