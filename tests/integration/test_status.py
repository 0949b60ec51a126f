"""`shipdeck status` on repositories with known histories, on SQLite and PostgreSQL.

Deployments are recorded by `record_deployment` (tests/support/deployments.py), the way the run
engine records them: the deployment row and its audit event in one transaction.
"""

from __future__ import annotations

import shutil
import threading
import time
from dataclasses import replace
from datetime import timedelta
from typing import Any

from sqlalchemy import insert, text, update

from shipdeck.adapters.git_repo import GitRepositories
from shipdeck.core.services import audit_log
from shipdeck.core.services.context import Context
from shipdeck.core.services.releases import create_release
from shipdeck.core.services.status import status
from shipdeck.core.storage.tables import DISTANCES, LEASES
from tests.integration.test_releases import git
from tests.support.cli import shipdeck
from tests.support.deployments import record_deployment
from tests.support.terminal import shipdeck_on_terminal
from tests.support.workspace import BASIC_TOML, WorkspaceFixture

_DIST = DISTANCES


def merge_repo(ws: WorkspaceFixture) -> dict[str, str]:
    """web's history with a merge: main c0..c4, feature f1, f2 branched at c2, then merge M.
    From c2 to M, `git rev-list` counts c3, c4, f1, f2 and M: five commits."""
    repo = ws.root / "repos" / "web-merge"
    repo.mkdir(parents=True)
    shas: dict[str, str] = {}

    def commit(name: str) -> None:
        (repo / f"{name}.txt").write_text(name)
        git(repo, "add", "-A")
        git(repo, "-c", "user.name=Tess", "-c", "user.email=t@example.com", "commit", "-qm", name)
        shas[name] = git(repo, "rev-parse", "HEAD")

    git(repo, "init", "-q", "-b", "main")
    for name in ("c0", "c1", "c2"):
        commit(name)
    git(repo, "checkout", "-qb", "feature")
    commit("f1")
    commit("f2")
    git(repo, "checkout", "-q", "main")
    commit("c3")
    commit("c4")
    git(
        repo,
        "-c",
        "user.name=T",
        "-c",
        "user.email=t@e",
        "merge",
        "-q",
        "--no-ff",
        "-m",
        "M",
        "feature",
    )
    shas["M"] = git(repo, "rev-parse", "HEAD")
    ws.write_config(BASIC_TOML.replace('repo = "repos/web"', 'repo = "repos/web-merge"'))
    return shas


def populate(ws: WorkspaceFixture) -> dict[str, str]:
    """Releases and deployments with known distances (see test_commits_behind_*)."""
    web = merge_repo(ws)
    alice = ws.as_user("alice")
    chat = ws.shas["chat-api"]
    create_release(alice, "chat-api", "1.0.0", commit=chat[1])
    create_release(alice, "chat-api", "1.1.0", commit=chat[4])
    create_release(alice, "chat-api", "2.0.0", commit=chat[7])
    create_release(alice, "web", "1.0.0", commit=web["c2"])
    create_release(alice, "web", "2.0.0", commit=web["M"])
    create_release(alice, "model-server", "0.1.0", commit=ws.shas["model-server"][4])
    record_deployment(alice, "chat-api", "staging", "1.0.0", color="blue")
    ws.clock.advance(hours=1)
    record_deployment(alice, "chat-api", "staging", "1.1.0", color="green")
    record_deployment(alice, "chat-api", "prod", "1.0.0", color="green")
    record_deployment(alice, "web", "prod", "1.0.0", color="blue")
    record_deployment(alice, "web", "staging", "2.0.0", color="green")
    record_deployment(alice, "model-server", "prod", "0.1.0", color="blue")
    return web


def cells(ctx: Context, **kw: Any) -> dict[tuple[str, str], Any]:
    return {(a.app, c.env): c for a in status(ctx, **kw) for c in a.cells}


def test_nothing_recorded_yet(ws: WorkspaceFixture) -> None:
    got = cells(ws.as_user("erin"))
    assert len(got) == 6
    for c in got.values():
        assert c.deployed is None and c.latest is None and c.commits_behind is None
        assert c.lock is None and not c.drift and c.endpoint is None and c.window.open


