"""How long does `shipdeck status -o json` take on a big workspace, against importing sqlmodel?

    cd /work/main && python -m bench.status_json [--runs 7]

Workspace (bench/_common.py): 200 apps x 3 environments with real repositories, 600 releases
and deployments, 1,000,000 audit events. The first run after emptying the commit-distance cache
is cold (400 `git rev-list --count` calls); the following runs are warm (distances cached). The
baseline is `python -c "import sqlmodel"` in the same run, interleaved with the warm runs.
Goal: warm median <= 2.0x the baseline.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import subprocess
import sys

from bench._common import ROOT, build, cli_env, interleaved, say, time_process


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    root = build()
    env = cli_env(root, "alice")
    status = [sys.executable, "-m", "shipdeck.tui.cli", "-o", "json", "status"]
    baseline = [sys.executable, "-c", "import sqlmodel"]

    with sqlite3.connect(root / ".shipdeck" / "state.db") as con:
        con.execute("DELETE FROM commit_distance")
    cold = time_process(status, env)
    doc = json.loads(
        subprocess.run(status, env=env, cwd=ROOT, capture_output=True, check=True).stdout
    )
    cells = [c for a in doc["apps"] for c in a["environments"]]
    behind = sorted({c["commits_behind"] for c in cells})
    say(f"{len(doc['apps'])} apps, {len(cells)} cells, commits_behind values {behind}")

    pairs = list(
        interleaved(lambda: time_process(status, env), lambda: time_process(baseline), args.runs)
    )
    warm = statistics.median(p[0] for p in pairs)
    base = statistics.median(p[1] for p in pairs)
    print(f"import sqlmodel (baseline)   median {base * 1000:7.0f} ms  ({args.runs} runs)")
    print(f"status -o json, cold cache   {cold * 1000:14.0f} ms  = {cold / base:5.2f}x baseline")
    print(
        f"status -o json, warm cache   median {warm * 1000:7.0f} ms  = {warm / base:5.2f}x baseline"
        "  (goal <= 2.0x)"
    )


if __name__ == "__main__":
    main()
