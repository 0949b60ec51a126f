"""Rows of other tables that a plan's verdict reads: the deployments promotion looks for and
the releases the plan ships (the releases and deployments stores may take them over)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from shipdeck.core.storage import binding
from shipdeck.core.storage.binding import Problem
from shipdeck.core.storage.db import Tx
from shipdeck.core.storage.tables import DEPLOYMENTS, RELEASES


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
