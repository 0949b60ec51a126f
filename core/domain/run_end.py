"""How a run ends: which audit event a final state gives, and how reconcile ends a run it rolled
back. Pure; the engine (core.services.runs.engine) acts on these answers."""

from __future__ import annotations

from collections.abc import Sequence


def final_event(state: str) -> str:
    """The audit event that records a run ending in `state`."""
    return {"succeeded": "run.succeeded", "aborted": "run.aborted",
            "rolled_back": "run.rolled_back"}.get(state, "run.failed")  # fmt: skip


def interrupted_end(abort_seen: str | None, problems: Sequence[str]) -> tuple[str, str, str]:
    """(decision, state, result) of a run reconcile rolled back, asked to by `abort_seen` or
    because not every app had switched; `problems` are those of the rollback."""
    if abort_seen:
        decision, state = "aborted", "aborted"
        result = f"aborted by {abort_seen}; reconcile rolled back the interrupted run"
    else:
        decision, state = "rolled_back", "rolled_back"
        result = "reconciled: the run was interrupted before every app switched; rolled back"
    if problems:
        decision, state = "failed", "failed"
        result += f"; rollback problems: {'; '.join(problems)}"
    return decision, state, result