def test_deployed_versus_latest_and_commits_behind(ws: WorkspaceFixture) -> None:
    populate(ws)
    got = cells(ws.as_user("erin"))
    chat_stg = got[("chat-api", "staging")]
    assert chat_stg.deployed.version == "1.1.0" and chat_stg.deployed.color == "green"
    assert chat_stg.latest.version == "2.0.0"
    assert chat_stg.commits_behind == 3  # chat[4]..chat[7]
    assert got[("chat-api", "prod")].deployed.version == "1.0.0"
    assert got[("chat-api", "prod")].commits_behind == 6  # chat[1]..chat[7]
    assert got[("web", "prod")].commits_behind == 5  # c3, c4, f1, f2 and the merge
    assert got[("web", "staging")].commits_behind == 0
    assert got[("model-server", "prod")].commits_behind == 0
    assert got[("model-server", "staging")].deployed is None
    assert got[("model-server", "staging")].commits_behind is None
    assert got[("model-server", "staging")].latest.version == "0.1.0"


def test_newest_succeeded_deployment_is_live(ws: WorkspaceFixture) -> None:
    populate(ws)
    alice = ws.as_user("alice")
    record_deployment(alice, "chat-api", "prod", "2.0.0", color="blue", outcome="rolled_back")
    c = cells(alice)[("chat-api", "prod")]
    assert c.deployed.version == "1.0.0"  # the failed attempt did not replace it
    assert c.last_outcome == "rolled_back"
    record_deployment(alice, "chat-api", "prod", "2.0.0", color="blue")
    c = cells(alice)[("chat-api", "prod")]
    assert (c.deployed.version, c.commits_behind, c.last_outcome) == ("2.0.0", 0, "succeeded")


def test_commit_distances_are_cached_and_then_read_from_the_cache(ws: WorkspaceFixture) -> None:
    web = populate(ws)
    chat = ws.shas["chat-api"]
    erin = ws.as_user("erin")
    status(erin)
    with ws.base.db.read() as conn:
        rows = {
            tuple(r)
            for r in conn.execute(text('SELECT repo, old, new, "count" FROM commit_distance'))
        }
    assert rows == {
        ("repos/chat-api", chat[4], chat[7], 3),
        ("repos/chat-api", chat[1], chat[7], 6),
        ("repos/web-merge", web["c2"], web["M"], 5),
    }
    # From now on git is not asked: a changed cache row shows, and the repository may be gone.
    with ws.base.db.write() as conn:
        conn.execute(update(_DIST).where(_DIST.c.old == web["c2"]).values(count=41))
    shutil.rmtree(ws.root / "repos" / "web-merge")
    assert cells(erin)[("web", "prod")].commits_behind == 41
    assert cells(erin)[("chat-api", "prod")].commits_behind == 6


class NoGit:
    """A git port that must not be asked."""

    def count_pairs(self, repo: object, pairs: object) -> dict[tuple[str, str], int]:
        raise AssertionError("git asked for counts")


def test_counts_missing_from_the_cache_can_be_left_for_a_later_call(ws: WorkspaceFixture) -> None:
    """The dashboard's first frame: what is recorded, without waiting for git."""
    populate(ws)
    erin = ws.as_user("erin")

    first = cells(replace(erin, git=NoGit()), count_missing=False)
    waiting = first[("chat-api", "prod")]
    assert waiting.counting and waiting.commits_behind is None
    assert waiting.deployed.version == "1.0.0" and waiting.latest.version == "2.0.0"
    same = first[("web", "staging")]  # deployed the latest commit: nothing to count
    assert not same.counting and same.commits_behind == 0
    assert not first[("model-server", "staging")].counting  # nothing deployed
    counted = cells(erin)
    assert counted[("chat-api", "prod")].commits_behind == 6
    assert not any(c.counting for c in counted.values())
    again = cells(replace(erin, git=NoGit()), count_missing=False)
    assert again[("chat-api", "prod")].commits_behind == 6  # cached now: no longer counting
    assert not again[("chat-api", "prod")].counting


def test_unknown_commit_shows_unknown_and_is_not_cached(ws: WorkspaceFixture) -> None:
    populate(ws)
    shutil.rmtree(ws.root / "repos" / "web-merge")
    c = cells(ws.as_user("erin"))[("web", "prod")]
    assert c.commits_behind is None and c.deployed.version == "1.0.0"
    with ws.base.db.read() as conn:
        assert (
            conn.execute(
                text("SELECT count(*) FROM commit_distance WHERE repo = 'repos/web-merge'")
            ).scalar()
            == 0
        )


