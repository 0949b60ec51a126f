"""Blue/green through the team's own commands: one argv template per step.

For teams whose deploy already lives in scripts (systemd units, a Kubernetes CLI, a vendor tool):
shipdeck keeps the plan, the policy and the record, and calls their commands at each step.

Settings (argv lists; placeholders {app} {env} {color} {version} {commit} {digest} {epoch}
{config[KEY]} are filled inside items, never through a shell):
    stage, health, switch, live_color   required; live_color prints "blue", "green" or nothing
    stop_idle, restart                  optional
    timeout                             seconds per command, default 60
    endpoint                            the URL users reach, shown in status
    cwd                                 working directory for the commands

State in `state_dir`: `epoch` (highest fencing epoch seen), `staged.json` (the release each
color was given, so later steps can use its {version} and {config[KEY]}), `target.lock`.
"""

from __future__ import annotations

import json
import logging
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
from shipdeck.adapters.fencing import EpochFence
from shipdeck.adapters.local.processes import atomic_write_text, read_state
from shipdeck.core.domain.redact import last_line, strip_lines
from shipdeck.core.errors import AdapterError, ConfigError
from shipdeck.core.ports import Color, Health, ReleaseSpec, TrafficWeights
from shipdeck.core.storage.files import make_dirs

log = logging.getLogger(__name__)

STEPS = ("stage", "health", "switch", "live_color", "stop_idle", "restart")
REQUIRED_STEPS = ("stage", "health", "switch", "live_color")
PLACEHOLDERS = frozenset({"app", "env", "color", "version", "commit", "digest", "epoch"})


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
        for name in sorted(used):
            if name not in PLACEHOLDERS and not (name.startswith("config[") and name != "config"):
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
        """No traffic split yet: this target switches all traffic at once."""
        return None

    def close(self) -> None:
        """Nothing held between calls: every step is its own process."""
