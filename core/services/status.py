"""What is in each environment versus the latest release: the headline view.

Reads everything it needs in one read transaction (latest releases, live deployments, cached
commit distances, leases, running canaries' weight steps) and asks git only for pairs of commits it
has never counted, so status stays fast with hundreds of apps (bench/status_json.py). The
dashboard's first frame does not wait for git either: it asks with `count_missing=False`, shows
such a cell as still counting, and asks again for the counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

from shipdeck.core.domain.plan import PlanBody
from shipdeck.core.domain.redact import Redacted, redact, redact_text
from shipdeck.core.domain.release import (
    ArtifactChange,
    ConfigChange,
    Manifest,
    artifact_changes,
    config_changes,
)
from shipdeck.core.domain.windows import WindowState, window_state
from shipdeck.core.errors import AdapterError, NotFoundError
from shipdeck.core.ports import CommitInfo, ProcessIdentity
from shipdeck.core.services.context import Context
from shipdeck.core.services.plans import QueuedView, waiting_in
from shipdeck.core.services.releases import highest_rows, repo_path
from shipdeck.core.storage import distances, journal, leases, plans, releases
from shipdeck.core.storage.db import Tx
from shipdeck.core.storage.deployments import LiveDeployment, last_outcomes
from shipdeck.core.storage.deployments import live as live_deployments  # others read it here
from shipdeck.core.storage.releases import ReleaseRow

# Adapters whose live color is a local file read: cheap enough to check on every status call.
_CHEAP_PROBES = frozenset({"local", "nginx"})


@dataclass(frozen=True)
class _Encoded:
    """A release's manifest as stored, decoded only when a cell shows what changed (the digests
    differ): decoding every cell's was a tenth of status at a thousand apps
    (bench/status_json.py)."""

    encoded: bytes = field(repr=False, compare=False)

    @cached_property
    def manifest(self) -> Manifest:
        return Manifest.decode(self.encoded)


@dataclass(frozen=True)
class Deployed(_Encoded):
    version: str
    commit: str
    digest: str
    color: str | None
    at: datetime
    by: str
    plan_id: str | None = None


@dataclass(frozen=True)
class Latest(_Encoded):
    version: str
    commit: str
    digest: str


@dataclass(frozen=True)
class LockInfo:
    holder: str
    since: datetime | None
    plan_id: str | None
    apps: tuple[str, ...] = ()  # what the plan holding the lease ships: only those are running


# The one word a cell's state comes down to, decided here so the dashboard, its legend and
# `status -o json` ("mark") cannot disagree. Order matters: the first that applies wins.
MARKS: dict[str, str] = {
    "drift": "the live colour is not the one recorded: someone switched it outside shipdeck",
    "canary": "a canary of the running plan takes part of the traffic here (canary_weight)",
    "running": "a plan is shipping this app to this environment now",
    "locked": "the environment is locked outside a run",
    "last_failed": "the release shown is live and healthy; the last run to it failed",
    "failed": "nothing is live; the last run failed or was rolled back",
    "live": "the release shown is live and healthy (its colour answers)",
    "none": "never deployed here",
}


@dataclass
class Cell:
    app: str
    env: str
    deployed: Deployed | None
    latest: Latest | None
    commits_behind: int | None
    endpoint: str | None
    window: WindowState
    lock: LockInfo | None
    drift: bool = False
    live_color: str | None = None
    commits: list[CommitInfo] = field(default_factory=list)
    last_outcome: str | None = None
    queued: QueuedView | None = None  # a plan shipping this app waits for the window to open
    canary_weight: int | None = None  # a running canary's share of traffic (from the journal)
    counting: bool = False  # commits_behind not counted yet (status(count_missing=False))

    @cached_property
    def artifacts(self) -> list[ArtifactChange]:
        """What the latest release changes in the live one's artifacts, worked out when asked:
        the dashboard draws only its visible rows, and decoding two manifests per cell was most
        of its first frame's status at a thousand apps (bench/tui_start.py)."""
        both = self._manifests()
        return artifact_changes(both[0].artifacts, both[1].artifacts) if both else []

    @cached_property
    def config(self) -> list[ConfigChange]:
        """What the latest release changes in the live one's config (when asked, as artifacts)."""
        both = self._manifests()
        return config_changes(both[0].config, both[1].config) if both else []

    def _manifests(self) -> tuple[Manifest, Manifest] | None:
        """The live and the latest manifest, when their digests say they differ."""
        d, latest = self.deployed, self.latest
        if d is None or latest is None or d.digest == latest.digest:
            return None
        return d.manifest, latest.manifest

    @property
    def mark(self) -> str:
        """One key of MARKS: what matters most about this cell."""
        if self.drift:
            return "drift"
        if self.lock is not None and self.lock.plan_id and self.app in self.lock.apps:
            return "running" if self.canary_weight is None else "canary"
        if self.lock is not None and not self.lock.plan_id:
            return "locked"
        failed = self.last_outcome in ("failed", "rolled_back")
        if self.deployed is None:
            return "failed" if failed else "none"
        return "last_failed" if failed else "live"

    def as_dict(self) -> dict[str, Any]:
        d = self.deployed
        latest = self.latest
        return {
            "env": self.env,
            "deployed": None
            if d is None
            else {
                "version": d.version,
                "commit": d.commit,
                "digest": d.digest,
                "color": d.color,
                "at": d.at.isoformat(),
                "by": d.by,
            },
            "latest": None
            if latest is None
            else {"version": latest.version, "commit": latest.commit, "digest": latest.digest},
            "commits_behind": self.commits_behind,
            "commits": [
                {
                    "sha": c.sha,
                    "author": redact_text(c.author),
                    "date": c.date.isoformat(),
                    "subject": redact_text(c.subject),
                }
                for c in self.commits
            ],
            "artifact_changes": redact([a.as_dict() for a in self.artifacts]),
            "config_changes": redact([c.as_dict() for c in self.config]),
            "drift": self.drift,
            "live_color": self.live_color,
            "last_outcome": self.last_outcome,
            "mark": self.mark,
            "endpoint": self.endpoint,
            "window": {**self.window.as_dict(), "reason": _free_text(self.window.reason)},
            "queued": redact(self.queued.as_dict()) if self.queued else None,
            "canary_weight": self.canary_weight,
            "lock": None
            if self.lock is None
            else redact(
                {
                    "holder": self.lock.holder,
                    "since": self.lock.since.isoformat() if self.lock.since else None,
                    "plan": self.lock.plan_id,
                    "apps": list(self.lock.apps),
                }
            ),
        }