def test_commits_lists_what_env_is_missing(ws: WorkspaceFixture) -> None:
    web = populate(ws)
    c = cells(ws.as_user("erin"), app="web", env="prod", with_commits=True)
    assert list(c) == [("web", "prod")]
    commits = c[("web", "prod")].commits
    assert {x.sha for x in commits} == {web[n] for n in ("c3", "c4", "f1", "f2", "M")}
    assert commits[0].sha == web["M"] and commits[0].subject == "M"


def test_concurrent_status_runs_share_the_cache_without_failing(ws: WorkspaceFixture) -> None:
    """Two status runs counting one new pair: the second insert of the same cache row must not
    fail the command. The other run is a transaction left open holding that row."""
    populate(ws)
    chat = ws.shas["chat-api"]
    erin = ws.as_user("erin")
    outcome: list[Any] = []

    def run_status() -> None:
        try:
            outcome.append(cells(erin)[("chat-api", "prod")].commits_behind)
        except BaseException as exc:  # reported below, with its type
            outcome.append(exc)

    with ws.base.db.write() as conn:
        conn.execute(insert(_DIST).values(repo="repos/chat-api", old=chat[1], new=chat[7], count=6))
        thread = threading.Thread(target=run_status)
        thread.start()
        _wait_for_lock(ws, thread, "INSERT INTO commit_distance")
    thread.join(60)
    assert outcome == [6]


def _wait_for_lock(ws: WorkspaceFixture, thread: threading.Thread, statement: str) -> None:
    if ws.base.db.is_sqlite:
        thread.join(0.3)  # queued at BEGIN IMMEDIATE, or done: the outcome must be the same
        return
    query = text(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
        "AND datname = current_database() AND query LIKE :q"
    )
    with ws.base.db.engine.connect() as probe:
        for _ in range(600):
            waiting = probe.execute(query, {"q": statement + "%"}).scalar_one()
            probe.rollback()  # pg_stat_activity is a snapshot per transaction
            if waiting or not thread.is_alive():
                return
            time.sleep(0.05)


def test_lock_and_window_state(ws: WorkspaceFixture) -> None:
    ws.write_config(
        BASIC_TOML.replace(
            "[environments.prod]\n",
            '[windows.office]\ncron = "0 9 * * 1-5"\nduration = "8h"\n\n'
            '[environments.prod]\nwindows = ["office"]\n',
        )
    )
    now = ws.clock.now()  # Tuesday 12:00 UTC
    with ws.base.db.write() as conn:
        conn.execute(
            insert(LEASES).values(
                env="prod",
                epoch=1,
                holder="alice",
                plan_id="p-1",
                since=now,
                expires_at=now + timedelta(minutes=5),
            )
        )
        conn.execute(
            insert(LEASES).values(
                env="staging",
                epoch=1,
                holder="bob",
                since=now - timedelta(hours=1),
                expires_at=now - timedelta(minutes=1),
            )
        )
    got = cells(ws.as_user("erin"))
    prod = got[("web", "prod")]
    assert prod.lock is not None and (prod.lock.holder, prod.lock.plan_id) == ("alice", "p-1")
    assert got[("web", "staging")].lock is None  # expired
    assert prod.window.open and prod.window.next_close == now.replace(hour=17)
    ws.clock.advance(hours=6)
    closed = cells(ws.as_user("erin"))[("web", "prod")].window
    assert not closed.open and closed.next_open == (now + timedelta(days=1)).replace(hour=9)


STATUS_CELL_KEYS = {
    "env",
    "deployed",
    "latest",
    "commits_behind",
    "drift",
    "endpoint",
    "window",
    "lock",
}


