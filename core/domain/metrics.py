"""DORA metrics from deployment records: pure arithmetic over facts the service gathers.

Definitions (per environment, over [since, until)):
- deployment frequency: deploys that reached traffic (outcome succeeded or later rolled back),
  per day.
- lead time for changes: from the first commit a deploy brought into the environment (the oldest
  commit not in what was live before) to the moment that deploy took traffic; median and p90.
- change failure rate: failed deploys (pre-switch failure) plus rolled-back ones, over all
  deploy attempts.
- time to restore: for each rolled-back deploy, from taking traffic to the rollback finishing;
  median.
Rollback deployments are the restores themselves and are not counted as deploys.
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
    attempts: int
    failures: int
    change_failure_rate: float | None
    lead_time_median: timedelta | None
    lead_time_p90: timedelta | None
    time_to_restore_median: timedelta | None
    restores: int

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
                "attempts": self.attempts,
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


def compute(
    facts: Sequence[DeploymentFact], env: str, since: datetime, until: datetime
) -> EnvMetrics:
    mine = [f for f in facts if f.env == env and since <= f.at < until and f.kind == "deploy"]
    live = [f for f in mine if f.outcome in ("succeeded", "rolled_back")]
    failures = [f for f in mine if f.outcome in ("failed", "rolled_back")]
    leads = [f.at - f.first_commit_at for f in live if f.first_commit_at is not None]
    restores = [
        f.ended_at - f.at for f in mine if f.outcome == "rolled_back" and f.ended_at is not None
    ]
    days = max((until - since).total_seconds() / 86400, 1e-9)
    return EnvMetrics(
        env=env,
        since=since,
        until=until,
        deployments=len(live),
        per_day=len(live) / days,
        attempts=len(mine),
        failures=len(failures),
        change_failure_rate=len(failures) / len(mine) if mine else None,
        lead_time_median=_quantile(leads, 0.5),
        lead_time_p90=_quantile(leads, 0.9),
        time_to_restore_median=_quantile(restores, 0.5),
        restores=len(restores),
    )