@dataclass
class AppStatus:
    app: str
    owner: str
    oncall: str
    cells: list[Cell]

    def as_dict(self) -> dict[str, Any]:
        return {
            "app": self.app,
            "owner": redact_text(self.owner),
            "oncall": redact_text(self.oncall),
            "environments": [c.as_dict() for c in self.cells],
        }


def _free_text(text: str | None) -> str | None:
    return None if text is None else redact_text(text)


def status_document(workspace: str, apps: list[AppStatus]) -> Redacted:
    """`status -o json`'s document. Redacted field by field where secrets can be (free text from
    the workspace file, remote text, release config and artifacts): the rest are names, versions,
    hashes, times and states that the workspace and the stores constrain."""
    return Redacted(workspace=redact_text(workspace), apps=[a.as_dict() for a in apps])


def latest_releases(conn: Tx, apps: Sequence[str] | None = None) -> dict[str, ReleaseRow]:
    """Per app, its highest version (not its last recorded one)."""
    ids = [r.id for r in highest_rows(releases.versions(conn, apps)).values()]
    return {r.app: r for r in releases.by_ids(conn, ids)}


def _plan_apps(conn: Tx, plan_ids: list[str]) -> dict[str, list[str]]:
    """Plan id -> the apps it ships (one query for all)."""
    return {pid: PlanBody.decode(body).apps for pid, body in plans.bodies(conn, plan_ids).items()}


