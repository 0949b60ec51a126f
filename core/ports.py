"""Interfaces the core needs from the outside world; adapters implement them.

Only plain data crosses a port (dataclasses below), so core never sees an SDK object. Every method
that changes a live target takes the run's fencing `epoch`: a target remembers the highest epoch it
has seen and refuses a lower one with `StaleEpoch`, so a runner that stalled past its lease cannot
switch anything.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, Literal, Protocol, runtime_checkable

from shipdeck.core.errors import AdapterError

Color = Literal["blue", "green"]


def other_color(color: Color | None) -> Color:
    return "green" if color == "blue" else "blue"


class StaleEpoch(AdapterError):
    """A target refused a call whose fencing epoch is older than one it has already seen."""

    kind = "stale_epoch"


# --- git -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CommitInfo:
    sha: str
    author: str
    date: datetime
    subject: str


class GitPort(Protocol):
    def resolve(self, repo: Path, ref: str) -> str:
        """Full 40-hex sha of `ref` in `repo`; AdapterError naming repo and ref if unknown."""

    def commits_between(self, repo: Path, old: str | None, new: str) -> list[CommitInfo]:
        """Commits reachable from `new` but not `old` (all of `new`'s history if old is None),
        newest first."""

    def count_pairs(
        self, repo: Path, pairs: Collection[tuple[str, str]]
    ) -> dict[tuple[str, str], int]:
        """len(commits_between(repo, old, new)) for every (old, new) pair, in one history walk of
        the repository; pairs naming a commit the repository lacks are left out (shown as
        unknown). AdapterError if the repository is missing or unreadable."""


# --- artifacts -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ArtifactFile:
    path: str
    size: int
    sha256: str | None = None  # LFS sha256 or content hash, when the source knows it


@dataclass(frozen=True)
class ResolvedArtifact:
    """An artifact pinned to an exact version.

    `resolved` is the exact URI (hf://org/model@<commit sha>, s3://bucket/key?versionId=...),
    `digest` a stable content identifier (commit sha, ETag), `files` what it consists of.
    """

    name: str
    uri: str
    resolved: str
    digest: str
    files: tuple[ArtifactFile, ...] = ()
    meta: Mapping[str, Any] = field(default_factory=dict)

    def total_size(self) -> int:
        return sum(f.size for f in self.files)


@dataclass(frozen=True)
class ArtifactDiff:
    name: str
    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[str, ...]
    size_delta: int

    @property
    def changed_count(self) -> int:
        return len(self.added) + len(self.removed) + len(self.changed)


class ArtifactSource(Protocol):
    """Resolves URIs of one scheme (hf, s3) to exact versions and describes them."""

    scheme: str

    def resolve(self, name: str, uri: str) -> ResolvedArtifact: ...

    def describe(self, artifact: ResolvedArtifact, lines: int = 10) -> list[str]:
        """A few human lines (model card head, object metadata)."""

    def promote(self, artifact: ResolvedArtifact, destination: str) -> ResolvedArtifact:
        """Copy the artifact into `destination` (an environment's bucket); return the copy."""

    def fetch(self, artifact: ResolvedArtifact, path: str, into: BinaryIO, max_bytes: int) -> None:
        """Write the bytes of file `path` of the pinned `artifact` into `into`, never more than
        `max_bytes` (AdapterError beyond it): the model gates read pickles and cards this way."""


@dataclass(frozen=True)
class ScanOutcome:
    """What a weight scanner found in one file, read as opcodes, never loaded."""

    dangerous: tuple[str, ...]  # "module.name" of each dangerous global it imports
    error: str | None = None  # the file could not be read to the end as a pickle


class WeightScanner(Protocol):
    """Scans pickle-based weights (raw pickles and PyTorch zip archives) without loading them."""

    def scan(self, path: str, data: BinaryIO) -> ScanOutcome: ...


# --- blue/green targets ----------------------------------------------------------------------


@dataclass(frozen=True)
class ReleaseSpec:
    """What a target needs to stage a release: never secrets, only the manifest's facts."""

    app: str
    version: str
    commit: str
    digest: str
    config: Mapping[str, Any] = field(default_factory=dict)
    artifacts: tuple[ResolvedArtifact, ...] = ()


@dataclass(frozen=True)
class Health:
    ok: bool
    detail: str
    version: str | None = None


class Target(Protocol):
    """One app in one environment, deployed blue/green behind a traffic switch."""

    def live_color(self) -> Color | None:
        """The color traffic goes to now, read from the real world (not from shipdeck's DB)."""

    def staged_version(self, color: Color) -> str | None: ...

    def endpoint(self) -> str | None:
        """Where users reach the live color (the front port / listener URL)."""

    def color_endpoint(self, color: Color) -> str:
        """The base URL that reaches `color` itself, live or not (what an eval gate tests on the
        staged color before the switch); AdapterError naming the adapter if it has no such URL."""

    def stage(self, color: Color, release: ReleaseSpec, epoch: int) -> None:
        """Start `release` on `color` without sending it traffic. Idempotent."""

    def health(self, color: Color) -> Health: ...

    def switch(self, color: Color, epoch: int) -> None:
        """Send new traffic to `color` atomically; in-flight requests complete. Idempotent."""

    def stop_idle(self, color: Color, epoch: int) -> None:
        """Stop `color` once it no longer takes traffic. Idempotent; refuses the live color."""

    def restart(self, epoch: int) -> None:
        """Restart the live color in place (day-2)."""

    def weights(self) -> TrafficWeights | None:
        """The target's traffic weights, None where it can only switch all at once (a canary
        is then refused: `config check` and `plan run` exit 4 naming the app and environment)."""

    def close(self) -> None:
        """Release client resources (not the deployed processes)."""


class TrafficWeights(Protocol):
    """Splits traffic between the live color and the other one (the canary), for the canary
    strategy. A `switch` makes the canary live and ends the split (weight() is 0 afterwards)."""

    def set_weight(self, canary_color: Color, percent: int, epoch: int) -> None:
        """Send `percent` (0 to 100) of new traffic to `canary_color`, the rest to the live color;
        0 sends it all back. Idempotent; refuses a stale epoch (StaleEpoch)."""

    def weight(self) -> int:
        """The percent of traffic the non-live color gets now, read from the real world."""


@runtime_checkable
class SplitUnconfigured(Protocol):
    """A target whose weights() is None only because of its settings (a command target without
    a `weight` key): `config check` and `plan run` add the reason to their refusal, so the
    user learns which setting to add, not only that the adapter cannot split."""

    def why_no_weights(self) -> str:
        """The missing setting, named as a key of the target's table."""


class MetricsSource(Protocol):
    """Where a canary's analysis reads its metrics (Prometheus, ...): one color's values over
    the last `window` seconds."""

    def sample(self, app: str, env: str, color: Color, window: float) -> dict[str, float]:
        """Metric name -> value for `color` of `app` in `env`; a metric it has no data for is
        left out. AdapterError when the source cannot be asked."""


class MachineProcesses(Protocol):
    """A target whose processes run on this machine (the `local` adapter): what `demo stop`
    ends and what the TUI mentions on quit, because they outlive every shipdeck command."""

    def processes(self) -> dict[str, int]:
        """Name -> pid of its processes that are running now."""

    def teardown(self) -> None:
        """Stop all of them and forget the switch: nothing is live afterwards. Idempotent."""


# (app, env, adapter name, adapter settings) -> a Target for that app in that environment.
TargetFactory = Callable[[str, str, str, Mapping[str, Any]], Target]
# The same arguments -> the target's live color, read from its state where the adapter keeps it in
# files (no Target built); AdapterError when that state is unreadable.
LiveColorReader = Callable[[str, str, str, Mapping[str, Any]], Color | None]


# --- day-2 tasks -----------------------------------------------------------------------------


class LogSource(Protocol):
    def tail(self, lines: int | None = None, since: datetime | None = None) -> list[str]:
        """Last `lines` lines (or those since `since`), raw: callers strip escapes."""

    def follow(self, stop: threading.Event) -> Iterator[str]:
        """New lines as they arrive until `stop` is set."""


@dataclass(frozen=True)
class TokenLimits:
    tpm: int | None
    rpm: int | None


class TokenLimitStore(Protocol):
    def read(self) -> TokenLimits: ...

    def write(self, limits: TokenLimits) -> None:
        """Apply new limits (None keeps a value), then run the reload hook if configured."""


# --- commands --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CommandResult:
    """How a command ended: its exit status (None when it was killed at its timeout) and the
    tail of each stream, capped so a chatty command cannot grow memory without bound."""

    returncode: int | None
    stdout: str
    stderr: str
    timed_out: bool = False


class CommandRunner(Protocol):
    """Runs a configured command (checklist commands, eval gates): an argv, never a shell, in a
    process group of its own that is killed whole at the timeout, so nothing it started
    outlives it."""

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        label: str = "command",
    ) -> CommandResult:
        """Run argv to its end or its timeout; `env` entries are added to the inherited
        environment. AdapterError starting with `label` when it cannot start at all."""


class Notifier(Protocol):
    def send(self, event: str, payload: Mapping[str, Any]) -> None:
        """Deliver one notification; raise AdapterError on failure (callers audit, never block)."""


class Clock(Protocol):
    """Time as the engine sees it: wall time for records and policy, monotonic time and sleep for
    its waits (health pauses, holds, warm delays, following a run), so tests drive all of it."""

    def now(self) -> datetime:
        """Timezone-aware UTC now."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (deadlines and elapsed time)."""

    def sleep(self, seconds: float) -> None:
        """Wait `seconds` (a fake clock just moves on)."""


# --- the runner process ----------------------------------------------------------------------


@dataclass(frozen=True)
class RunnerLaunch:
    """What a detached runner starts with: it continues `plan_id` at `epoch` as `actor`, writing
    its lines to `log_path`. The database URL (it may hold a password) and the one-time runner
    token (core.services.runner_token) never go in argv, and stay out of this dataclass's repr."""

    workspace: Path
    actor: str
    plan_id: str
    epoch: int
    log_path: Path
    database_url: str = field(repr=False)
    token: str = field(repr=False)


class RunnerProcess(Protocol):
    """A launched runner as the launching process sees it (`plan run --wait` follows it)."""

    @property
    def pid(self) -> int: ...

    def alive(self) -> bool:
        """False once the process has exited (its run may still be `running`: reconcile)."""


@dataclass(frozen=True)
class WaiterLaunch:
    """What the waiter of a queued plan (`plan run --when-open`) starts with; it acts as whoever
    runs it, and only for a plan that person queued."""

    workspace: Path
    plan_id: str
    log_path: Path
    database_url: str = field(repr=False)


class RunLauncher(Protocol):
    """Starts shipdeck's detached processes: the runner of a started run, so the command that
    took the lease can return while the run goes on, and the waiter of a queued plan."""

    def launch(self, request: RunnerLaunch) -> RunnerProcess: ...

    def launch_waiter(self, request: WaiterLaunch) -> RunnerProcess: ...


class ProcessIdentity(Protocol):
    """Which process holds a lease: an id naming one process for the machine's lifetime (a pid
    alone gets reused), and whether the process an id names is provably gone, which lets
    reconcile take over a dead runner's run at once instead of when its lease expires."""

    def runner_id(self, pid: int | None = None) -> str:
        """The id of process `pid` (None: this process)."""

    def runner_dead(self, runner: str | None) -> bool:
        """True only when `runner` provably is gone; an id of another machine (or boot), or one
        that cannot be read, is never dead: its lease then protects its run until it expires."""


# --- audit checkpoints -----------------------------------------------------------------------


class CheckpointStore(Protocol):
    """Somewhere outside the database that keeps chain heads (a file, an S3 object)."""

    location: str

    def read(self) -> str:
        """All checkpoint lines written so far ('' if none)."""

    def append(self, line: str) -> None: ...
