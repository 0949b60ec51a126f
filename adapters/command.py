"""Blue/green through the team's own commands: one argv template per step.

For teams whose deploy already lives in scripts (systemd units, a Kubernetes CLI, a vendor tool):
shipdeck keeps the plan, the policy and the record, and calls their commands at each step.

Settings (argv lists; placeholders {app} {env} {color} {version} {commit} {digest} {epoch}
{config[KEY]} are filled inside items, never through a shell):
    stage, health, switch, live_color   required; live_color prints "blue", "green" or nothing
    stop_idle, restart                  optional
    weight                              optional: sends {weight} percent (0-100) of traffic to
                                        the canary {color}, the rest to the live one; without
                                        it the target cannot run a canary
    weight_read                         optional: prints the percent the non-live color gets
    timeout                             seconds per command, default 60
    endpoint                            the URL users reach, shown in status
    cwd                                 working directory for the commands

State in `state_dir`: `epoch` (highest fencing epoch seen), `staged.json` (the release each
color was given, so later steps can use its {version} and {config[KEY]}), `weight.json` (the
canary weight last set, see set_weight), `target.lock`.

Canary: the `weight` command runs under the epoch fence like `switch`; the weight is recorded as
pending before it runs and as done after it exits 0, so weight() reads back what was set, or says
it is unknown when a run died or failed in between (the way back then sets 0 again, which the
command must accept at any time, as `switch` must be idempotent). With `weight_read` configured,
the team's system is asked instead and confirms each weight set, as live_color confirms a switch.
A switch forgets the record: the team's switch command must end the split.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from shipdeck.adapters.argv import (
    CommandTimedOut,
    CompletedRun,
    placeholders,
    render_argv,
    run_argv,
)
from shipdeck.adapters.canary_split import split_problem, weight_problem
from shipdeck.adapters.fencing import EpochFence
from shipdeck.adapters.local.state_files import atomic_write_text, read_state
from shipdeck.core.domain.redact import last_line, strip_lines
from shipdeck.core.errors import AdapterError, ConfigError
from shipdeck.core.ports import Color, Health, ReleaseSpec, TrafficWeights
from shipdeck.core.storage.files import make_dirs

log = logging.getLogger(__name__)

STEPS = ("stage", "health", "switch", "live_color", "stop_idle", "restart", "weight", "weight_read")
REQUIRED_STEPS = ("stage", "health", "switch", "live_color")
PLACEHOLDERS = frozenset({"app", "env", "color", "version", "commit", "digest", "epoch"})
STEP_PLACEHOLDERS = {"weight": PLACEHOLDERS | {"weight"}}
_PERCENT = re.compile(r"[0-9]{1,3}")


def _facts(release: ReleaseSpec) -> dict[str, Any]:
    """What later steps may name about the release a color was given ({version}, {config[KEY]}),
    as recorded in staged.json."""
    return {
        "version": release.version,
        "commit": release.commit,
        "digest": release.digest,
        "config": dict(release.config),
    }


class CommandTarget:
    """One app in one environment whose steps are the team's own commands."""

    def __init__(
        self, app: str, env: str, settings: Mapping[str, Any], state_dir: Path | str
    ) -> None:
        self.app = app
        self.env = env
        self.label = f"command target {app}/{env}"
        self.templates = {step: self._template(settings, step) for step in STEPS}
        try:
            self.timeout = float(settings.get("timeout", 60))
        except (TypeError, ValueError):
            self.timeout = 0.0
        if self.timeout <= 0:
            raise ConfigError(f"{self.label}: settings.timeout must be a positive number")
        self.url: str | None = settings.get("endpoint")
        self.cwd: str | None = settings.get("cwd")
        self.state_dir = Path(state_dir)
        self.fence = EpochFence(self.state_dir, self.label)
        self._staged_path = self.state_dir / "staged.json"
        self._weight_path = self.state_dir / "weight.json"
        # The last run of each step, control sequences stripped: what the caller shows or audits.
        self.outputs: dict[str, CompletedRun] = {}

    def _template(self, settings: Mapping[str, Any], step: str) -> list[str] | None:
        template = settings.get(step)
        if template is None:
            if step in REQUIRED_STEPS:
                raise ConfigError(f"{self.label}: settings.{step} is required (an argv list)")
            return None
        if (
            not isinstance(template, list)
            or not template
            or not all(isinstance(item, str) for item in template)
        ):
            raise ConfigError(
                f"{self.label}: settings.{step} must be a non-empty list of strings (an argv), "
                'e.g. ["./deploy.sh", "{color}"]'
            )
        try:
            used = placeholders(template)
        except ValueError as exc:
            raise ConfigError(f"{self.label}: settings.{step}: {exc}") from None
        allowed = STEP_PLACEHOLDERS.get(step, PLACEHOLDERS)
        for name in sorted(used):
            if name not in allowed and not (name.startswith("config[") and name != "config"):
                raise ConfigError(f"{self.label}: settings.{step}: unknown placeholder {{{name}}}")
        return template

    # --- state ---

    def _staged(self) -> dict[str, Any]:
        return read_state(self._staged_path, self.label)

    def _record(self, color: Color, release: ReleaseSpec | None) -> None:
        staged = self._staged()
        if release is None:
            staged.pop(color, None)
        else:
            staged[color] = _facts(release)
        make_dirs(self.state_dir)
        atomic_write_text(self._staged_path, json.dumps(staged, indent=2, default=str) + "\n")

    # --- running steps ---

    def _values(
        self, color: Color | None, epoch: int | None, release: Mapping[str, Any] | None = None
    ) -> dict[str, object]:
        if release is None and color is not None:
            release = self._staged().get(color)
        release = release or {}
        return {
            "app": self.app,
            "env": self.env,
            "color": color,
            "epoch": epoch,
            "version": release.get("version"),
            "commit": release.get("commit"),
            "digest": release.get("digest"),
            "config": release.get("config") or {},
        }

    def _run(self, step: str, values: Mapping[str, object]) -> CompletedRun:
        template = self.templates[step]
        if template is None:
            raise AdapterError(f"{self.label}: no {step} command configured")
        try:
            argv = render_argv(template, values)
        except ValueError as exc:
            raise AdapterError(f"{self.label}: {step}: {exc}") from None
        raw = run_argv(argv, self.timeout, cwd=self.cwd, label=f"{self.label}: {step}")
        run = CompletedRun(
            raw.returncode,
            "\n".join(strip_lines(raw.stdout)),
            "\n".join(strip_lines(raw.stderr)),
            raw.duration,
        )
        self.outputs[step] = run
        log.info("%s: %s exited %d in %.2fs", self.label, step, run.returncode, run.duration)
        for line in (run.stdout + "\n" + run.stderr).strip().splitlines():
            log.debug("%s: %s: %s", self.label, step, line)
        return run

    def _must(self, step: str, values: Mapping[str, object]) -> CompletedRun:
        run = self._run(step, values)
        if run.returncode != 0:
            raise AdapterError(
                f"{self.label}: {step} failed (exit {run.returncode}): {last_line(run.stderr, run.stdout)}"
            )
        return run

    # --- Target ---

    def live_color(self) -> Color | None:
        run = self._must("live_color", self._values(None, None))
        said = run.stdout.strip().lower()
        if said in ("", "none"):
            return None
        if said == "blue":
            return "blue"
        if said == "green":
            return "green"
        raise AdapterError(
            f"{self.label}: live_color printed {said[:60]!r}, expected blue, green or nothing"
        )

    def staged_version(self, color: Color) -> str | None:
        version = self._staged().get(color, {}).get("version")
        return str(version) if version is not None else None

    def endpoint(self) -> str | None:
        return self.url

    def color_endpoint(self, color: Color) -> str:
        raise AdapterError(
            f"{self.label}: a command target has no URL for one color (only the switch's "
            "`endpoint`), so it cannot be evaluated before the switch; use a local or nginx target"
        )

    def stage(self, color: Color, release: ReleaseSpec, epoch: int) -> None:
        with self.fence.hold(epoch):
            if self.live_color() == color:
                raise AdapterError(f"{self.label}: refusing to stage on {color}: it is live")
            self._must("stage", self._values(color, epoch, _facts(release)))
            self._record(color, release)

    def health(self, color: Color) -> Health:
        try:
            run = self._run("health", self._values(color, None))
        except CommandTimedOut:
            return Health(ok=False, detail=f"health check timed out after {self.timeout:g}s")
        detail = (
            last_line(run.stderr, run.stdout)
            if run.stdout or run.stderr
            else f"exit {run.returncode}"
        )
        return Health(ok=run.returncode == 0, detail=detail)

    def switch(self, color: Color, epoch: int) -> None:
        """Run the switch command, then read live_color back: exit 0 alone proves nothing."""
        with self.fence.hold(epoch):
            self._must("switch", self._values(color, epoch))
            now = self.live_color()
            if now != color:
                raise AdapterError(
                    f"{self.label}: switch to {color} exited 0 but live_color says {now}"
                )
            with contextlib.suppress(FileNotFoundError):
                self._weight_path.unlink()  # the switch ended any split

    def stop_idle(self, color: Color, epoch: int) -> None:
        with self.fence.hold(epoch):
            if self.live_color() == color:
                raise AdapterError(f"{self.label}: refusing to stop {color}: it is live")
            if self.templates["stop_idle"] is not None:
                self._must("stop_idle", self._values(color, epoch))
            self._record(color, None)

    def restart(self, epoch: int) -> None:
        with self.fence.hold(epoch):
            color = self.live_color()
            if color is None:
                raise AdapterError(f"{self.label}: nothing is live to restart")
            self._must("restart", self._values(color, epoch))

    def weights(self) -> TrafficWeights | None:
        """The target itself when a `weight` command is configured; else it switches all
        traffic at once (why_no_weights tells config check which setting is missing)."""
        return self if self.templates["weight"] is not None else None

    def why_no_weights(self) -> str:
        return "the `weight` key is not set: an argv list with {weight}"

    # --- TrafficWeights ---

    def set_weight(self, canary_color: Color, percent: int, epoch: int) -> None:
        if why := weight_problem(percent):
            raise AdapterError(f"{self.label}: {why}")
        with self.fence.hold(epoch):
            if why := split_problem(percent, canary_color, self.live_color()):
                raise AdapterError(f"{self.label}: {why}")
            record = {"color": canary_color, "weight": percent, "epoch": epoch}
            self._record_weight({**record, "done": False})
            self._must("weight", {**self._values(canary_color, epoch), "weight": percent})
            if self.templates["weight_read"] is not None and (now := self.weight()) != percent:
                raise AdapterError(
                    f"{self.label}: weight {percent}% for {canary_color} exited 0 "
                    f"but weight_read says {now}%"
                )
            self._record_weight({**record, "done": True})

    def weight(self) -> int:
        """weight_read's answer when configured, else the weight last set (0 before any)."""
        if self.templates["weight_read"] is not None:
            said = self._must("weight_read", self._values(None, None)).stdout.strip()
            if not _PERCENT.fullmatch(said) or int(said) > 100:
                raise AdapterError(
                    f"{self.label}: weight_read printed {said[:60]!r}, expected 0 to 100"
                )
            return int(said)
        record = read_state(self._weight_path, self.label)
        weight = record.get("weight", 0)
        if isinstance(weight, bool) or not isinstance(weight, int):
            raise AdapterError(f"{self.label}: unreadable weight {weight!r} in {self._weight_path}")
        if record and not record.get("done"):
            raise AdapterError(
                f"{self.label}: the weight is unknown: setting {weight}% on "
                f"{record.get('color')} did not finish"
            )
        return weight

    def _record_weight(self, record: Mapping[str, Any]) -> None:
        make_dirs(self.state_dir)
        atomic_write_text(self._weight_path, json.dumps(record) + "\n")

    def close(self) -> None:
        """Nothing held between calls: every step is its own process."""
