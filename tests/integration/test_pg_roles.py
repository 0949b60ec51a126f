"""PostgreSQL that enforces: each person logs in as their own role, the actor is session_user,
the audit log is append-only for people, and no row can be signed in someone else's name, even
by a client that skips shipdeck altogether. Real server, real Unix users (root; skips otherwise).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from shipdeck.core.storage.db import Database, normalise_url
from tests.integration.test_unix_users import ok, workspace_of
from tests.support.cli import Ran, shipdeck
from tests.support.unix_users import Host, git_trusting_everyone, unix_host
from tests.support.workspace import PG_ENV, PG_SKIP, postgres_schema

PEOPLE = ("alice", "bob", "carol", "dave", "erin", "frank")


@pytest.fixture
def pg_base() -> str:
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(PG_SKIP)
    return base


@pytest.fixture
def host() -> Iterator[Host]:
    with unix_host() as h:
        for short in (*PEOPLE, "ci"):
            h.add_user(short)
        h.env.update(git_trusting_everyone())
        yield h


def as_role(url: str, role: str) -> str:
    """The same database and schema, logged in as `role` (the test server trusts loopback)."""
    scheme, rest = url.split("://", 1)
    return f"{scheme}://{role}@{rest.split('@', 1)[1]}"


def drop_roles(base: str, roles: list[str]) -> None:
    admin = create_engine(normalise_url(base))
    with admin.begin() as conn:
        for role in roles:
            if conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).first():
                conn.execute(text(f'DROP OWNED BY "{role}" CASCADE'))
                conn.execute(text(f'DROP ROLE "{role}"'))
    admin.dispose()


def test_postgres_roles_refuse_what_shipdeck_would_refuse(host: Host, pg_base: str) -> None:
    h = host
    root = workspace_of(h, "alice")
    owner, people = f"{h.prefix}_owner", f"{h.prefix}_people"
    with postgres_schema(pg_base) as url:
        try:
            _scenario(h, root, url, owner, people)
        finally:
            drop_roles(pg_base, [*(h[p] for p in PEOPLE), people, owner])


def _scenario(h: Host, root: Path, url: str, owner: str, people: str) -> None:
    toml = (root / "shipdeck.toml").read_text()
    admin_role = url.split("://", 1)[1].split("@", 1)[0]
    toml = toml.replace(
        'allow_env_actor = true\ndelegators = ["' + h["ci"] + '"]\n', 'source = "database"\n'
    ).replace(
        'name = "bastion"\n',
        'name = "bastion"\ndatabase = "' + as_role(url, "${SHIPDECK_PG_ROLE}") + '"\n',
    )
    toml += f'\n[roles.dba]\nusers = ["{admin_role}"]\npermissions = ["workspace.admin"]\n'
    (root / "shipdeck.toml").write_text(toml, encoding="utf-8")
    db = Database(url)
    db.upgrade()
    db.dispose()
    admin_env = {**os.environ, "SHIPDECK_WORKSPACE": str(root), "SHIPDECK_PG_ROLE": admin_role}
    admin_env.pop("SHIPDECK_ACTOR", None)
    admin_env.pop("SHIPDECK_DATABASE_URL", None)
    roles = shipdeck("-o", "json", "db", "roles", *(h[p] for p in PEOPLE), "--owner", owner,
                     "--people", people, env=admin_env)  # fmt: skip
    assert roles.code == 0, roles.err
    assert roles.json()["persons"] == [h[p] for p in PEOPLE]
    ok(h.shipdeck("alice", "init", "--shared", h.group, ".", cwd=root, SHIPDECK_PG_ROLE=h["alice"]))

    def run(who: str, *args: str, **env: str) -> Ran:
        return h.shipdeck(who, *args, cwd=root, SHIPDECK_PG_ROLE=h[who], **env)

    ok(run("alice", "release", "create", "web", "1.0.0"))
    pid = run("alice", "-o", "json", "plan", "create", "--env", "prod", "web@1.0.0").json()["plan"][
        "id"
    ]

    # The actor is session_user: USER says carol, SHIPDECK_ACTOR is refused outright.
    ok(run("bob", "plan", "approve", pid, USER=h["carol"], LOGNAME=h["carol"]))
    claimed = run("bob", "plan", "approve", pid, SHIPDECK_ACTOR=h["carol"])
    assert claimed.code == 4
    assert claimed.err_lines == [
        f"shipdeck: error: not permitted: SHIPDECK_ACTOR={h['carol']}: this workspace takes "
        f'identity from the database ([identity] source = "database"), so you act as {h["bob"]}; '
        "unset SHIPDECK_ACTOR"
    ]

    # bob's own login, without shipdeck: the server refuses what a modified client would try.
    bob = create_engine(normalise_url(as_role(url, h["bob"])))
    attempts = {
        "update": "UPDATE audit_event SET actor = 'nobody'",
        "delete": "DELETE FROM audit_event",
        "truncate": "TRUNCATE audit_event",
        "sign": f"INSERT INTO approval (plan_id, by, at, digest, decision, comment) VALUES "
        f"('{pid}', '{h['carol']}', now(), 'x', 'approve', '')",
        "queue": f"INSERT INTO queued_run (plan_id, env, by, at, state, note) VALUES "
        f"('{pid}', 'prod', '{h['carol']}', now(), 'waiting', '')",
    }
    refused: dict[str, str] = {}
    for name, sql in attempts.items():
        with pytest.raises(DBAPIError) as caught, bob.begin() as conn:
            conn.execute(text(sql))
        refused[name] = str(caught.value.orig).splitlines()[0]
    bob.dispose()
    assert refused == {
        "update": "permission denied for table audit_event",
        "delete": "permission denied for table audit_event",
        "truncate": "permission denied for table audit_event",
        "sign": f"shipdeck: {h['bob']} may not write approval.by as {h['carol']}",
        "queue": f"shipdeck: {h['bob']} may not write queued_run.by as {h['carol']}",
    }

    # The editor cannot approve; two others do; a third runs; the auditor reads.
    ok(run("dave", "plan", "edit", pid, "--failure-policy", "halt"))
    assert run("dave", "plan", "approve", pid).code == 3
    ok(run("bob", "plan", "approve", pid))
    ok(run("carol", "plan", "approve", pid))
    ok(run("frank", "plan", "run", pid, "--wait"))
    ok(run("erin", "audit", "verify"))
    events = run("erin", "-o", "json", "audit", "list", "--limit", "500").json()["events"]
    approvals = {(e["actor"], e["os_user"]) for e in events if e["kind"] == "plan.approved"}
    assert approvals == {(h["bob"], h["bob"]), (h["carol"], h["carol"])}
    assert {e["actor"] for e in events if e["kind"].startswith("run.")} == {h["frank"]}
