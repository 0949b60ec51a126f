"""What every part of the engine shares: the step-level constants, the apps a run ships, the
exceptions that end a step, and the engine's attributes (set by _Engine.__init__).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shipdeck.core.domain.plan import PlanBody, PlanItem
from shipdeck.core.ports import Color, ReleaseSpec, Target
from shipdeck.core.services.context import Context
from shipdeck.core.services.plans import StepView

if TYPE_CHECKING:
    from shipdeck.core.domain.config import Environment
    from shipdeck.core.services.runs.journal import _GroupCommit, _Journal, _Row


PLAN_LEVEL = "*"  # run_step.app for steps of the whole plan (hold, warm)
# The intents of the steps that change a target or run a command against it, and every outcome
# that can close one (reconcile looks for the open ones).
_EFFECT_KINDS = tuple(
    f"run.{step}{end}"
    for step in ("stage", "eval", "canary", "switch", "finalize", "rollback")
    for end in (".intent", "", ".failed", ".recovered")
)
HEALTH_ATTEMPTS = 3
HEALTH_PAUSE = 0.5
HOLD_POLL = 1.0
CANARY_POLL = 1.0  # seconds between looks for an abort or a promote while a canary pauses
# Threads per wave, and for finalize, which stops every app of the plan at once: a 200-app plan
# under 64 took four rounds of stops instead of one. The threads wait on targets; their journal
# rows go through the run's one writer, so they hold no database connection meanwhile.
MAX_PARALLEL = 256


class _StepFailed(Exception):
    def __init__(self, app: str, step: str, message: str) -> None:
        super().__init__(message)
        self.app = app
        self.step = step
        self.message = message


class _Stop(Exception):
    """Another app of the wave failed, or an abort was requested: stop at this boundary."""


@dataclass
class _App:
    name: str
    wave: int
    item: PlanItem
    target: Target
    from_color: Color | None = None
    from_version: str | None = None
    from_release_id: int | None = None
    to_color: Color = "blue"
    prepared: bool = False


class _EngineState:
    """The attributes _Engine.__init__ sets, declared once for the parts of the engine
    (lease, journal, shipping, undo) that each live in a module of their own."""

    ctx: Context
    plan_id: str
    epoch: int
    progress: Callable[[StepView], None] | None
    env: str
    author: str
    body: PlanBody
    envcfg: Environment | None
    journal: _Journal
    lost: threading.Event
    stopping: threading.Event
    abort_seen: str | None
    _heartbeat_stop: threading.Event
    _specs: dict[int, ReleaseSpec]
    _pending: dict[str, _Row]
    apps: dict[str, _App]
    drift: list[str]
    _writer: _GroupCommit
