"""`shipdeck audit export --format jsonl` over the whole log, against the database's own JSON dump.

    python -m bench --only audit_export

Both sides run as processes writing a file: shipdeck's export (every event as a JSON line), and
the bare client dumping the same table as JSON (`sqlite3 DB '.mode json' 'SELECT ...'`, or psql
COPY of row_to_json on --database-url). Judged on CPU time (the work done, whatever the load);
goal <= 2.0x.
"""

from __future__ import annotations

import sys

from bench.harness import Metric, Options, Sample, alternate, cli_env, timed_process
from bench.workspace import OUT, Built, build

QUERY = "SELECT * FROM audit_event ORDER BY seq"


def baseline_argv(built: Built, out: str) -> list[str]:
    if built.sqlite_path is not None:
        return ["sqlite3", str(built.sqlite_path), ".mode json", f".once {out}", QUERY]
    base, _, schema = built.url.partition("?options=-csearch_path%3D")
    copy = f"\\copy (SELECT row_to_json(t) FROM {schema}.audit_event t ORDER BY seq) TO '{out}'"
    return ["psql", base, "-q", "-c", copy]


def metrics(opts: Options) -> list[Metric]:
    built = build(opts.audit_apps, opts.events, opts.database_url)
    OUT.mkdir(parents=True, exist_ok=True)
    ours_file, theirs_file = OUT / "export-shipdeck.jsonl", OUT / "export-baseline.json"
    env = cli_env(built.root, "erin", built.url)
    export = [sys.executable, "-m", "shipdeck", "audit", "export", "--format", "jsonl"]
    export += ["--out", str(ours_file)]

    def ours() -> Sample:
        return timed_process(export, env)

    def theirs() -> Sample:
        return timed_process(baseline_argv(built, str(theirs_file)))

    ours_runs, base = alternate(ours, theirs, opts.runs)
    lines = sum(1 for _ in ours_file.open("rb"))
    store = "postgresql" if opts.database_url else "sqlite"
    return [
        Metric(
            f"audit.export.{store}",
            f"audit export --format jsonl, {lines:,} events",
            "the database client's JSON dump of the table",
            ours_runs,
            base,
            ("<=", 2.0),
            by="cpu",
            extra={"events": lines},
        )
    ]
