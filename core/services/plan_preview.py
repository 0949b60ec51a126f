"""A plan before it exists: what could ship to an environment, and what a choice would change.

The TUI's plan editor asks these while a person picks apps and versions, so the waves and each
app's diff against what is live are on screen before anything is written. Nothing here changes
state; `create_plan` and `update_plan` decide again (and may refuse) when the plan is saved.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from shipdeck.core.domain.release import ReleaseRecord
from shipdeck.core.domain.waves import compute_waves
from shipdeck.core.errors import UsageError
from shipdeck.core.ports import CommitInfo
from shipdeck.core.services.context import Context
from shipdeck.core.services.plans import env_config
from shipdeck.core.services.releases import (
    ReleaseDiff,
    diff_records,
    get_release,
    latest_release,
    list_releases,
    repo_path,
)
from shipdeck.core.services.status import live_deployments


@dataclass(frozen=True)
class AppChoice:
    """One app that has a target in the environment: what is live and what could ship."""

    app: str
    live: ReleaseRecord | None
    latest: ReleaseRecord | None  # what `plan create APP` would pick
    releases: tuple[ReleaseRecord, ...]  # as `release list` orders them

    @property
    def outdated(self) -> bool:
        """What `plan create` ships when no app is named: the latest release is not live."""
        latest = self.latest
        return latest is not None and (self.live is None or self.live.digest != latest.digest)


@dataclass(frozen=True)
class Change:
    """Going from one release of an app (None: nothing live) to another."""

    app: str
    old: ReleaseRecord | None
    new: ReleaseRecord
    diff: ReleaseDiff
    removed: list[CommitInfo]  # commits only `old` has: a downgrade takes these out

    @property
    def unchanged(self) -> bool:
        return self.old is not None and self.old.digest == self.new.digest


@dataclass(frozen=True)
class PlanPreview:
    env: str
    items: tuple[Change, ...]
    waves: tuple[tuple[str, ...], ...]
    approvals_required: int
    approval_roles: tuple[str, ...]


def plan_choices(ctx: Context, env: str) -> list[AppChoice]:
    """Every app with a target in `env`, in shipdeck.toml order, with its releases."""
    env_config(ctx, env)
    releases = list_releases(ctx)
    by_id = {r.id: r for r in releases}
    names = [n for n, spec in ctx.config.apps.items() if env in spec.targets]
    with ctx.db.read() as conn:
        live = live_deployments(conn, names)
        latest = {n: latest_release(conn, n) for n in names}
    out = []
    for name in names:
        row = live.get((name, env))
        current = None if row is None else by_id.get(row.release_id)
        mine = tuple(r for r in releases if r.app == name)
        out.append(AppChoice(name, current, latest[name], mine))
    return out


def compare(ctx: Context, old: ReleaseRecord | None, new: ReleaseRecord) -> Change:
    """What going from `old` (None: nothing) to `new` changes; commits only `old` has are
    counted, so a downgrade says how much it takes out."""
    removed: list[CommitInfo] = []
    if old is not None and old.commit != new.commit:
        repo = repo_path(ctx, ctx.config.apps[new.app])
        removed = ctx.git.commits_between(repo, new.commit, old.commit)
    return Change(new.app, old, new, diff_records(ctx, old, new), removed)


def compare_versions(ctx: Context, app: str, old: str, new: str) -> Change:
    return compare(ctx, get_release(ctx, app, old), get_release(ctx, app, new))


def preview_plan(
    ctx: Context, env: str, chosen: Mapping[str, ReleaseRecord], live: Mapping[str, ReleaseRecord]
) -> PlanPreview:
    """Waves and per-app diffs (commits, artifacts, config; downgrades counted) for a choice."""
    environment = env_config(ctx, env)
    deps = {n: a.depends_on for n, a in ctx.config.apps.items()}
    try:
        waves = compute_waves(sorted(chosen), deps)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    items = [compare(ctx, live.get(app), chosen[app]) for app in sorted(chosen)]
    return PlanPreview(
        env,
        tuple(items),
        tuple(tuple(w) for w in waves),
        environment.approvals.required,
        environment.approvals.roles,
    )
