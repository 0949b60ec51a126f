"""`python -m bench [--quick] [--database-url URL] [--only NAME ...]`: every benchmark, one document.

Writes one JSON document to stdout (each metric with its value, the baseline measured in the same
run, the ratio, the goal and `ok`; wall and CPU both) and a table to stderr. It never fails on a
figure: figures are for people (bench/README.md says what each one means).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
import time

from bench.harness import MIN_RUNS, Metric, Options

# Module names under bench/, in the order they run; each has `metrics(Options) -> list[Metric]`.
BENCHES = (
    "status_json",
    "tui_start",
    "audit_append",
    "audit_verify",
    "audit_export",
    "audit_list",
    "redaction",
    "orchestration",
    "canary",
    "tui_audit_keys",
    "windows",
)


def table(metrics: list[Metric]) -> str:
    lines = [f"{'metric':44} {'ratio':>7} {'goal':>7} {'cpu ratio':>9}  ok"]
    for m in metrics:
        d = m.as_dict()
        lines.append(
            f"{d['metric']:44} {d['ratio']:7.3f} {d['goal']:>7} {d['cpu']['ratio']:9.3f}  "
            f"{'yes' if d['ok'] else 'NO'}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="CI-sized workspaces (50 apps)")
    parser.add_argument("--database-url", help="run the database benches on this PostgreSQL")
    parser.add_argument("--runs", type=int, default=MIN_RUNS, help="runs of each side (min 5)")
    parser.add_argument("--only", nargs="+", choices=BENCHES, help="just these benches")
    args = parser.parse_args(argv)
    opts = Options(quick=args.quick, database_url=args.database_url, runs=args.runs)
    # Both sides of every process bench run as installed Python runs: with compiled modules
    # cached. PYTHONDONTWRITEBYTECODE (set on some machines) would make each start compile
    # shipdeck, SQLAlchemy and Textual again, and measure the compiler instead.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    found: list[Metric] = []
    started = time.perf_counter()
    for name in args.only or BENCHES:
        print(f"bench {name} ...", file=sys.stderr, flush=True)
        module = importlib.import_module(f"bench.{name}")
        found.extend(module.metrics(opts))
    doc = {
        "quick": opts.quick,
        "database": "postgresql" if opts.database_url else "sqlite",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "seconds": round(time.perf_counter() - started, 1),
        "metrics": [m.as_dict() for m in found],
    }
    print(table(found), file=sys.stderr)
    json.dump(doc, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