def test_status_json_follows_the_contract(ws: WorkspaceFixture) -> None:
    web = populate(ws)
    r = shipdeck("-o", "json", "status", env=ws.env("erin"))
    assert r.code == 0, r.err
    doc = r.json()
    assert doc["schema_version"] == 1
    assert [a["app"] for a in doc["apps"]] == ["model-server", "chat-api", "web"]
    for a in doc["apps"]:
        assert [e["env"] for e in a["environments"]] == ["staging", "prod"]
        for e in a["environments"]:
            assert e.keys() >= STATUS_CELL_KEYS
            assert {"open", "next_open", "next_close"} <= e["window"].keys()
            assert isinstance(e["window"]["open"], bool) and isinstance(e["drift"], bool)
            assert (
                e["deployed"] is None
                or {"version", "commit", "digest", "color", "at", "by"} <= e["deployed"].keys()
            )
            assert e["latest"] is None or {"version", "commit", "digest"} <= e["latest"].keys()
            assert e["lock"] is None
    web_prod = doc["apps"][2]["environments"][1]
    assert web_prod["deployed"]["version"] == "1.0.0"
    assert web_prod["deployed"]["commit"] == web["c2"]
    assert web_prod["deployed"]["by"] == "alice" and web_prod["deployed"]["color"] == "blue"
    assert web_prod["deployed"]["at"] == "2026-11-24T13:00:00+00:00"
    assert web_prod["latest"]["commit"] == web["M"]
    assert web_prod["latest"]["digest"].startswith("sha256:")
    assert web_prod["commits_behind"] == 5
    chat_prod = doc["apps"][1]["environments"][1]
    assert chat_prod["config_changes"] == []  # same config in 1.0.0 and 2.0.0
    one = shipdeck("-o", "json", "status", "--app", "web", "--env", "prod", env=ws.env("erin"))
    assert [[e["env"] for e in a["environments"]] for a in one.json()["apps"]] == [["prod"]]


def test_status_table_fits_an_80_column_terminal(ws: WorkspaceFixture) -> None:
    populate(ws)
    alice = ws.as_user("alice")
    many = {f"setting_number_{i}": i for i in range(12)}
    create_release(alice, "chat-api", "3.0.0-with-a-rather-long-version", config=many)
    r = shipdeck_on_terminal("status", env=ws.env("erin"), columns=80)
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert lines[0].split() == ["APP", "ENV", "DEPLOYED", "COLOR", "LATEST", "BEHIND", "NOTES"]
    assert len(lines) == 7
    assert all(len(line) <= 80 for line in lines), [len(line) for line in lines]
    chat_stg = next(line for line in lines if line.startswith("chat-api") and " staging " in line)
    assert "  3.0.0-with-a…  3  " in chat_stg  # the long version gave way to the notes
    assert chat_stg.endswith("config: setting_num…")
    repo = ws.root / "repos" / "chat-api"
    (repo / "long.txt").write_text("x")
    git(repo, "add", "-A")
    subject = "Rework the streaming path so that partial tokens are flushed before the keep-alive"
    git(repo, "-c", "user.name=Tess", "-c", "user.email=t@example.com", "commit", "-qm", subject)
    create_release(alice, "chat-api", "3.1.0")
    commits = shipdeck_on_terminal("status", "--commits", env=ws.env("erin"), columns=80)
    assert commits.code == 0
    listed = commits.out.splitlines()[7:]
    assert len(listed) == 16  # chat-api: 4 and 7 commits behind; web prod: 5
    assert listed[0].endswith("  Tess: Rework the streaming path so th…")
    assert len(listed[0]) == 80
    assert all(len(line) <= 80 for line in listed), [len(line) for line in listed]


def test_status_leaves_the_audit_log_alone(ws: WorkspaceFixture) -> None:
    populate(ws)
    before = audit_log.verify(ws.as_user("erin"))
    assert shipdeck("status", env=ws.env("erin")).code == 0
    assert shipdeck("--read-only", "-o", "json", "status", env=ws.env("erin")).code == 0
    after = audit_log.verify(ws.as_user("erin"))
    assert after.ok and (after.events, after.head_hash) == (before.events, before.head_hash)
    assert before.events == 12  # six releases, six deployments


def test_one_history_walk_counts_every_pair_and_leaves_out_unknown_commits(
    ws: WorkspaceFixture,
) -> None:
    web = merge_repo(ws)
    unknown = "0" * 40
    counts = GitRepositories().count_pairs(
        ws.root / "repos" / "web-merge",
        [(web["c2"], web["M"]), (web["f1"], web["M"]), (web["M"], web["c4"]), (unknown, web["M"])],
    )
    assert counts == {(web["c2"], web["M"]): 5, (web["f1"], web["M"]): 4, (web["M"], web["c4"]): 0}


