"""DORA metrics from deployment records: pure arithmetic over facts the service gathers.

One definition, documented in docs/metrics.md beside DORA's, and one rendering (`cells`), so the
TUI and the CLI show the same numbers in the same words. Per environment, over [since, until):
- deployment: a deploy that took traffic (outcome succeeded, or rolled back afterwards). A deploy
  that failed before its switch never reached users: it is a failed attempt, not a deployment.
  Rollbacks are the restores themselves and are not deployments.
- deployment frequency: deployments per day.
- lead time for changes: from the first commit a deployment brought into the environment (the
  oldest commit not in what was live before) to the moment it took traffic; median and p90.
- change failure rate: deployments later rolled back (by their own run after a failure or an
  abort, or by `shipdeck rollback`) over deployments: both counts are of the same set.
- time to restore: for each rolled-back deployment, from taking traffic to the release before it
  taking traffic again; median.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any


@dataclass(frozen=True)
class DeploymentFact:
    app: str
    env: str
    at: datetime
    kind: str  # deploy | rollback
    outcome: str  # succeeded | failed | rolled_back
    ended_at: datetime | None
    first_commit_at: datetime | None


@dataclass(frozen=True)
class EnvMetrics:
    env: str
    since: datetime
    until: datetime
    deployments: int
    per_day: float
    attempts: int  # every deploy attempt: deployments plus failed attempts
    failures: int  # change failures: deployments later rolled back
    change_failure_rate: float | None
    lead_time_median: timedelta | None
    lead_time_p90: timedelta | None
    time_to_restore_median: timedelta | None
    restores: int
    failed_attempts: int  # deploys that failed before taking traffic

    def cells(self) -> dict[str, str]:
        """The four DORA figures as both front ends print them (CLI columns, TUI lines)."""
        rate = self.change_failure_rate
        return {
            "deploys": f"{self.deployments}  ({self.per_day:.2f}/day)",
            "lead time": f"median {format_duration(self.lead_time_median)}"
            f"  p90 {format_duration(self.lead_time_p90)}",
            "change failures": "-"
            if rate is None
            else f"{rate:.0%}  ({self.failures} of {self.deployments})",
            "time to restore": f"median {format_duration(self.time_to_restore_median)}"
            f"  ({self.restores} restore{'' if self.restores == 1 else 's'})",
        }

    def as_dict(self) -> dict[str, Any]:
        def secs(d: timedelta | None) -> float | None:
            return None if d is None else round(d.total_seconds(), 1)

        return {
            "env": self.env,
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "deployment_frequency": {
                "deployments": self.deployments,
                "per_day": round(self.per_day, 3),
            },
            "lead_time": {
                "median_seconds": secs(self.lead_time_median),
                "p90_seconds": secs(self.lead_time_p90),
            },
            "change_failure_rate": {
                "rate": None
                if self.change_failure_rate is None
                else round(self.change_failure_rate, 3),
                "failures": self.failures,
                "deployments": self.deployments,
                "attempts": self.attempts,
                "failed_attempts": self.failed_attempts,
            },
            "time_to_restore": {
                "median_seconds": secs(self.time_to_restore_median),
                "restores": self.restores,
            },
        }


def _quantile(values: Sequence[timedelta], q: float) -> timedelta | None:
    """Nearest-rank quantile: a value that really occurred, stable for small samples."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 1))  # ceil(n * q), at least 1
    return ordered[int(rank) - 1]


def format_duration(d: timedelta | None) -> str:
    """'45s', '12m', '3h 05m', '2d 4h': seconds stay visible, so a quick restore is not '0m'."""
    if d is None:
        return "-"
    secs = int(d.total_seconds())
    if secs < 60:
        return f"{secs}s"
    minutes = secs // 60
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    return f"{hours}h {mins:02d}m" if hours else f"{mins}m"


def compute(
    facts: Sequence[DeploymentFact], env: str, since: datetime, until: datetime
) -> EnvMetrics:
    mine = [f for f in facts if f.env == env and since <= f.at < until and f.kind == "deploy"]
    live = [f for f in mine if f.outcome in ("succeeded", "rolled_back")]
    failures = [f for f in live if f.outcome == "rolled_back"]
    leads = [f.at - f.first_commit_at for f in live if f.first_commit_at is not None]
    restores = [f.ended_at - f.at for f in failures if f.ended_at is not None]
    days = max((until - since).total_seconds() / 86400, 1e-9)
    return EnvMetrics(
        env=env,
        since=since,
        until=until,
        deployments=len(live),
        per_day=len(live) / days,
        attempts=len(mine),
        failures=len(failures),
        change_failure_rate=len(failures) / len(live) if live else None,
        lead_time_median=_quantile(leads, 0.5),
        lead_time_p90=_quantile(leads, 0.9),
        time_to_restore_median=_quantile(restores, 0.5),
        restores=len(restores),
        failed_attempts=len(mine) - len(live),
    )