def active_locks(conn: Tx, now: datetime) -> dict[str, LockInfo]:
    """Held leases per environment, each with the apps of the plan holding it."""
    rows = [r for r in leases.held(conn) if r.expires_at is None or r.expires_at > now]
    apps = _plan_apps(conn, [r.plan_id for r in rows if r.plan_id])
    return {
        r.env: LockInfo(r.holder, r.since, r.plan_id, tuple(apps.get(r.plan_id or "", ())))
        for r in rows
        if r.holder is not None  # always, for a held lease: says so to the type checker
    }


def canary_weights(conn: Tx, locks: dict[str, LockInfo]) -> dict[tuple[str, str], int]:
    """(app, env) -> the weight of each canary the running plans' journals show now."""
    env_of = {lock.plan_id: env for env, lock in locks.items() if lock.plan_id}
    if not env_of:
        return {}
    from shipdeck.core.domain.canary import journal_weights  # only while a plan runs: ~6 ms

    rows = journal.canary_steps(conn, env_of)
    return {
        (app, env): weight
        for plan_id, env in env_of.items()
        for app, weight in journal_weights(
            (r.app, r.step, r.state, r.detail) for r in rows if r.plan_id == plan_id
        ).items()
    }


def queued_cells(
    conn: Tx, processes: ProcessIdentity, envs: Sequence[str]
) -> dict[tuple[str, str], QueuedView]:
    """(app, env) -> the soonest queued plan that ships the app there."""
    waiting = waiting_in(conn, processes, envs)
    apps = _plan_apps(conn, [q.plan_id for q in waiting])
    out: dict[tuple[str, str], QueuedView] = {}
    for q in waiting:  # soonest first: the first to claim a cell keeps it
        for a in apps.get(q.plan_id, ()):
            out.setdefault((a, q.env), q)
    return out


def _count(ctx: Context, pairs: set[tuple[str, str, str]]) -> dict[tuple[str, str, str], int]:
    """Commit counts for (repo, old, new) pairs the cache does not hold, from git (then cached)."""
    by_repo: dict[str, list[tuple[str, str]]] = {}
    for repo, old, new in sorted(pairs):
        by_repo.setdefault(repo, []).append((old, new))
    fresh: dict[tuple[str, str, str], int] = {}
    for repo, repo_pairs in by_repo.items():
        try:  # one history walk serves every environment of the repository
            counts = ctx.git.count_pairs(ctx.workspace / repo, repo_pairs)
        except AdapterError:
            continue  # repo gone: shown as unknown, not cached
        # A pair git does not know (history rewritten) is left out: unknown, not cached.
        fresh.update({(repo, old, new): n for (old, new), n in counts.items()})
    if fresh:
        with ctx.db.write() as conn:
            distances.remember(conn, fresh)
    return fresh


@dataclass(frozen=True)
class _Recorded:
    """What status reads from the database in one transaction, and what it derives from that."""

    deployed: dict[tuple[str, str], LiveDeployment]
    latest: dict[str, Latest]
    outcomes: dict[tuple[str, str], str]
    locks: dict[str, LockInfo]
    queued: dict[tuple[str, str], QueuedView]
    windows: dict[str, WindowState]
    distances: dict[tuple[str, str, str], int]
    weights: dict[tuple[str, str], int]
    uncounted: set[tuple[str, str, str]]  # left to a later call (count_missing=False)


def status(
    ctx: Context,
    *,
    env: str | None = None,
    app: str | None = None,
    with_commits: bool = False,
    count_missing: bool = True,
) -> list[AppStatus]:
    """Every app in every environment (or the one asked for). `count_missing=False` does not ask
    git for commit counts the cache does not hold: those cells say `counting`, for a caller that
    shows the rest first and asks again (the dashboard)."""
    cfg = ctx.config
    if env is not None and env not in cfg.environments:
        raise NotFoundError(
            f"--env: unknown environment '{env}' (known: {', '.join(cfg.env_order())})"
        )
    if app is not None and app not in cfg.apps:
        raise NotFoundError(f"--app: unknown app '{app}' (known: {', '.join(sorted(cfg.apps))})")
    envs = [env] if env else cfg.env_order()
    apps = [app] if app else list(cfg.apps)
    facts = _recorded(ctx, apps, envs, only=app is not None, count_missing=count_missing)
    return [
        AppStatus(
            a,
            cfg.apps[a].owner,
            cfg.apps[a].oncall,
            [_cell(ctx, facts, a, e, with_commits) for e in envs],
        )
        for a in apps
    ]


