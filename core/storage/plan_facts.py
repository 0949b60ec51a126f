"""Rows of other tables that a plan's verdict and view read: the environment's lease, the plan's
run journal, the deployments promotion looks for and the releases the plan ships.

These reads belong with the stores of those tables (leases, journal, deployments, releases); they
wait here, typed, until those stores exist beside this one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from shipdeck.core.storage import binding
from shipdeck.core.storage.binding import Problem
from shipdeck.core.storage.db import Tx
from shipdeck.core.storage.tables import DEPLOYMENTS, LEASES, RELEASES, STEPS


@dataclass(frozen=True)
class LeaseRow:
    """An environment's lease as stored (its runner token's hash is left out: nothing here
    redeems it)."""

    env: str
    epoch: int
    holder: str | None
    plan_id: str | None
    since: datetime | None
    expires_at: datetime | None
    runner: str | None


def lease_of(conn: Tx, env: str) -> LeaseRow | None:
    r = conn.execute(select(LEASES).where(LEASES.c.env == env)).first()
    if r is None:
        return None
    return LeaseRow(r.env, r.epoch, r.holder, r.plan_id, r.since, r.expires_at, r.runner)


@dataclass(frozen=True)
class StepRow:
    id: int
    epoch: int
    wave: int
    app: str
    step: str
    state: str  # started | done | failed
    detail: str
    at: datetime


def steps_of(conn: Tx, plan_id: str, after_id: int = 0) -> list[StepRow]:
    """The plan's journal after step `after_id`, in the order it was written."""
    rows = conn.execute(
        select(STEPS).where(STEPS.c.plan_id == plan_id, STEPS.c.id > after_id).order_by(STEPS.c.id)
    )
    return [StepRow(r.id, r.epoch, r.wave, r.app, r.step, r.state, r.detail, r.at) for r in rows]


def shipped_to(conn: Tx, env: str, release_ids: Sequence[int]) -> tuple[set[int], list[Problem]]:
    """Which of the releases a succeeded deployment (not a rollback) took to `env`, counting
    only deployments their events vouch for, and the problems of the others."""
    found = conn.execute(
        select(DEPLOYMENTS).where(
            DEPLOYMENTS.c.env == env,
            DEPLOYMENTS.c.outcome == "succeeded",
            DEPLOYMENTS.c.kind == "deploy",
            DEPLOYMENTS.c.release_id.in_(list(release_ids)),
        )
    )
    shipped, problems = binding.trusted_rows(conn, DEPLOYMENTS, found)
    return {r.release_id for r in shipped}, problems


@dataclass(frozen=True)
class ReleaseRow:
    """A release as stored, for core.services.releases.proven_release to prove."""

    id: int
    app: str
    version: str
    commit: str
    digest: str
    manifest: bytes
    notes: str
    created_at: datetime
    created_by: str
    audit_seq: int | None


def _release(r: Any) -> ReleaseRow:
    return ReleaseRow(
        r.id, r.app, r.version, r.commit, r.digest, r.manifest, r.notes, r.created_at,
        r.created_by, r.audit_seq,
    )  # fmt: skip


def releases(conn: Tx, ids: Sequence[int]) -> list[ReleaseRow]:
    """The releases with these ids (none asked: no query)."""
    if not ids:
        return []
    return [_release(r) for r in conn.execute(select(RELEASES).where(RELEASES.c.id.in_(ids)))]
