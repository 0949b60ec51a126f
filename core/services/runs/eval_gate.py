"""The engine's eval step: run an app's evaluator against its staged color, judge the metrics it
prints against the gate's thresholds and the live release's recorded values, and leave all of it
as evidence in the step's outcome event (`run.eval` or `run.eval.failed`).

The baseline is the `run.eval` event of the release live in that environment now: the values it
measured when it passed its own gate there. Audit events are hash-chained, so the value a new
release is held to is the value that was recorded, not one that could be edited afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shipdeck.core.domain.argv_template import render_argv
from shipdeck.core.domain.evaluation import EvalGate, EvalOutputError, finite, judge, read_metrics
from shipdeck.core.domain.redact import one_line, redact_text
from shipdeck.core.errors import AdapterError
from shipdeck.core.ports import Color, ReleaseSpec, Target
from shipdeck.core.services.context import Context
from shipdeck.core.storage import audit_reads

EVAL_EVENT = "run.eval"
_OUTPUT_KEPT = 500  # characters of a failed evaluator's stderr kept as evidence


@dataclass(frozen=True)
class Baseline:
    """What the live release measured when it passed its gate (event `seq`)."""

    seq: int
    version: str
    metrics: dict[str, float]

    def as_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "version": self.version, "metrics": self.metrics}


def live_baseline(ctx: Context, app: str, env: str, release_id: int | None) -> Baseline | None:
    """The live release's last passing eval in `env`; None when nothing is live or it never
    passed a gate here (deployed before the gate existed)."""
    if release_id is None:
        return None
    with ctx.db.read() as conn:
        for seq, payload in audit_reads.latest_payloads(conn, EVAL_EVENT, app=app, env=env):
            if payload.get("release_id") != release_id:
                continue
            raw = payload.get("metrics")
            values = raw.items() if isinstance(raw, dict) else ()
            metrics = {k: v for k, x in values if (v := finite(x)) is not None}
            return Baseline(seq, str(payload.get("version", "?")), metrics)
    return None


@dataclass(frozen=True)
class EvalRun:
    """One app's gate in one run: what to run it on and what to hold it to."""

    ctx: Context
    env: str
    gate: EvalGate
    target: Target
    color: Color
    spec: ReleaseSpec
    release_id: int
    baseline: Baseline | None

    def __call__(self, evidence: dict[str, Any]) -> str:
        """Run the evaluator and judge it, filling `evidence`; AdapterError when it fails."""
        spec, where = self.spec, f"eval {self.spec.app}/{self.env}"
        url = self.target.color_endpoint(self.color)
        values = {
            "url": url, "app": spec.app, "env": self.env, "version": spec.version,
            "commit": spec.commit, "digest": spec.digest, "color": self.color,
        }  # fmt: skip
        try:
            argv = render_argv(self.gate.command, values)
        except ValueError as exc:  # config check refuses these; a stale config may not
            raise AdapterError(f"{where}: command: {exc}") from None
        evidence.update(
            release_id=self.release_id, version=spec.version, color=self.color, url=url,
            command=argv, thresholds=self.gate.thresholds(),
            baseline=None if self.baseline is None else self.baseline.as_dict(),
            verdict="failed",
        )  # fmt: skip
        done = self.ctx.commands.run(
            argv, timeout=self.gate.timeout, cwd=self.ctx.workspace, label=where
        )
        if done.timed_out:
            raise AdapterError(f"{where}: the evaluator timed out after {self.gate.timeout:g}s")
        if done.returncode != 0:
            stderr = redact_text(done.stderr, self.ctx.secrets)
            evidence["stderr"] = stderr[-_OUTPUT_KEPT:]
            last = one_line(stderr.strip().splitlines()[-1] if stderr.strip() else "no output", 200)
            raise AdapterError(f"{where}: the evaluator exited {done.returncode}: {last}")
        try:
            measured = read_metrics(done.stdout)
        except EvalOutputError as exc:
            raise AdapterError(f"{where}: {exc}") from None
        live = "live" if self.baseline is None else self.baseline.version
        recorded = None if self.baseline is None else self.baseline.metrics
        verdict = judge(self.gate, measured, recorded, live)
        evidence.update(
            metrics=verdict.measured(),
            checks=[c.as_dict() for c in verdict.checks],
            verdict="passed" if verdict.ok else "failed",
        )
        if not verdict.ok:
            raise AdapterError(f"{spec.app} {spec.version} on {self.color}: {verdict.summary()}")
        return verdict.summary()
