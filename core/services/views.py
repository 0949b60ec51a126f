"""Read-only views the TUI screens need that no use-case service returns in one piece.

Nothing here changes state; each function is a few store reads shaped for one screen, so the
screens stay thin and never build SQL themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from shipdeck.core.domain.config import App
from shipdeck.core.domain.release import ReleaseRecord
from shipdeck.core.services.audit_log import AuditFilter
from shipdeck.core.services.context import Context
from shipdeck.core.services.releases import ReleaseDiff, app_config, diff_records, list_releases
from shipdeck.core.storage import audit_reads, deployments

# The app screen lists at most this many commits per environment: enough to read, cheap to draw.
MAX_COMMITS = 50


@dataclass(frozen=True)
class Live:
    """Where a release is live: environment, colour, since when and by whom."""

    env: str
    color: str | None
    at: datetime
    by: str


@dataclass(frozen=True)
class ReleaseRow:
    record: ReleaseRecord
    live: tuple[Live, ...]


@dataclass(frozen=True)
class EnvDiff:
    """One environment against the latest release: what would change if the latest shipped."""

    env: str
    deployed: ReleaseRecord | None
    live: Live | None
    latest: ReleaseRecord | None
    diff: ReleaseDiff | None  # None when nothing is deployed or it is already the latest
    more_commits: int = 0  # commits left out beyond MAX_COMMITS


@dataclass(frozen=True)
class AppView:
    app: App
    releases: list[ReleaseRow]
    envs: list[EnvDiff]


def app_view(ctx: Context, app: str) -> AppView:
    """Releases of one app, newest first, with where each is live, and each env's diff."""
    spec = app_config(ctx, app)
    records = list_releases(ctx, app)
    by_id = {r.id: r for r in records}
    with ctx.db.read() as conn:
        deployed = deployments.live(conn, [app])
    live: dict[str, tuple[int, Live]] = {
        env: (row.release_id, Live(env, row.color, row.at, row.by))
        for (_, env), row in deployed.items()
    }
    order = [e for e in ctx.config.env_order() if e in live]
    releases = [
        ReleaseRow(rec, tuple(live[e][1] for e in order if live[e][0] == rec.id)) for rec in records
    ]
    latest = records[0] if records else None
    envs: list[EnvDiff] = []
    for env in ctx.config.env_order():
        rid, lv = live.get(env, (None, None))
        current = None if rid is None else by_id.get(rid)
        diff = None
        more = 0
        if current is not None and latest is not None and current.digest != latest.digest:
            diff = diff_records(ctx, current, latest)
            more = max(len(diff.commits) - MAX_COMMITS, 0)
            if more:
                diff = replace(diff, commits=diff.commits[:MAX_COMMITS])
        envs.append(EnvDiff(env, current, lv, latest, diff, more))
    return AppView(spec, releases, envs)


def count_up_to(ctx: Context, flt: AuditFilter, top_seq: int) -> int:
    """Events matching `flt` up to `top_seq`: a stable row count while newer events arrive."""
    with ctx.db.read() as conn:
        return audit_reads.count_up_to(conn, flt, top_seq)


def seq_at_offset(ctx: Context, flt: AuditFilter, offset: int, top_seq: int) -> int | None:
    """The sequence number of the `offset`-th newest event matching `flt` up to `top_seq`.

    Lets a virtual audit view jump far into a filtered log (where sequence numbers have gaps) and
    page by keyset from there; unfiltered views compute the number instead.
    """
    with ctx.db.read() as conn:
        return audit_reads.seq_at_offset(conn, flt, offset, top_seq)
