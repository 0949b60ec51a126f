"""How a run ends: the audit event of each final state, and reconcile's end of a run it rolled back."""

from __future__ import annotations

import pytest

from shipdeck.core.domain.run_end import final_event, interrupted_end


@pytest.mark.parametrize(
    ("state", "event"),
    [
        ("succeeded", "run.succeeded"),
        ("aborted", "run.aborted"),
        ("rolled_back", "run.rolled_back"),
        ("failed", "run.failed"),
    ],
)
def test_each_final_state_has_its_event(state: str, event: str) -> None:
    assert final_event(state) == event


def test_an_interrupted_run_is_rolled_back() -> None:
    assert interrupted_end(None, []) == (
        "rolled_back",
        "rolled_back",
        "reconciled: the run was interrupted before every app switched; rolled back",
    )


def test_an_abort_names_who_asked() -> None:
    decision, state, result = interrupted_end("bob", [])
    assert (decision, state) == ("aborted", "aborted")
    assert result == "aborted by bob; reconcile rolled back the interrupted run"


def test_rollback_problems_fail_the_run_and_are_named() -> None:
    decision, state, result = interrupted_end("bob", ["web: stuck", "api: gone"])
    assert (decision, state) == ("failed", "failed")
    assert result.endswith("; rollback problems: web: stuck; api: gone")
