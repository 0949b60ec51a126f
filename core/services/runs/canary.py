"""The canary walk: where a blue/green app would switch, a canary app first walks its steps
(core.domain.canary.decide says which), each weight change a journaled `canary` step under its
committed intent, each analysis a `canary` step whose outcome event carries the measured values,
each pause a `canary` row that a promote request (service `promote`) ends early or at all.
Promoting is the existing switch; any way out before it puts the weight back to 0 first.

As in Argo Rollouts, a first deployment (nothing live to compare with or to keep) skips the
canary and switches at once.
"""

from __future__ import annotations

import contextlib
from dataclasses import replace
from typing import Any

from shipdeck.core.domain.canary import (
    Advance,
    Analyse,
    AnalysisVerdict,
    AwaitPromote,
    CanarySpec,
    ChangeWeight,
    Measurement,
    Metric,
    Position,
    Promote,
    Request,
    RollBack,
    Wait,
    decide,
    due_at,
    judge,
    measure,
    next_due,
)
from shipdeck.core.errors import AdapterError
from shipdeck.core.ports import Color, TrafficWeights, other_color
from shipdeck.core.services.runs.journal import _Journaled, _Row
from shipdeck.core.services.runs.state import CANARY_POLL, _App, _StepFailed, _Stop
from shipdeck.core.storage import audit_reads

PROMOTE_REQUESTED = "run.promote_requested"


