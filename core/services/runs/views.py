"""What a run returns: RunResult (a run's end, with its journal) and ReconcileResult."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shipdeck.core.errors import ExitCode
from shipdeck.core.services.plans import StepView


@dataclass(frozen=True)
class RunResult:
    plan_id: str
    env: str
    state: str
    result: str
    epoch: int | None
    steps: tuple[StepView, ...] = ()

    @property
    def ok(self) -> bool:
        return self.state == "succeeded"

    @property
    def exit_code(self) -> int:
        return int(ExitCode.OK if self.ok else ExitCode.FAILED)

    def as_dict(self) -> dict[str, Any]:
        return {
            "plan": self.plan_id,
            "env": self.env,
            "state": self.state,
            "result": self.result,
            "epoch": self.epoch,
            "steps": [s.as_dict() for s in self.steps],
        }


@dataclass(frozen=True)
class ReconcileResult:
    plan_id: str
    env: str
    decision: str  # finished | rolled_back | aborted | failed | skipped
    state: str
    result: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "plan": self.plan_id,
            "env": self.env,
            "decision": self.decision,
            "state": self.state,
            "result": self.result,
        }
