"""A Target port that records what it was asked to do and touches nothing.

For tests that must prove an effect was *not* attempted (the audit intent could not be recorded),
or *when* it was attempted: a real target would have to be inspected afterwards, this one keeps
the calls, and `before_call` lets a test look at the database (or change the world) at the moment
of each call. It keeps just enough state (live color, staged versions) for the engine to run a
plan through it, and fences as the port says a target must: a call whose epoch is older than one
it has seen is refused with StaleEpoch (checked after `before_call`, which may have been a
takeover), and a refused call is not recorded.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from shipdeck.core.ports import Color, Health, ReleaseSpec, StaleEpoch, Target, TrafficWeights
from tests.fakes.weights import RecordingWeights


@dataclass
class RecordingTarget:
    live: Color | None = "blue"
    calls: list[tuple[str, Any]] = field(default_factory=list)
    staged: dict[str, str] = field(default_factory=dict)
    healthy: bool = True
    app: str = ""
    before_call: Callable[[str, str, Any], None] | None = None  # (app, call, args)
    highest_epoch: int = 0
    weighted: bool = True  # False: a target that can only switch (weights() is None)
    split: RecordingWeights = field(init=False)

    def __post_init__(self) -> None:
        self.split = RecordingWeights(self._record)

    def _record(self, call: str, args: Any, epoch: int) -> None:
        if self.before_call is not None:
            self.before_call(self.app, call, args)
        if epoch < self.highest_epoch:
            raise StaleEpoch(f"{self.app or 'target'}: epoch {epoch} < {self.highest_epoch}")
        self.highest_epoch = epoch
        self.calls.append((call, args))

    def live_color(self) -> Color | None:
        return self.live

    def staged_version(self, color: Color) -> str | None:
        return self.staged.get(color)

    def endpoint(self) -> str | None:
        return None

    def color_endpoint(self, color: Color) -> str:
        return f"http://fake-target.invalid/{self.app}/{color}"

    def stage(self, color: Color, release: ReleaseSpec, epoch: int) -> None:
        self._record("stage", (color, release.version, epoch), epoch)
        self.staged[color] = release.version

    def health(self, color: Color) -> Health:
        if not self.healthy:
            return Health(False, "fake target: unhealthy")
        return Health(True, "fake target: healthy", self.staged.get(color))

    def switch(self, color: Color, epoch: int) -> None:
        self._record("switch", (color, epoch), epoch)
        self.live = color
        self.split.percent = 0  # the canary is live: nothing is split any more

    def stop_idle(self, color: Color, epoch: int) -> None:
        self._record("stop_idle", (color, epoch), epoch)
        self.staged.pop(color, None)

    def restart(self, epoch: int) -> None:
        self._record("restart", epoch, epoch)

    def weights(self) -> TrafficWeights | None:
        return self.split if self.weighted else None

    def close(self) -> None:
        pass

    def factory(self, app: str, env: str, adapter: str, settings: Mapping[str, Any]) -> Target:
        """Use as Context.targets: every app and environment gets this one target."""
        return self


@dataclass
class RecordingTargets:
    """One RecordingTarget per app (each with its own colors), for runs of several apps."""

    unhealthy: frozenset[str] = frozenset()
    before_call: Callable[[str, str, Any], None] | None = None
    by_app: dict[str, RecordingTarget] = field(default_factory=dict)

    def factory(self, app: str, env: str, adapter: str, settings: Mapping[str, Any]) -> Target:
        if app not in self.by_app:
            self.by_app[app] = RecordingTarget(None, app=app, before_call=self.before_call)
        target = self.by_app[app]
        target.healthy = app not in self.unhealthy
        return target

    def calls(self) -> list[tuple[str, str, Any]]:
        return [(app, call, args) for app, t in self.by_app.items() for call, args in t.calls]
