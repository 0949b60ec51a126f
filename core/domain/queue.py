"""What a queued run (`plan run --when-open`) does with the plan's blockers: start, wait, or give up.

One rule, used when the plan is queued and on every look the waiter takes: a closed window, a
freeze and another run holding the environment pass by themselves, so the queue waits them out;
anything else (an approval voided or missing, a checklist item unticked, a gate) needs a person,
so the queue gives up and says why rather than start a plan its approvers no longer vouch for.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Literal

from shipdeck.core.domain.windows import WindowState
from shipdeck.core.errors import Blocker

WAITABLE = frozenset({"window_closed", "frozen", "locked"})
# How often a waiter looks again while nothing is due: a cancelled queue or a voided approval is
# noticed within this, without polling the database hot for a window days away.
LOOK_EVERY = timedelta(seconds=5)

Decision = Literal["start", "wait", "refuse"]


def decide(blockers: Sequence[Blocker]) -> Decision:
    if not blockers:
        return "start"
    return "wait" if all(b.kind in WAITABLE for b in blockers) else "refuse"


def refusals(blockers: Sequence[Blocker]) -> list[Blocker]:
    """The blockers the queue cannot wait out, the ones a refusal names."""
    return [b for b in blockers if b.kind not in WAITABLE]


def starts_at(window: WindowState, now: datetime) -> datetime | None:
    """When the queued run is expected to start: now if the window is open, else its next
    opening (None when the window never opens again)."""
    return now if window.open else window.next_open


def pause(window: WindowState, now: datetime) -> float:
    """Seconds to wait before the next look: until the window opens, at most LOOK_EVERY."""
    due = starts_at(window, now)
    if due is None or due - now > LOOK_EVERY:
        return LOOK_EVERY.total_seconds()
    return max((due - now).total_seconds(), 0.05)
