"""Queued runs as the front ends see them: the stored row and whether its waiter still lives.

QueuedView lives here, not with the other plan views (views.py): status reads the queue for
every cell, and the dashboard's first frame should not import the plan views to do it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shipdeck.core.ports import ProcessIdentity
from shipdeck.core.storage import queued_runs
from shipdeck.core.storage.db import Tx


@dataclass(frozen=True)
class QueuedView:
    plan_id: str
    env: str
    by: str
    at: datetime
    state: str
    starts_at: datetime | None
    ended_at: datetime | None
    note: str
    waiter_gone: bool  # no live waiting process: nothing will start the plan

    @property
    def waiting(self) -> bool:
        return self.state == "waiting"

    @property
    def sentence(self) -> str:
        """What the plan and status say of the queue, in one line."""
        if self.waiting:
            when = f"{self.starts_at:%Y-%m-%d %H:%M} UTC" if self.starts_at else "never"
            gone = "; its waiter is gone, queue it again" if self.waiter_gone else ""
            return f"queued by {self.by}: starts when its window opens, at {when}{gone}"
        ended = f" at {self.ended_at:%Y-%m-%d %H:%M} UTC" if self.ended_at else ""
        return f"queue {self.state}{ended}" + (f": {self.note}" if self.note else "")

    def as_dict(self) -> dict[str, Any]:
        return {
            "plan": self.plan_id,
            "env": self.env,
            "by": self.by,
            "at": self.at.isoformat(),
            "state": self.state,
            "starts_at": self.starts_at.isoformat() if self.starts_at else None,
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
            "note": self.note,
            "waiter_gone": self.waiter_gone,
        }


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