class _Canarying(_Journaled):
    def _walk_canary(self, a: _App, spec: CanarySpec) -> None:
        """Walk `spec` to its promote; on a failed analysis, an abort or another app's failure,
        put the weight back to 0 and let the run's way back (or its halt) take over."""
        at = Position()
        request: Request = None
        paused: int | None = None  # the audit seq of the current pause's start
        promoter: str | None = None
        try:
            while True:
                action = decide(spec, at, request)
                request = None
                if isinstance(action, ChangeWeight):
                    self._set_weight(a, action.percent)
                    at = at.at_weight(action.percent)
                elif isinstance(action, Analyse):
                    at = replace(at, verdict=self._analyse(a, spec, action.weight))
                elif isinstance(action, Wait | AwaitPromote):
                    if paused is None:
                        paused = self._pause_started(a, action, at.weight)
                    promoter, slept = self._pause_look(action, paused)
                    request = "promote" if promoter else None
                    at = replace(at, waited=at.waited + slept)
                elif isinstance(action, Advance):
                    if paused is not None:
                        self._pause_done(a, at, promoter)
                        paused, promoter = None, None
                    at = at.advanced()
                elif isinstance(action, RollBack):
                    raise _StepFailed(a.name, "canary", action.reason)
                else:
                    assert isinstance(action, Promote)
                    return
        except (_Stop, _StepFailed) as exc:
            why = exc.message if isinstance(exc, _StepFailed) else self._stop_reason()
            # The way back (undo) tries again; the first failure is what is reported.
            with contextlib.suppress(_StepFailed):
                self._weight_back(a, why)
            raise

    def _stop_reason(self) -> str:
        return f"aborted by {self.abort_seen}" if self.abort_seen else "stopped"

    # --- weights -------------------------------------------------------------------------------

    def _weights(self, a: _App) -> TrafficWeights:
        weights = a.target.weights()
        if weights is None:
            raise AdapterError(
                f"{a.name}: its {self.env} target cannot split traffic, so it cannot run a canary"
            )
        return weights

    def _set_weight(self, a: _App, percent: int, why: str = "", boundary: bool = True) -> None:
        def act() -> str:
            self._weights(a).set_weight(a.to_color, percent, self.epoch)
            return f"weight {percent}%" + (f" ({why})" if why else "")

        self._step(
            a, "canary", act, detail=f"weight {percent}%", boundary=boundary,
            intent=(a.to_color, a.item.version), intent_facts={"weight": percent}, repeat=True,
        )  # fmt: skip

    def _weight_back(self, a: _App, why: str) -> None:
        """Weight 0 where the canary still takes traffic (after a failure, an abort, or a stopped
        runner found by reconcile); nothing where it takes none or cannot split at all."""
        weights = a.target.weights()
        if weights is None or a.from_color is None:
            return
        try:
            if weights.weight() <= 0:
                return
        except AdapterError:
            pass  # unknown: set it, which is idempotent
        self._set_weight(a, 0, why, boundary=False)

    # --- analysis ------------------------------------------------------------------------------

    def _analyse(self, a: _App, spec: CanarySpec, weight: int) -> AnalysisVerdict:
        """One analysis at `weight`, journaled with every measured value in its outcome event;
        a failed verdict fails the step (the walk then rolls back), any other returns."""
        evidence: dict[str, Any] = {}
        verdicts: list[AnalysisVerdict] = []

        def act() -> str:
            verdict = self._measure(a, spec, weight)
            verdicts.append(verdict)
            evidence.update(verdict.evidence)
            if verdict.status == "failed":
                raise AdapterError(f"analysis at {weight}% failed: {verdict.reason}")
            return verdict.reason

        try:
            self._step(
                a, "canary", act, detail=f"analysis at {weight}%", evidence=evidence,
                intent=(a.to_color, a.item.version), intent_facts={"weight": weight}, repeat=True,
            )  # fmt: skip
        except _StepFailed:
            if not verdicts:
                raise  # it could not measure at all
        return verdicts[0]

    def _measure(self, a: _App, spec: CanarySpec, weight: int) -> AnalysisVerdict:
        """Measure each metric every interval (on the run's clock, looking for an abort between)
        until each has its count, or one has failed: Argo stops a failed analysis at once."""
        self._sources_for(a, spec)
        colors: dict[str, Color] = {"canary": a.to_color, "stable": other_color(a.to_color)}
        taken: dict[str, list[Measurement]] = {}
        elapsed = 0.0
        verdict = judge(spec.metrics, taken, weight)
        while (due := next_due(spec.metrics, taken)) is not None:
            self._wait(due - elapsed)
            elapsed = due
            samples: dict[tuple[str, float], dict[str, float]] = {}
            for metric in due_at(spec.metrics, taken, elapsed):
                sides: dict[str, dict[str, float]] = {}
                error = None
                try:
                    for side, color in colors.items():
                        sides[side] = self._sample(a, metric, side, color, samples)
                except AdapterError as exc:
                    error = exc.message
                measured = measure(metric, sides.get("canary"), sides.get("stable"), error)
                taken.setdefault(metric.name, []).append(measured)
            verdict = judge(spec.metrics, taken, weight)
            if verdict.status == "failed":
                break
        return verdict

    def _sources_for(self, a: _App, spec: CanarySpec) -> None:
        """Refuse an analysis whose metrics have nowhere to be read from (it fails the step)."""
        if self.ctx.metrics is None and any(m.prometheus is None for m in spec.metrics):
            raise AdapterError(f"{a.name}: no metrics source is configured for its analysis")
        if self.ctx.queries is None and any(m.prometheus is not None for m in spec.metrics):
            raise AdapterError(f"{a.name}: no Prometheus client is configured for its analysis")

    def _sample(
        self,
        a: _App,
        metric: Metric,
        side: str,
        color: Color,
        samples: dict[tuple[str, float], dict[str, float]],
    ) -> dict[str, float]:
        """One color's values for `metric`: its Prometheus query's one value (none: left out),
        else the target's counters over the interval, read once per (side, interval) per round
        for all the metrics that share them."""
        if metric.prometheus is not None:
            assert self.ctx.queries is not None  # _sources_for
            query = metric.prometheus.render(a.name, self.env, color, metric.interval)
            value = self.ctx.queries.value(metric.prometheus.address, query)
            return {} if value is None else {metric.name: value}
        if (side, metric.interval) not in samples:
            assert self.ctx.metrics is not None  # _sources_for
            samples[side, metric.interval] = self.ctx.metrics.sample(
                a.name, self.env, color, metric.interval
            )
        return samples[side, metric.interval]

    def _wait(self, seconds: float) -> None:
        """Wait on the run's clock, looking for an abort (or a lost lease) every CANARY_POLL."""
        deadline = self.ctx.clock.monotonic() + seconds
        while (left := deadline - self.ctx.clock.monotonic()) > 0:
            self.ctx.clock.sleep(min(left, CANARY_POLL))
            self._check_boundary()

    # --- pauses --------------------------------------------------------------------------------

    def _pause_started(self, a: _App, action: Wait | AwaitPromote, weight: int) -> int | None:
        """The pause's journal row and its audit event (a promote request later than it ends
        the pause); an abort already requested stops here instead."""
        facts: dict[str, Any]
        if isinstance(action, Wait):
            detail, facts = f"pause {action.seconds:g}s at {weight}%", {"seconds": action.seconds}
        else:
            detail, facts = action.reason, {"seconds": None, "reason": action.reason}
        event = ("run.canary.paused", {"weight": weight, **facts, "epoch": self.epoch})
        row = _Row(a.wave, a.name, "canary", "started", detail, event=event)
        return self._commit([*self._pending_rows(a.name), row], starting=1)[-1][2]

    def _pause_look(
        self, action: Wait | AwaitPromote, paused: int | None
    ) -> tuple[str | None, float]:
        """Wait one poll (or what is left of a timed pause), then look for an abort (raises
        _Stop) and for a promote request made since the pause began: who made it, and how long
        this look waited."""
        seconds = min(action.seconds, CANARY_POLL) if isinstance(action, Wait) else CANARY_POLL
        self.ctx.clock.sleep(seconds)
        self._check_boundary()
        with self.ctx.db.read() as conn:
            by = audit_reads.first_actor_since(conn, self.plan_id, PROMOTE_REQUESTED, paused or 0)
        return by, seconds

    def _pause_done(self, a: _App, at: Position, request_by: str | None) -> None:
        detail = (
            f"promoted by {request_by} at {at.weight}%"
            if request_by
            else f"paused {at.waited:g}s at {at.weight}%"
        )
        self._write(a.wave, a.name, "canary", "done", detail)
