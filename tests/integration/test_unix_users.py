"""A workspace shared by real Unix users on one host, tried as a hostile user would.

Root creates a group and users (unique names, removed afterwards); alice owns the workspace and
shares it with `init --shared`; everyone else runs shipdeck as themselves through runuser. Each
spoofing attempt fails, two people approve, a third runs, an auditor reads, and the audit log holds
the kernel's users. Skips when not root (fails under CI=true).
"""

from __future__ import annotations

import stat
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shipdeck.core.demo import make_repo
from tests.support.unix_users import Host, git_trusting_everyone, unix_host


def shared_toml(h: Host, root: Path) -> str:
    q = lambda *names: ", ".join(f'"{h[n]}"' for n in names)  # noqa: E731
    return f"""
[workspace]
name = "bastion"

[identity]
allow_env_actor = true
delegators = [{q("ci")}]

[roles.release-managers]
users = [{q("alice")}]
permissions = ["*"]

[roles.approvers]
users = [{q("bob", "carol", "dave")}]
permissions = ["plan.approve", "plan.check"]

[roles.editors]
users = [{q("dave")}]
permissions = ["plan.create"]

[roles.operators]
users = [{q("frank")}]
permissions = ["plan.run"]

[roles.auditors]
users = [{q("erin")}]
permissions = []

[environments.prod]
approvals = {{ required = 2, roles = ["approvers"] }}

[apps.web]
repo = "repos/web"

[apps.web.targets.prod]
adapter = "command"
cwd = "{root}"
stage = ["true"]
health = ["true"]
switch = ["sh", "-c", "umask 007 && echo {{color}} > .shipdeck/live"]
live_color = ["sh", "-c", "cat .shipdeck/live 2>/dev/null || true"]
"""


@pytest.fixture
def host() -> Iterator[Host]:
    with unix_host() as h:
        for short in ("alice", "bob", "carol", "dave", "erin", "frank", "ci"):
            h.add_user(short)
        h.add_user("mallory", in_group=False)
        h.env.update(git_trusting_everyone())
        yield h


def workspace_of(h: Host, owner: str) -> Path:
    """A workspace with one real repository, owned by `owner`, not yet shared."""
    root = h.scratch / "ws"
    make_repo(root / "repos" / "web", ("first", "second"), datetime(2026, 10, 1, tzinfo=UTC),
              timedelta(hours=1))  # fmt: skip
    (root / "shipdeck.toml").write_text(shared_toml(h, root), encoding="utf-8")
    subprocess.run(["chown", "-R", f"{h[owner]}:{h[owner]}", str(root)], check=True)
    return root


def ok(r: object) -> None:
    assert getattr(r, "code") == 0, (getattr(r, "out"), getattr(r, "err"))  # noqa: B009


