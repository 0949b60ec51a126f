"""Eight processes race to run plans on one environment, round after round.

Never two runs at once (the plans' recorded run intervals, stamped inside the lease
transactions, never overlap), every loser is blocked (exit code 3) with the lock holder named,
and nobody ever sees a raw "database is locked". The target is the `command` adapter with
trivial commands (real processes, a few milliseconds each), so rounds are about the lock, not
about starting apps. ROUNDS rounds on each database; a few more rounds race the real CLI.
"""

from __future__ import annotations

import itertools
import json
import multiprocessing
import os
import subprocess
import sys
import traceback
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.support.workspace import BASIC_TOML, WorkspaceFixture, actor_as

WORKERS = 8
ROUNDS = int(os.environ.get("SHIPDECK_RACE_ROUNDS", "100"))
CLI_ROUNDS = 2
NAMES = [f"w{i}" for i in range(WORKERS)]


def race_toml(root: Path) -> str:
    state = root / "switch"
    base = BASIC_TOML.replace('users = ["alice"]', f"users = {json.dumps(['alice', *NAMES])}")
    return base + (
        "\n[apps.web.targets.staging]\n"
        'adapter = "command"\n'
        'stage = ["true"]\n'
        'health = ["true"]\n'
        f'switch = ["cp", "{state}/{{color}}", "{state}/live"]\n'
        f'live_color = ["cat", "{state}/live"]\n'
    )


def prepare(ws: WorkspaceFixture) -> None:
    state = ws.root / "switch"
    state.mkdir()
    for color in ("blue", "green"):
        (state / color).write_text(color)
    (state / "live").write_text("")
    ws.write_config(race_toml(ws.root))
    from shipdeck.core.services.releases import create_release

    create_release(ws.as_user("alice"), "web", "1.0.0")


def _racer(root: str, db_url: str, name: str, rounds: int, barrier: Any, results: Any) -> None:
    """One racing process: each round, all try to start their plan at once; the winner runs it."""
    from shipdeck.core.bootstrap import build_context
    from shipdeck.core.errors import BlockedError
    from shipdeck.core.services.context import SystemClock
    from shipdeck.core.services.plans import create_plan
    from shipdeck.core.services.runs import execute_run, start_run
    from shipdeck.core.workspace import Workspace, load_config

    ws = Workspace(Path(root), load_config(Path(root) / "shipdeck.toml"))
    base = build_context(ws, database_url=db_url, clock=SystemClock())
    ctx = replace(base, actor=actor_as(base.config, name))
    plan_id = create_plan(ctx, "staging", ["web@1.0.0"]).id
    for r in range(rounds):
        barrier.wait(timeout=120)
        try:
            ticket = start_run(ctx, plan_id)
            result = execute_run(ctx, ticket)
            results.put(("won", name, r, plan_id, result.state))
            plan_id = create_plan(ctx, "staging", ["web@1.0.0"]).id
        except BlockedError as exc:
            holders = [b.detail.get("holder") for b in exc.blockers]
            kinds = [b.kind for b in exc.blockers]
            results.put(("lost", name, r, int(exc.exit_code), exc.message, kinds, holders))
        except Exception:
            results.put(("error", name, r, traceback.format_exc()))
        barrier.wait(timeout=120)
    base.db.dispose()


@pytest.mark.slow
def test_eight_processes_race_for_one_environment(ws: WorkspaceFixture) -> None:
    prepare(ws)
    mp = multiprocessing.get_context("spawn")
    barrier = mp.Barrier(WORKERS)
    results = mp.Queue()
    procs = [
        mp.Process(target=_racer, args=(str(ws.root), ws.db_url, n, ROUNDS, barrier, results))
        for n in NAMES
    ]
    for p in procs:
        p.start()
    seen: list[tuple[Any, ...]] = []
    try:
        while len(seen) < WORKERS * ROUNDS:
            seen.append(results.get(timeout=300))
    finally:
        for p in procs:
            p.join(timeout=60)
            if p.is_alive():
                p.kill()
    errors = [s for s in seen if s[0] == "error"]
    assert errors == [], errors[0][3] if errors else ""
    wins = [s for s in seen if s[0] == "won"]
    losses = [s for s in seen if s[0] == "lost"]
    assert {s[2] for s in wins} == set(range(ROUNDS)), "every round has a winner"
    assert all(s[4] == "succeeded" for s in wins)
    for _, name, _round, code, msg, kinds, holders in losses:
        assert code == 3 and kinds == ["locked"], msg
        assert holders[0] in NAMES and holders[0] != name and f"locked by {holders[0]}" in msg
        assert "database is locked" not in msg

    # The recorded run intervals (written in the lease transactions) never overlap.
    from shipdeck.core.services.plans import get_plan, list_plans

    alice = ws.as_user("alice")
    ran = [
        get_plan(alice, p.id)
        for p in list_plans(alice, env="staging", limit=10_000)
        if p.state == "succeeded"
    ]
    assert len(ran) == len(wins)
    spans = sorted((v.started_at, v.finished_at) for v in ran)
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert end is not None and start is not None and start >= end


@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_eight_cli_processes_race_and_losers_exit_3(ws: WorkspaceFixture) -> None:
    prepare(ws)
    from shipdeck.core.services.plans import create_plan
    from shipdeck.core.services.runs import wait_run

    for _ in range(CLI_ROUNDS):
        plans = {n: create_plan(ws.as_user(n), "staging", ["web@1.0.0"]).id for n in NAMES}
        procs = {
            n: subprocess.Popen(
                [sys.executable, "-m", "shipdeck.tui.cli", "-o", "json", "plan", "run", plans[n]],
                env=ws.env(n),
                cwd=ws.root,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for n in NAMES
        }
        outs = {n: p.communicate(timeout=120) for n, p in procs.items()}
        codes = {n: p.returncode for n, p in procs.items()}
        winners = [n for n, c in codes.items() if c == 0]
        assert len(winners) >= 1 and set(codes.values()) <= {0, 3}, outs
        for n, (out, err) in outs.items():
            assert "database is locked" not in out + err
            if codes[n] == 3:
                error = json.loads(out)["error"]
                assert error["blockers"][0]["kind"] == "locked"
                assert error["blockers"][0]["holder"] in winners
        for n in winners:
            assert wait_run(ws.as_user(n), plans[n], timeout=120).ok
