"""Queued runs as the front ends see them: the stored row and whether its waiter still lives."""

from __future__ import annotations

from collections.abc import Iterable

from shipdeck.core.ports import ProcessIdentity
from shipdeck.core.services.plans.views import QueuedView
from shipdeck.core.storage import queued_runs
from shipdeck.core.storage.db import Tx


def _view(row: queued_runs.QueuedRow, processes: ProcessIdentity) -> QueuedView:
    # No waiter yet is gone too: the queueing command died before it could start one.
    gone = row.state == "waiting" and (row.waiter is None or processes.runner_dead(row.waiter))
    return QueuedView(
        row.plan_id, row.env, row.by, row.at, row.state, row.starts_at, row.ended_at, row.note, gone
    )


def queued_of(conn: Tx, plan_id: str, processes: ProcessIdentity) -> QueuedView | None:
    found = queued_runs.read(conn, plan_id)
    return None if found is None else _view(found, processes)


def waiting_in(
    conn: Tx, processes: ProcessIdentity, envs: Iterable[str] | None = None
) -> list[QueuedView]:
    """Every plan waiting in the queue (of these environments), soonest first."""
    views = [_view(r, processes) for r in queued_runs.waiting(conn, envs)]
    return sorted(views, key=lambda q: (q.starts_at is None, q.starts_at or q.at, q.plan_id))
