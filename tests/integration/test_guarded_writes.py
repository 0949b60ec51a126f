"""One place decides: every command that changes anything is refused for a read-only session and
for an auditor (exit 4), and leaves the state as it was but for the audited refusal; and every
service function that writes passes through Context.require first.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
import typer
from sqlalchemy import text

from shipdeck.core.services.plans import create_plan, override
from shipdeck.core.services.releases import create_release
from shipdeck.tui.cli import app
from tests.integration.shipping import local_toml
from tests.support.cli import shipdeck
from tests.support.workspace import WorkspaceFixture

REPO = Path(__file__).resolve().parents[2]

# Every command that changes state or files, with arguments that would otherwise succeed or at
# least get past validation ({staging}/{prod}: plans made below; {tmp}: a scratch folder).
MUTATING: dict[str, list[str]] = {
    "init": ["init", "{tmp}/new"],
    "doctor": ["doctor", "--fix"],
    "db upgrade": ["db", "upgrade"],
    "db roles": ["db", "roles", "someone"],
    "override": ["override", "{prod}", "--reason", "r"],
    "deploy": ["deploy", "web", "1.0.0", "--env", "staging"],
    "rollback": ["rollback", "web", "--env", "staging"],
    "reconcile": ["reconcile"],
    "release create": ["release", "create", "web", "9.9.9"],
    "plan create": ["plan", "create", "--env", "staging", "web@1.0.0"],
    "plan edit": ["plan", "edit", "{prod}", "--failure-policy", "halt"],
    "plan submit": ["plan", "submit", "{prod}"],
    "plan check": ["plan", "check", "{prod}", "Release notes reviewed"],
    "plan approve": ["plan", "approve", "{prod}"],
    "plan reject": ["plan", "reject", "{prod}", "--reason", "r"],
    "plan run": ["plan", "run", "{staging}"],
    "plan abort": ["plan", "abort", "{staging}"],
    "plan unqueue": ["plan", "unqueue", "{staging}"],
    "plan promote": ["plan", "promote", "{staging}"],
    "review ack": ["review", "ack", "1"],
    "task logs": ["task", "logs", "web", "--env", "staging"],  # audited, so a change too
    "task restart": ["task", "restart", "web", "--env", "staging"],
    "task token-limit": ["task", "token-limit", "web", "--env", "staging", "--tpm", "5"],
    "audit checkpoint": ["audit", "checkpoint", "--to", "{tmp}/cp.jsonl"],
}
# Commands that only read (demo and demo stop act on the demo's own workspace, never this one;
# serve starts `tui` sessions, read-only unless --writable, each under the same rule as `tui`).
READING = {
    "demo stop", "version", "completion", "tui", "serve", "status", "metrics", "config check", "release list", "release show",
    "release diff", "plan list", "plan show", "review list", "audit list", "audit verify",
    "audit export",
}  # fmt: skip


def command_paths() -> set[str]:
    def walk(cmd: Any, path: tuple[str, ...] = ()) -> list[str]:
        if hasattr(cmd, "commands"):
            return [p for n, c in cmd.commands.items() for p in walk(c, (*path, n))]
        return [" ".join(path)]

    return set(walk(typer.main.get_command(app)))


def test_every_command_is_classified() -> None:
    assert command_paths() == set(MUTATING) | READING


def state(ws: WorkspaceFixture) -> dict[str, list[Any]]:
    with ws.base.db.read() as conn:
        tables = [
            t
            for t in ws.base.db.engine.dialect.get_table_names(conn)
            if t not in ("audit_event", "audit_head")
        ]
        return {t: [tuple(r) for r in conn.execute(text(f'SELECT * FROM "{t}"'))] for t in tables}


def audit_kinds(ws: WorkspaceFixture) -> list[str]:
    with ws.base.db.read() as conn:
        return list(conn.execute(text("SELECT kind FROM audit_event ORDER BY seq")).scalars())


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("who", "flags", "why"),
    [
        ("alice", ["--read-only"], "this session is read-only"),
        ("erin", [], "erin (auditors) lacks permission"),
    ],
)
def test_read_only_and_auditors_change_nothing_through_any_command(
    ws: WorkspaceFixture, tmp_path: Path, who: str, flags: list[str], why: str
) -> None:
    ws.write_config(local_toml())
    alice = ws.as_user("alice")
    create_release(alice, "web", "1.0.0")
    staging = create_plan(alice, "staging", ["web@1.0.0"]).id
    prod = create_plan(alice, "prod", ["web@1.0.0"]).id
    override(alice, prod, "practice")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    before, events = state(ws), len(audit_kinds(ws))
    for name, argv in MUTATING.items():
        if who == "erin" and name == "init":
            continue  # a fresh folder has no policy to be an auditor in
        args = [a.format(tmp=scratch, staging=staging, prod=prod) for a in argv]
        r = shipdeck("--yes", *flags, *args, env=ws.env(who))
        assert r.code == 4, (name, r.out, r.err)
        assert r.err_lines[0].startswith(f"shipdeck: error: not permitted: {why}"), (name, r.err)
    assert state(ws) == before
    assert set(audit_kinds(ws)[events:]) <= {"access.denied"}
    assert list(scratch.iterdir()) == []


# Writers that are not a person's command: each is reached only from a guarded one, or writes
# a cache; a new entry here needs its reason.
UNGUARDED = {
    ("admin.py", "_record_upgrade"): "records an upgrade its callers admitted (ADMIN)",
    ("notify.py", "notify"): "sends (and records) notifications after a guarded change",
    ("notify.py", "_record_failure"): "records a notifier failure after a guarded change",
    ("runner_token.py", "issue"): "issued by start_run, which requires",
    ("runner_token.py", "redeem"): "the runner proving its lease; a refusal is audited",
    ("tasks.py", "task_lease"): "held by the task functions after _guard",
    ("plans/checklist.py", "_run_check"): "a command's intent, for check_item, which requires",
    ("plans/drafting.py", "insert_plan"): "called by create_plan and deploy, which require",
    ("plans/approvals.py", "_set_state"): "called by guarded plan transitions",
    ("runs/queue.py", "_end"): "ends a queue entry for unqueue (requires) or its own waiter",
    ("runs/queue.py", "_start_waiter"): "names the waiter of an entry queue_run required",
    ("runs/lease.py", "claim_runner"): "the runner's lease, under a ticket start_run required",
    ("status.py", "_count"): "commit-distance cache, not state",
    ("tasks.py", "_failed"): "records a failed task after _guard",
}
GUARDS = ("require(", "_guard(", "_authorize(")


def test_every_service_that_writes_is_guarded() -> None:
    unguarded: list[tuple[str, str]] = []
    services = REPO / "core" / "services"
    for path in sorted(services.rglob("*.py")):  # the packages (plans/, runs/) too
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            if not isinstance(node, ast.FunctionDef):
                continue
            src = ast.unparse(node)
            writes = any(w in src for w in (".write()", "ctx.change(", "ctx.audit(", "ctx.effect("))
            if writes and not any(g in src for g in GUARDS):
                unguarded.append((path.relative_to(services).as_posix(), node.name))
    assert sorted(unguarded) == sorted(UNGUARDED)
