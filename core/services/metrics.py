"""DORA metrics per environment, from the deployment records and the apps' git history."""

from __future__ import annotations

from datetime import datetime, timedelta

from shipdeck.core.domain.metrics import DeploymentFact, EnvMetrics, compute
from shipdeck.core.errors import AdapterError, UsageError
from shipdeck.core.services.context import Context
from shipdeck.core.services.plans import env_config
from shipdeck.core.services.releases import repo_path
from shipdeck.core.storage import deployments


def _first_commit_at(
    ctx: Context,
    app: str,
    old: str | None,
    new: str,
    cache: dict[tuple[str, str | None, str], datetime | None],
) -> datetime | None:
    """When the oldest commit this deploy brought into the environment was made."""
    key = (app, old, new)
    if key not in cache:
        try:
            commits = ctx.git.commits_between(repo_path(ctx, ctx.config.apps[app]), old, new)
        except AdapterError:
            commits = []  # history rewritten or repository gone: no lead time for this one
        cache[key] = min((c.date for c in commits), default=None)
    return cache[key]


def deployment_facts(ctx: Context, env: str | None = None) -> list[DeploymentFact]:
    """Every deployment record as a fact, with the lead-time start resolved through git."""
    with ctx.db.read() as conn:
        rows = deployments.in_order(conn, env)
    live_commit: dict[tuple[str, str], str] = {}
    cache: dict[tuple[str, str | None, str], datetime | None] = {}
    facts = []
    for r in rows:
        first = None
        if r.kind == "deploy" and r.outcome != "failed" and r.app in ctx.config.apps:
            previous = live_commit.get((r.app, r.env))
            if previous != r.commit:
                first = _first_commit_at(ctx, r.app, previous, r.commit, cache)
        if r.outcome == "succeeded":
            live_commit[(r.app, r.env)] = r.commit
        facts.append(DeploymentFact(r.app, r.env, r.at, r.kind, r.outcome, r.ended_at, first))
    return facts


def metrics(ctx: Context, env: str | None = None, days: int = 30) -> list[EnvMetrics]:
    """Deployment frequency, lead time, change failure rate and time to restore over the last
    `days` days, one entry per environment (or just `env`)."""
    if days <= 0:
        raise UsageError("--days must be at least 1")
    envs = [env] if env else ctx.config.env_order()
    for e in envs:
        env_config(ctx, e)
    until = ctx.now()
    since = until - timedelta(days=days)
    facts = deployment_facts(ctx, env)
    return [compute(facts, e, since, until) for e in envs]