def test_marks_say_running_only_for_the_apps_of_the_running_plan(ws: WorkspaceFixture) -> None:
    """One word per cell, decided in core (Cell.mark, 'mark' in JSON): a chat-api-only run marks
    chat-api running and leaves web live; a failed last run over a live release is
    'last_failed', with nothing live it is 'failed'."""
    from shipdeck.core.services.plans import create_plan
    from shipdeck.core.services.runs import start_run

    # command targets are not probed by status (no drift to mask the marks); nothing runs them
    targets = "".join(
        f'\n[apps.{app}.targets.{env}]\nadapter = "command"\nstage = ["true"]\n'
        'health = ["true"]\nswitch = ["true"]\nlive_color = ["echo", "blue"]\n'
        for app in ("model-server", "chat-api", "web")
        for env in ("staging", "prod")
    )
    ws.write_config(BASIC_TOML + targets)
    alice = ws.as_user("alice")
    for app in ("model-server", "chat-api", "web"):
        create_release(alice, app, "1.0.0")
        record_deployment(alice, app, "staging", "1.0.0")
    create_release(alice, "chat-api", "1.1.0")
    create_release(alice, "web", "1.1.0")
    record_deployment(alice, "web", "staging", "1.1.0", outcome="failed")
    record_deployment(alice, "web", "prod", "1.0.0", outcome="failed")
    start_run(alice, create_plan(alice, "staging", ["chat-api@1.1.0"]).id)  # holds the lease

    got = cells(ws.as_user("erin"))
    assert got[("chat-api", "staging")].mark == "running"
    assert got[("model-server", "staging")].mark == "live"
    assert got[("web", "staging")].mark == "last_failed"
    assert got[("web", "prod")].mark == "failed"
    assert got[("model-server", "prod")].mark == "none"
    # the JSON document carries the same word (the CLI's clock is real: the lease taken on the
    # test's fixed clock has long expired there, so the document is read from the cell)
    doc = got[("chat-api", "staging")].as_dict()
    assert doc["mark"] == "running" and doc["lock"]["apps"] == ["chat-api"]


def test_status_json_masks_credentials_wherever_free_text_reaches_it(ws: WorkspaceFixture) -> None:
    """`status -o json` is redacted field by field where free text reaches it (status_document),
    not walked whole: an on-call webhook, an endpoint's userinfo, a commit subject and author,
    and a value known to be secret only from the environment, each planted and looked for."""
    hook = "https://hooks.slack.com/services/T01ABCDEF/B01ABCDEF/" + "abcXYZ123" * 3
    url_token = "tok3n" + "Zr8" * 4
    pat = "ghp_" + "C0mmitSubj3ct" * 3
    known = "plain" + "Known" * 4  # no credential shape: masked because the environment says so
    toml = BASIC_TOML.replace(
        'repo = "repos/web"\n', f'repo = "repos/web"\noncall = "{hook}"\nowner = "team {known}"\n'
    )
    ws.write_config(
        toml + '\n[apps.web.targets.prod]\nadapter = "command"\nstage = ["true"]\n'
        'health = ["true"]\nswitch = ["true"]\nlive_color = ["echo", "blue"]\n'
        f'endpoint = "https://deploy:{url_token}@web.example.com/"\n'
    )
    repo = ws.root / "repos" / "web"
    alice = ws.as_user("alice")
    create_release(alice, "web", "1.0.0")
    record_deployment(alice, "web", "prod", "1.0.0")
    git(repo, "commit", "-q", "--allow-empty", "-m", f"rotate {pat}", f"--author={known} <k@x>")
    create_release(alice, "web", "1.1.0")

    def web_status(env: dict[str, str]) -> tuple[str, dict[str, Any], dict[str, Any]]:
        got = shipdeck("-o", "json", "status", "--app", "web", "--commits", env=env)
        assert got.code == 0, got.err
        web = got.json()["apps"][0]
        return got.out, web, next(c for c in web["environments"] if c["env"] == "prod")

    out, web, prod = web_status(ws.env("erin"))
    for planted in (hook, url_token, pat):
        assert planted not in out
    assert web["owner"] == f"team {known}" and web["oncall"] == "***"
    assert prod["endpoint"] == "https://deploy:***@web.example.com/"
    assert [(c["author"], c["subject"]) for c in prod["commits"]] == [(known, "rotate ***")]
    assert prod["commits_behind"] == 1

    out, web, prod = web_status({**ws.env("erin"), "DEPLOY_TOKEN": known})
    assert known not in out and "team ***" in out
    assert [(c["author"], c["subject"]) for c in prod["commits"]] == [("***", "rotate ***")]
