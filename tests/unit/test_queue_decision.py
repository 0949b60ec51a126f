"""core.domain.queue: which blockers a queued run waits out, and how long it waits between looks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shipdeck.core.domain.queue import LOOK_EVERY, decide, pause, refusals, starts_at
from shipdeck.core.domain.windows import WindowState
from shipdeck.core.errors import Blocker

NOW = datetime(2026, 12, 2, 21, 0, tzinfo=UTC)


def b(kind: str) -> Blocker:
    return Blocker(kind, f"{kind} sentence")


@pytest.mark.parametrize(
    ("kinds", "decision"),
    [
        ((), "start"),
        (("window_closed",), "wait"),
        (("frozen", "locked"), "wait"),
        (("window_closed", "stale_approval"), "refuse"),
        (("approvals_missing",), "refuse"),
        (("checklist_incomplete", "frozen"), "refuse"),
        (("unsafe_weights",), "refuse"),
    ],
)
def test_what_the_queue_does_with_each_mix_of_blockers(
    kinds: tuple[str, ...], decision: str
) -> None:
    blockers = [b(k) for k in kinds]
    assert decide(blockers) == decision
    assert [x.kind for x in refusals(blockers)] == [
        k for k in kinds if k not in ("window_closed", "frozen", "locked")
    ]


def window(open_: bool, next_open: datetime | None) -> WindowState:
    return WindowState(
        open_, None if open_ else "closed", next_open, None, None if open_ else "window_closed"
    )


def test_it_looks_again_at_the_opening_and_never_less_often_than_every_few_seconds() -> None:
    assert starts_at(window(True, None), NOW) == NOW
    far = window(False, NOW + timedelta(days=3))
    assert starts_at(far, NOW) == NOW + timedelta(days=3)
    assert pause(far, NOW) == LOOK_EVERY.total_seconds()
    assert pause(window(False, NOW + timedelta(seconds=2)), NOW) == 2.0
    assert pause(window(False, NOW - timedelta(seconds=1)), NOW) == 0.05  # due: look at once
    assert (
        pause(window(False, None), NOW) == LOOK_EVERY.total_seconds()
    )  # never opens: keep looking
    assert starts_at(window(False, None), NOW) is None