def test_shared_sqlite_workspace_holds_against_each_spoofing_attempt(host: Host) -> None:
    h = host
    root = workspace_of(h, "alice")
    run = lambda who, *a, **e: h.shipdeck(who, *a, cwd=root, **e)  # noqa: E731
    state = root / ".shipdeck"
    db = state / "state.db"

    ok(run("alice", "init", "--shared", h.group, "."))
    up = run("alice", "db", "upgrade")
    ok(up)
    assert f"creating a new SQLite database in sqlite:///{db}" in up.err
    assert stat.S_IMODE(state.stat().st_mode) == 0o2770
    assert stat.S_IMODE(db.stat().st_mode) == 0o660
    assert db.stat().st_gid == state.stat().st_gid

    ok(run("alice", "release", "create", "web", "1.0.0"))
    plan = run("alice", "-o", "json", "plan", "create", "--env", "prod", "web@1.0.0").json()
    pid = plan["plan"]["id"]

    # Not in the group: told which file, whose, and the fix; exit 4, no traceback. The policy
    # itself is the group's (written 0644 above, --shared made it 0640): never world-readable.
    config = root / "shipdeck.toml"
    assert stat.S_IMODE(config.stat().st_mode) == 0o640
    denied = run("mallory", "status")
    assert denied.code == 4
    assert denied.err_lines == [
        f"shipdeck: error: not permitted: {h['mallory']} cannot read {config} (owner "
        f"{h['alice']}, group {h.group}, mode -rw-r-----); fix: add {h['mallory']} to group "
        f"{h.group} (usermod -aG {h.group} {h['mallory']}, then log in again)"
    ]

    # bob says he is carol, from somewhere else: he is still bob, and counts once.
    spoof = {"USER": h["carol"], "LOGNAME": h["carol"], "SSH_CLIENT": "203.0.113.9 1 22"}
    ok(run("bob", "plan", "approve", pid, **spoof))
    ok(run("bob", "plan", "approve", pid))
    shown = run("erin", "-o", "json", "plan", "show", pid).json()["plan"]
    assert [a["by"] for a in shown["approvals"]] == [h["bob"]]
    assert shown["state"] == "awaiting_approval"

    # SHIPDECK_ACTOR from someone the workspace does not trust to delegate: refused, loudly.
    claimed = run("bob", "plan", "approve", pid, SHIPDECK_ACTOR=h["carol"])
    assert claimed.code == 4
    assert claimed.err_lines == [
        f"shipdeck: error: not permitted: SHIPDECK_ACTOR={h['carol']}: OS user {h['bob']} is not "
        f"a delegator ([identity] delegators); unset SHIPDECK_ACTOR to act as {h['bob']}"
    ]

    # An approver who edits the plan is one of its authors now.
    ok(run("dave", "plan", "edit", pid, "--failure-policy", "halt"))
    editor = run("dave", "plan", "approve", pid)
    assert editor.code == 3
    why = f"{h['dave']} edited or submitted this plan and cannot approve it: approvals must come from someone else"
    assert editor.err_lines == [f"shipdeck: blocked: {why}", f"  - [self_approval] {why}"]

    # The auditor and read-only sessions change nothing.
    for who, args, why in [
        (
            "erin",
            ("plan", "approve", pid),
            f"{h['erin']} (auditors) lacks permission 'plan.approve'",
        ),
        ("erin", ("db", "upgrade"), f"{h['erin']} (auditors) lacks permission 'workspace.admin'"),
        ("alice", ("--read-only", "plan", "run", pid), "this session is read-only"),
    ]:
        r = run(who, *args)
        assert (r.code, r.err_lines) == (4, [f"shipdeck: error: not permitted: {why}"])

    # Two people approve (bob again: the edit voided his first approval), a third runs.
    ok(run("bob", "plan", "approve", pid))
    ok(run("carol", "plan", "approve", pid))
    ok(run("frank", "plan", "run", pid, "--wait"))
    assert run("erin", "-o", "json", "plan", "show", pid).json()["plan"]["state"] == "succeeded"

    # A trusted delegator (CI) acts for alice; both names are kept.
    ok(run("ci", "release", "create", "web", "1.0.1", SHIPDECK_ACTOR=h["alice"]))

    ok(run("erin", "audit", "verify"))
    events = run("erin", "-o", "json", "audit", "list", "--limit", "500").json()["events"]
    signed = {(e["kind"], e["actor"], e["os_user"]) for e in events}
    assert ("plan.approved", h["bob"], h["bob"]) in signed
    assert ("plan.approved", h["carol"], h["carol"]) in signed
    assert ("plan.approval_refused", h["dave"], h["dave"]) in signed
    assert ("release.created", h["alice"], h["ci"]) in signed
    assert {e["os_user"] for e in events if e["actor"] == h["carol"]} == {h["carol"]}
    runs = {e["os_user"] for e in events if e["kind"].startswith("run.")}
    assert runs == {h["frank"]}
    bobs = sorted((e["seq"], e["ssh_client"]) for e in events if e["kind"] == "plan.approved"
                  and e["actor"] == h["bob"])  # fmt: skip
    assert bobs[0][1] == "203.0.113.9"  # recorded as reported; it decided nothing

    # Everything shipdeck created is the group's to write and nobody else's to read.
    for path in [state, *state.rglob("*")]:
        st = path.lstat()
        assert st.st_gid == state.stat().st_gid, path
        assert st.st_mode & 0o060 == 0o060, path
        assert st.st_mode & 0o007 == 0, path

    # One file loses its group bits: the next user is told which, whose, and the fix.
    db.chmod(0o600)
    broken = run("bob", "status")
    assert broken.code == 4
    assert broken.err_lines == [
        f"shipdeck: error: not permitted: {h['bob']} cannot write {db} (owner {h['alice']}, "
        f"group {h.group}, mode -rw-------); fix: {h['alice']} runs 'chmod g+rw {db}' (or "
        "'shipdeck doctor --fix')"
    ]
    checked = run("bob", "-o", "json", "doctor")
    assert checked.code == 4
    assert [(p["path"], p["problem"]) for p in checked.json()["problems"]] == [
        (str(db), "not group read/write (0660)")
    ]
    ok(run("alice", "doctor", "--fix"))
    ok(run("bob", "status"))


def test_git_refusing_another_users_repository_reaches_the_user(host: Host) -> None:
    h = host
    root = workspace_of(h, "alice")
    ok(h.shipdeck("alice", "init", "--shared", h.group, ".", cwd=root))
    ok(h.shipdeck("alice", "db", "upgrade", cwd=root))
    h.env.clear()  # no safe.directory: git's own refusal must come through, not "unknown revision"
    repo = root / "repos" / "web"
    r = h.shipdeck("ci", "release", "create", "web", "1.0.0", cwd=root, SHIPDECK_ACTOR=h["alice"])
    assert r.code == 4, (r.out, r.err)
    assert r.err_lines == [
        f"shipdeck: error: not permitted: git {repo}: detected dubious ownership in repository "
        f"at '{repo}'; fix: git config --global --add safe.directory {repo}"
    ]


def test_commit_distances_in_another_users_repository_follow_git(host: Host) -> None:
    """libgit2 will not open alice's repository for bob (it does not read the command-line
    scope safe.directory that git does), so git counts instead: the same figure git gives,
    and without safe.directory, git's own refusal."""
    h = host
    root = workspace_of(h, "alice")
    repo = root / "repos" / "web"
    first, second = subprocess.run(
        ["git", "-C", str(repo), "rev-list", "--reverse", "HEAD"],
        capture_output=True, text=True, check=True, env={**h.env, "PATH": "/usr/bin:/bin"},
    ).stdout.split()  # fmt: skip
    code = (
        "import sys; from pathlib import Path\n"
        "from shipdeck.adapters.git_repo import GitRepositories, _count_in_process\n"
        f"repo, pairs = Path({str(repo)!r}), [({first!r}, {second!r}), ({second!r}, {first!r})]\n"
        "print(_count_in_process(repo, pairs))\n"
        "print(sorted(GitRepositories().count_pairs(repo, pairs).values()))\n"
    )
    trusted = h.python("bob", "-c", code)
    assert (trusted.code, trusted.out.splitlines()) == (0, ["None", "[0, 1]"]), trusted.err
    h.env.clear()
    refused = h.python("bob", "-c", code)
    assert refused.code == 1 and "PermissionDenied: not permitted: git" in refused.err, refused.err
    assert "detected dubious ownership" in refused.err