def _recorded(
    ctx: Context, apps: list[str], envs: list[str], *, only: bool, count_missing: bool
) -> _Recorded:
    now = ctx.now()
    with ctx.db.read() as conn:
        deployed = live_deployments(conn, apps if only else None)
        latest = {
            a: Latest(r.manifest, r.version, r.commit, r.digest)
            for a, r in latest_releases(conn, apps if only else None).items()
        }
        outcomes = last_outcomes(conn)
        locks = active_locks(conn, now)
        weights = canary_weights(conn, locks)
        queued = queued_cells(conn, ctx.processes, envs)
        pairs = {
            (ctx.config.apps[a].repo, dep.commit, rel.commit)
            for a in apps
            if (rel := latest.get(a)) is not None
            for e in envs
            if (dep := deployed.get((a, e))) is not None and dep.commit != rel.commit
        }
        counts = distances.cached(conn, pairs) if pairs else {}
    missing = pairs - counts.keys()
    if missing and count_missing:
        counts.update(_count(ctx, missing))  # a pair git does not know stays unknown
        missing = set()
    windows = {e: window_state(*ctx.config.window_specs(e), now) for e in envs}
    return _Recorded(deployed, latest, outcomes, locks, queued, windows, counts, weights, missing)


def _cell(ctx: Context, facts: _Recorded, a: str, e: str, with_commits: bool) -> Cell:
    spec = ctx.config.apps[a]
    dep, latest = facts.deployed.get((a, e)), facts.latest.get(a)
    deployed = None
    if dep is not None:
        deployed = Deployed(
            dep.manifest, dep.version, dep.commit, dep.digest, dep.color, dep.at, dep.by,
            dep.plan_id,
        )  # fmt: skip
    behind: int | None = None
    counting = False
    if deployed and latest:
        pair = (spec.repo, deployed.commit, latest.commit)
        behind = 0 if deployed.commit == latest.commit else facts.distances.get(pair)
        counting = pair in facts.uncounted
    cell = Cell(
        app=a, env=e, deployed=deployed, latest=latest, commits_behind=behind,
        endpoint=_endpoint(ctx, a, e), window=facts.windows[e], lock=facts.locks.get(e),
        last_outcome=facts.outcomes.get((a, e)), queued=facts.queued.get((a, e)),
        canary_weight=facts.weights.get((a, e)), counting=counting,
    )  # fmt: skip
    if with_commits and deployed and latest and deployed.digest != latest.digest:
        cell.commits = ctx.git.commits_between(repo_path(ctx, spec), deployed.commit, latest.commit)
    _probe(ctx, cell)
    return cell


def _endpoint(ctx: Context, app: str, env: str) -> str | None:
    target = ctx.config.apps[app].targets.get(env)
    if target is None:
        return None
    s = target.settings
    if target.adapter == "local":
        return f"http://127.0.0.1:{s['port']}"
    url = s.get("url") or s.get("endpoint")
    return redact_text(str(url)) if url else None  # may carry userinfo: https://u:token@host


def _probe(ctx: Context, cell: Cell) -> None:
    """Drift: the live color the target reports differs from the one recorded."""
    target_cfg = ctx.config.apps[cell.app].targets.get(cell.env)
    if target_cfg is None or target_cfg.adapter not in _CHEAP_PROBES or cell.deployed is None:
        return
    try:
        cell.live_color = ctx.live_colors(
            cell.app, cell.env, target_cfg.adapter, target_cfg.settings
        )
    except AdapterError:
        cell.drift = True
        return
    cell.drift = cell.live_color != cell.deployed.color
