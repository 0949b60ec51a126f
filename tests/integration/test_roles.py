"""Who may do what: refusals exit 4 and are themselves audited; identity is the kernel's user (never
USER/LOGNAME) unless the workspace lets that user delegate through SHIPDECK_ACTOR, and the record
keeps both names. A SHIPDECK_ACTOR the workspace does not honour is refused, never ignored."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import text

from shipdeck.core.kernel import os_user
from shipdeck.core.services import audit_log
from tests.support.cli import Ran, shipdeck
from tests.support.workspace import BASIC_TOML, WorkspaceFixture


def events(ws: WorkspaceFixture) -> list[Any]:
    with ws.base.db.read() as conn:
        return list(
            conn.execute(
                text(
                    "SELECT seq, actor, os_user, ssh_client, kind, app, payload FROM audit_event ORDER BY seq"
                )
            )
        )


def releases(ws: WorkspaceFixture) -> int:
    with ws.base.db.read() as conn:
        return int(conn.execute(text("SELECT count(*) FROM release")).scalar_one())


def run_as(ws: WorkspaceFixture, actor: str | None, *args: str, **env: str) -> Ran:
    environ = {**ws.env(actor or "unused"), "USER": "tester", **env}
    if actor is None:
        del environ["SHIPDECK_ACTOR"]
    return shipdeck(*args, env=environ)


def assert_denied(r: Ran, why: str) -> None:
    assert r.code == 4, (r.out, r.err)
    assert r.err.splitlines() == [f"shipdeck: error: not permitted: {why}"]


# (actor, what its roles read as, argv, permission it lacks)
DENIALS = [
    ("bob", "approvers", ["release", "create", "chat-api", "1.0.0"], "release.create"),
    ("erin", "auditors", ["release", "create", "web", "1.0.0"], "release.create"),
    ("erin", "auditors", ["audit", "checkpoint", "--to", "{tmp}/cp.jsonl"], "audit.checkpoint"),
    ("mallory", "no role", ["release", "create", "web", "1.0.0"], "release.create"),
]


def test_missing_permission_exits_4_and_is_audited(ws: WorkspaceFixture, tmp_path: Path) -> None:
    for n, (actor, roles, args, permission) in enumerate(DENIALS, 1):
        why = f"{actor} ({roles}) lacks permission '{permission}'"
        r = run_as(ws, actor, *[a.replace("{tmp}", str(tmp_path)) for a in args])
        assert_denied(r, why)
        evs = events(ws)
        assert len(evs) == n
        ev = evs[-1]
        assert (ev.actor, ev.os_user, ev.kind) == (actor, os_user(), "access.denied")
        assert json.loads(bytes(ev.payload)) == {"permission": permission, "reason": why}
    assert releases(ws) == 0
    assert not (tmp_path / "cp.jsonl").exists()
    assert audit_log.verify(ws.as_user("erin")).ok


def test_denial_in_json_mode_is_the_error_document(ws: WorkspaceFixture) -> None:
    r = run_as(ws, "bob", "-o", "json", "release", "create", "chat-api", "1.0.0")
    assert r.code == 4
    assert r.json()["error"]["kind"] == "not_permitted"
    assert r.json()["error"]["exit_code"] == 4
    assert [e.app for e in events(ws)] == ["chat-api"]


def test_read_only_session_refuses_even_the_release_manager(ws: WorkspaceFixture) -> None:
    r = run_as(ws, "alice", "--read-only", "release", "create", "chat-api", "1.0.0")
    assert_denied(r, "this session is read-only")
    [ev] = events(ws)
    assert (ev.actor, ev.kind) == ("alice", "access.denied")
    assert releases(ws) == 0
    assert run_as(ws, "alice", "--read-only", "status").code == 0
    assert run_as(ws, "alice", "--read-only", "audit", "verify").code == 0
    assert run_as(ws, "alice", "release", "create", "chat-api", "1.0.0").code == 0


def test_env_actor_is_recorded_beside_the_os_user(ws: WorkspaceFixture) -> None:
    r = run_as(
        ws, "alice", "release", "create", "chat-api", "1.0.0", SSH_CLIENT="203.0.113.9 52114 22"
    )
    assert r.code == 0, r.err
    [ev] = events(ws)
    assert (ev.actor, ev.os_user, ev.ssh_client, ev.kind) == (
        "alice",
        os_user(),
        "203.0.113.9",  # recorded as the session reports it; advisory, it decides nothing
        "release.created",
    )
    shown = run_as(ws, "erin", "-o", "json", "audit", "list").json()["events"][0]
    assert (shown["actor"], shown["os_user"], shown["ssh_client"]) == (
        "alice",
        os_user(),
        "203.0.113.9",
    )


DELEGATION = 'allow_env_actor = true\ndelegators = ["*"]\n'


def test_env_actor_is_refused_unless_the_workspace_allows_it(ws: WorkspaceFixture) -> None:
    me = os_user()
    ws.write_config(BASIC_TOML.replace(DELEGATION, "allow_env_actor = false\n"))
    # USER and LOGNAME say alice: they are not identity, so this is the kernel's user asking to
    # act as erin, in a workspace that allows no delegation.
    refused = run_as(
        ws, "erin", "release", "create", "chat-api", "1.0.0", USER="alice", LOGNAME="alice"
    )
    assert refused.code == 4
    assert refused.err_lines == [
        "shipdeck: error: not permitted: SHIPDECK_ACTOR=erin: this workspace allows no "
        f"delegation ([identity] allow_env_actor = false); unset SHIPDECK_ACTOR to act as {me}"
    ]
    # Without SHIPDECK_ACTOR, USER=alice still does not borrow alice's permissions.
    denied = run_as(
        ws, None, "release", "create", "chat-api", "1.1.0", USER="alice", LOGNAME="alice"
    )
    assert_denied(denied, f"{me} (no role) lacks permission 'release.create'")
    [ev] = events(ws)
    assert (ev.actor, ev.os_user, ev.kind) == (me, me, "access.denied")
    assert releases(ws) == 0


def test_env_actor_from_a_user_who_is_not_a_delegator_is_refused(ws: WorkspaceFixture) -> None:
    me = os_user()
    ws.write_config(
        BASIC_TOML.replace(DELEGATION, 'allow_env_actor = true\ndelegators = ["ci-runner"]\n')
    )
    r = run_as(ws, "alice", "release", "create", "chat-api", "1.0.0")
    assert r.code == 4
    assert r.err_lines == [
        f"shipdeck: error: not permitted: SHIPDECK_ACTOR=alice: OS user {me} is not a delegator "
        f"([identity] delegators); unset SHIPDECK_ACTOR to act as {me}"
    ]
    assert events(ws) == [] and releases(ws) == 0


def test_default_actor_is_the_delegators_stand_in(ws: WorkspaceFixture) -> None:
    ws.write_config(BASIC_TOML.replace(DELEGATION, DELEGATION + 'default_actor = "alice"\n'))
    r = run_as(ws, None, "release", "create", "chat-api", "1.0.0")
    assert r.code == 0, r.err
    [ev] = events(ws)
    assert (ev.actor, ev.os_user) == ("alice", os_user())


def test_without_roles_every_user_may_act(ws: WorkspaceFixture) -> None:
    roleless = BASIC_TOML.split("[roles.release-managers]")[0] + BASIC_TOML.split(
        "permissions = []\n", 1
    )[1].replace('override_roles = ["release-managers"]\n', "").replace(
        'approvals = { required = 2, roles = ["approvers"] }\n', ""
    )
    ws.write_config(roleless)
    r = run_as(ws, "anyone", "release", "create", "web", "1.0.0")
    assert r.code == 0, r.err
    assert [e.kind for e in events(ws)] == ["release.created"]
