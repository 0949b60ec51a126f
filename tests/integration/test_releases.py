"""Releases on SQLite and PostgreSQL: canonical digests, immutability, ref resolution, diffs and
secrets kept out of the record."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import threading
import time
from pathlib import Path

from sqlalchemy import insert, text

from shipdeck.core.domain.release import Manifest
from shipdeck.core.services import audit_log
from shipdeck.core.services.releases import Created, create_release, diff_releases, list_releases
from shipdeck.core.storage.tables import RELEASES
from tests.support.cli import Ran, shipdeck
from tests.support.workspace import BASIC_TOML, WorkspaceFixture

HF_TOKEN = "hf_" + "Zq8Xw2Rt6Yu1Io5Pa9Sd3Fg7Hj4Kl0"  # hf_ + 30 characters
AUTHORS = ["Alice Moreau", "Dave Ng", "Carol Okafor", "Frank Osei"]  # core.demo.make_repo's rota


def git(repo: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_COMMITTER_NAME": "Tess Ter",
        "GIT_COMMITTER_EMAIL": "tess@example.com",
    }
    done = subprocess.run(
        ["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


def counts(ws: WorkspaceFixture) -> tuple[int, int]:
    """(release rows, audit events)."""
    with ws.base.db.read() as conn:
        releases = conn.execute(text("SELECT count(*) FROM release")).scalar_one()
        events = conn.execute(text("SELECT count(*) FROM audit_event")).scalar_one()
    return int(releases), int(events)


def cli(ws: WorkspaceFixture, *args: str, actor: str = "alice") -> Ran:
    return shipdeck(*args, env=ws.env(actor))


def test_digest_is_sha256_of_the_canonical_manifest(ws: WorkspaceFixture) -> None:
    sha = ws.shas["chat-api"][3]
    r = cli(ws, "-o", "json", "release", "create", "chat-api", "1.0.0", "--commit", sha)
    assert r.code == 0, r.err
    release = r.json()["release"]
    expected = {
        "app": "chat-api",
        "version": "1.0.0",
        "commit": sha,
        "artifacts": [],
        "config": {"max_tokens": 4096},
    }
    encoded = json.dumps(expected, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert release["digest"] == "sha256:" + hashlib.sha256(encoded.encode()).hexdigest()
    assert release["commit"] == sha and release["created_by"] == "alice"
    assert r.json()["created"] is True
    assert (
        cli(ws, "release", "create", "chat-api", "1.0.0", "--commit", sha).out.strip()
        == (release["digest"])
    )


def test_digest_ignores_key_and_option_order(ws: WorkspaceFixture) -> None:
    alice = ws.as_user("alice")
    a = create_release(
        alice,
        "web",
        "2.0.0",
        artifacts={
            "bundle": "oci://registry.example/web:2",
            "model": "https://models.example/m.bin",
        },
        config={"theme": "dark", "retries": 3},
    )
    b = create_release(
        alice,
        "web",
        "2.0.0",
        artifacts={
            "model": "https://models.example/m.bin",
            "bundle": "oci://registry.example/web:2",
        },
        config={"retries": 3, "theme": "dark"},
    )
    assert a.created and not b.created
    assert a.release.digest == b.release.digest
    m1 = Manifest("web", "2.0.0", "c" * 40, config={"x": {"b": 1, "a": [1, 2]}, "y": "ü"})
    m2 = Manifest("web", "2.0.0", "c" * 40, config={"y": "ü", "x": {"a": [1, 2], "b": 1}})
    assert m1.digest == m2.digest and m1.encode() == m2.encode()
    assert Manifest.decode(m1.encode()) == m1


def test_config_option_values_are_typed_like_toml(ws: WorkspaceFixture) -> None:
    """--config max_tokens=4096 is the integer shipdeck.toml gives: same digest, no change."""
    plain = cli(ws, "-o", "json", "release", "create", "chat-api", "1.0.0")
    same = cli(
        ws, "-o", "json", "release", "create", "chat-api", "1.0.0", "--config", "max_tokens=4096"
    )
    assert same.code == 0, same.err
    assert same.json()["created"] is False
    assert same.json()["release"]["digest"] == plain.json()["release"]["digest"]
    bigger = cli(
        ws, "-o", "json", "release", "create", "chat-api", "1.1.0", "--config", "max_tokens=8192"
    )
    assert bigger.json()["release"]["config"] == {"max_tokens": 8192}


def test_identical_create_is_idempotent(ws: WorkspaceFixture) -> None:
    first = cli(ws, "-o", "json", "release", "create", "model-server", "0.1.0", "--notes", "n")
    before = counts(ws)
    again = cli(ws, "-o", "json", "release", "create", "model-server", "0.1.0", "--notes", "n")
    assert again.code == 0, again.err
    assert again.json()["created"] is False
    assert again.json()["release"] == first.json()["release"]
    assert counts(ws) == before == (1, 1)


def test_same_version_other_content_is_refused_and_changes_nothing(ws: WorkspaceFixture) -> None:
    shas = ws.shas["chat-api"]
    assert cli(ws, "release", "create", "chat-api", "1.0.0", "--commit", shas[1]).code == 0
    before = counts(ws)
    for extra in (
        ["--commit", shas[2]],
        ["--config", "max_tokens=1"],
        ["--artifact", "m=oci://registry.example/m:1"],
    ):
        r = cli(ws, "-o", "json", "release", "create", "chat-api", "1.0.0", *extra)
        assert r.code == 4, (extra, r.err)
        assert r.json()["error"]["kind"] == "conflict"
        assert "versions are immutable" in r.json()["error"]["message"]
        assert len(r.err.splitlines()) == 1 and "Traceback" not in r.err
    assert counts(ws) == before
    result = audit_log.verify(ws.as_user("erin"))
    assert result.ok and result.events == before[1]
    [rec] = list_releases(ws.as_user("erin"), "chat-api")
    assert rec.commit == shas[1]


def test_concurrent_creators_of_one_version_both_succeed(ws: WorkspaceFixture) -> None:
    """The second of two racing creators sees the first's row (idempotent), never a raw
    unique-key failure. The first is a transaction doing what create_release does (insert the
    row, append its event) and left open until the second is waiting on it."""
    alice = ws.as_user("alice")
    sha = ws.shas["chat-api"][-1]
    manifest = Manifest("chat-api", "3.0.0", sha, config={"max_tokens": 4096})
    outcome: list[Created | BaseException] = []

    def creator() -> None:
        try:
            outcome.append(create_release(alice, "chat-api", "3.0.0"))
        except BaseException as exc:  # reported below, with its type
            outcome.append(exc)

    bob = ws.as_user("bob")
    with ws.base.db.write() as conn:
        row = conn.execute(
            insert(RELEASES).values(
                app="chat-api",
                version="3.0.0",
                commit=sha,
                digest=manifest.digest,
                manifest=manifest.encode(),
                notes="",
                created_at=ws.clock.now(),
                created_by="bob",
            )
        ).inserted_primary_key
        assert row is not None
        bob.audit(
            conn,
            "release.created",
            {"version": "3.0.0"},
            app="chat-api",
            binds=[(RELEASES, {"id": row[0]})],
        )
        thread = threading.Thread(target=creator)
        thread.start()
        _wait_until_blocked(ws, thread)
    thread.join(60)
    [result] = outcome
    assert isinstance(result, Created), repr(result)
    assert not result.created and result.release.created_by == "bob"
    assert counts(ws) == (1, 1)
    assert audit_log.verify(alice).ok


def _wait_until_blocked(ws: WorkspaceFixture, thread: threading.Thread) -> None:
    """Until the creator waits on a lock (PostgreSQL), or a moment on SQLite where it queues at
    BEGIN IMMEDIATE (either way the outcome must be the same)."""
    if ws.base.db.is_sqlite:
        thread.join(0.3)
        return
    query = text(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
        "AND datname = current_database() "
        "AND (query LIKE '%FROM audit_head%' OR query LIKE 'INSERT INTO release%')"
    )
    with ws.base.db.engine.connect() as probe:
        for _ in range(600):
            waiting = probe.execute(query).scalar_one()
            probe.rollback()  # pg_stat_activity is a snapshot per transaction
            if waiting or not thread.is_alive():
                return
            time.sleep(0.05)


def test_commit_refs_resolve_to_the_full_sha(ws: WorkspaceFixture) -> None:
    repo = ws.root / "repos" / "chat-api"
    shas = ws.shas["chat-api"]
    git(repo, "branch", "hotfix", shas[4])
    git(repo, "tag", "v0.2", shas[2])
    git(repo, "tag", "-a", "-m", "release", "v0.5", shas[5])
    refs = {
        "short": (shas[6][:8], shas[6]),
        "branch": ("hotfix", shas[4]),
        "tag": ("v0.2", shas[2]),
        "annotated": ("v0.5", shas[5]),  # the tag object peels to its commit
        "relative": ("HEAD~3", shas[-4]),
    }
    for name, (given, want) in refs.items():
        r = cli(
            ws, "-o", "json", "release", "create", "chat-api", f"1.0.0+{name}", "--commit", given
        )
        assert r.code == 0, (name, r.err)
        assert r.json()["release"]["commit"] == want, name


def test_unknown_ref_is_a_one_line_error(ws: WorkspaceFixture) -> None:
    for ref in ("no-such-branch", "deadbeef", "--all"):
        r = cli(ws, "release", "create", "chat-api", "1.0.0", f"--commit={ref}")
        assert r.code == 2, (ref, r.err)  # a ref the repo lacks is a usage error
        assert len(r.err.splitlines()) == 1 and "Traceback" not in r.err
        assert f"unknown revision '{ref}'" in r.err or "is not a revision" in r.err
    assert counts(ws) == (0, 0)


def test_diff_lists_commits_between_newest_first_and_config_changes(ws: WorkspaceFixture) -> None:
    shas = ws.shas["chat-api"]
    alice = ws.as_user("alice")
    create_release(alice, "chat-api", "1.0.0", commit=shas[2])
    create_release(
        alice, "chat-api", "1.1.0", commit=shas[6], config={"max_tokens": 8192, "t": 0.2}
    )
    d = diff_releases(alice, "chat-api", "1.0.0", "1.1.0")
    assert [c.sha for c in d.commits] == [shas[6], shas[5], shas[4], shas[3]]
    assert [c.subject for c in d.commits] == [f"chat-api change {i}" for i in (6, 5, 4, 3)]
    assert [c.author for c in d.commits] == [AUTHORS[i % 4] for i in (6, 5, 4, 3)]
    assert [c.date.isoformat() for c in d.commits] == [
        f"2026-10-01T{i:02d}:00:00+00:00" for i in (6, 5, 4, 3)
    ]
    assert [(c.key, c.old, c.new) for c in d.config] == [
        ("max_tokens", 4096, 8192),
        ("t", None, 0.2),
    ]

    r = cli(ws, "-o", "json", "release", "diff", "chat-api", "1.0.0", "1.1.0")
    assert r.code == 0, r.err
    doc = r.json()["diff"]
    assert (doc["from"], doc["to"]) == ("1.0.0", "1.1.0")
    assert [c["sha"] for c in doc["commits"]] == [shas[6], shas[5], shas[4], shas[3]]
    assert doc["config"] == [
        {"key": "max_tokens", "old": 4096, "new": 8192},
        {"key": "t", "old": None, "new": 0.2},
    ]
    table = cli(ws, "release", "diff", "chat-api", "1.0.0", "1.1.0").out.splitlines()
    assert table[0] == "chat-api 1.0.0 → 1.1.0: 4 commit(s)"
    assert table[1] == f"  {shas[6][:10]}  2026-10-01  {AUTHORS[6 % 4]}: chat-api change 6"
    assert "  config max_tokens: 4096 → 8192" in table

    back = diff_releases(alice, "chat-api", "1.1.0", "1.0.0")
    assert back.commits == []  # nothing of 1.0.0 is missing from 1.1.0


def test_unknown_app_and_release_are_usage_errors(ws: WorkspaceFixture) -> None:
    r = cli(ws, "release", "create", "chat", "1.0.0")
    assert r.code == 2 and "unknown app 'chat'" in r.err
    r = cli(ws, "-o", "json", "release", "show", "chat-api", "9.9.9")
    assert r.code == 2 and r.json()["error"]["kind"] == "not_found"
    r = cli(ws, "release", "create", "chat-api", "bad version")
    assert r.code == 2 and "without spaces" in r.err
    assert counts(ws) == (0, 0)


SECRET_TOML = BASIC_TOML.replace(
    "config = { max_tokens = 4096 }",
    'config = { max_tokens = 4096, api_key = "plain-looking-value-1234",'
    f' endpoint = "https://llm.example/v1?key={HF_TOKEN}" }}',
)


def test_secrets_never_reach_the_audit_log_json_or_stderr(ws: WorkspaceFixture) -> None:
    ws.write_config(SECRET_TOML)
    secrets = (HF_TOKEN, "plain-looking-value-1234")
    runs = [
        cli(
            ws,
            "-o",
            "json",
            "release",
            "create",
            "chat-api",
            "1.0.0",
            "--notes",
            f"rotated key {HF_TOKEN}",
            "--artifact",
            f"model=https://models.example/m.bin?token={HF_TOKEN}",
            "--config",
            f"api_key={HF_TOKEN}",
        ),
        cli(ws, "release", "create", "chat-api", "1.0.1", "--artifact", f"oops{HF_TOKEN}"),
        cli(ws, "release", "create", "chat-api", "1.0.2", "--notes", f"token {HF_TOKEN}"),
        cli(ws, "-o", "json", "release", "create", "chat-api", "1.0.0", "--notes", HF_TOKEN),
        cli(ws, "-o", "json", "release", "show", "chat-api", "1.0.0"),
        cli(ws, "release", "show", "chat-api", "1.0.2"),
        cli(ws, "-o", "json", "release", "list"),
        cli(ws, "-o", "json", "status"),
        cli(ws, "-o", "json", "audit", "list"),
        cli(ws, "audit", "export", "--format", "jsonl"),
        cli(ws, "-o", "yaml", "release", "show", "chat-api", "1.0.0"),
    ]
    assert [r.code for r in runs] == [0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0], [r.err for r in runs]
    shown = runs[0].json()["release"]
    assert shown["artifacts"][0]["uri"] == "https://models.example/m.bin?token=***"
    assert shown["config"]["api_key"] == "***" and shown["config"]["max_tokens"] == 4096
    for r in runs:
        for secret in secrets:
            assert secret not in r.out and secret not in r.err
    with ws.base.db.read() as conn:
        rows = conn.execute(text("SELECT * FROM audit_event")).all()
    blob = repr(rows).encode() + b"".join(bytes(r.payload) for r in rows)
    assert len(rows) == 2
    for secret in secrets:
        assert secret.encode() not in blob
    notes = json.loads(bytes(rows[0].payload))["notes"]
    assert notes == "rotated key ***"
