"""Issue 10 attacks on the evidence: state rows bound to the audit chain, checkpoints an
appender cannot fool, tampering at the storage-type level, and a runner started by hand.

Each test plays the attacker with write access to the database (any user of a shared SQLite
workspace has it) and asserts the precise outcome: what is refused, the exit code, and the
sentence naming table, key and sequence. Real SQLite and PostgreSQL (the `ws` fixture runs both).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import insert, text

from shipdeck.core.services import audit_log
from shipdeck.core.services.audit_log import AuditFilter
from shipdeck.core.services.plans import (
    PlanView,
    approve,
    check_item,
    create_plan,
    get_plan,
    reject,
)
from shipdeck.core.services.releases import create_release
from shipdeck.core.services.runs import start_run
from shipdeck.core.storage import audit_head
from shipdeck.core.storage.tables import APPROVALS, DEPLOYMENTS
from shipdeck.core.system.launcher import hand_over
from tests.integration.shipping import local_toml
from tests.support.cli import REPO_ROOT, Ran, shipdeck
from tests.support.workspace import WorkspaceFixture


@pytest.fixture(autouse=True)
def targets(ws: WorkspaceFixture) -> None:
    """Every app has a local target in both environments (configured; no test here starts one)."""
    ws.write_config(local_toml())


def verify(ws: WorkspaceFixture, *flags: str) -> Ran:
    return shipdeck("-o", "json", "audit", "verify", *flags, env=ws.env("erin"))


def broken_at(ws: WorkspaceFixture, seq: int, *flags: str) -> str:
    """verify fails with exit 7 at `seq`; returns its reason."""
    r = verify(ws, *flags)
    assert r.code == 7, (r.out, r.err)
    doc = r.json()
    assert doc["ok"] is False and doc["first_bad_seq"] == seq, doc
    return str(doc["reason"])


def head_seq(ws: WorkspaceFixture) -> int:
    with ws.base.db.read() as conn:
        return audit_head.head(conn)[0]


def prod_plan(ws: WorkspaceFixture) -> PlanView:
    """A prod plan (two approvals from approvers, one checklist item) drafted by alice."""
    alice = ws.as_user("alice")
    create_release(alice, "model-server", "1.0.0")
    return create_plan(alice, "prod", ["model-server@1.0.0"])


def blockers(plan: PlanView) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for b in plan.blockers:
        out.setdefault(b.kind, []).append(b.message)
    return out


# --- state rows bound to the chain -----------------------------------------------------------


def test_approval_rows_inserted_straight_do_not_count_and_verify_names_them(
    ws: WorkspaceFixture,
) -> None:
    plan = prod_plan(ws)
    with ws.base.db.write() as conn:
        for by in ("bob", "carol"):
            conn.execute(
                insert(APPROVALS).values(
                    plan_id=plan.id, by=by, at=ws.clock.now(), digest=plan.digest,
                    decision="approve", comment="",
                )
            )  # fmt: skip
    after = get_plan(ws.as_user("alice"), plan.id)
    found = blockers(after)
    assert "approvals_missing" in found, found  # the forged rows do not count ...
    assert found["unverified"] == [  # ... and each is named
        "approval row id=1 has no audit event (forged): it does not count (run 'shipdeck audit verify')",
        "approval row id=2 has no audit event (forged): it does not count (run 'shipdeck audit verify')",
    ]
    run = shipdeck("--yes", "plan", "run", plan.id, env=ws.env("alice"))
    assert run.code == 3 and "approval row id=1 has no audit event" in run.err
    reason = broken_at(ws, head_seq(ws) + 1)
    assert reason == "approval row id=1 has no audit event (forged) (and 1 more)"


def test_an_altered_approval_stops_counting_and_verify_names_its_event(
    ws: WorkspaceFixture,
) -> None:
    plan = prod_plan(ws)
    approve(ws.as_user("bob"), plan.id)
    [ev] = audit_log.list_events(ws.base, AuditFilter(kind="plan.approved"))
    with ws.base.db.write() as conn:
        conn.execute(text("UPDATE approval SET by = 'carol' WHERE id = 1"))
    reason = broken_at(ws, ev.seq)
    assert reason == f"approval row id=1 differs from event {ev.seq} (altered)"
    found = blockers(get_plan(ws.as_user("alice"), plan.id))
    assert found["unverified"][0].startswith(f"approval row id=1 differs from event {ev.seq}")


def test_a_deleted_tick_is_named_with_the_event_that_created_it(ws: WorkspaceFixture) -> None:
    plan = prod_plan(ws)
    item = plan.checklist[0].item
    check_item(ws.as_user("bob"), plan.id, item)
    [ev] = audit_log.list_events(ws.base, AuditFilter(kind="plan.checked"))
    with ws.base.db.write() as conn:
        conn.execute(text("DELETE FROM checklist_tick"))
    reason = broken_at(ws, ev.seq)
    assert reason == (
        f"checklist_tick row plan_id={plan.id}, item={item} created by event {ev.seq} is gone (deleted)"
    )


def test_an_edited_release_is_refused_by_show_and_deploy_and_named_by_verify(
    ws: WorkspaceFixture,
) -> None:
    alice = ws.as_user("alice")
    rel = create_release(alice, "web", "1.0.0").release
    [ev] = audit_log.list_events(ws.base, AuditFilter(kind="release.created"))
    other = ws.shas["web"][0]
    forged = rel.manifest.encode().replace(rel.commit.encode(), other.encode())
    with ws.base.db.write() as conn:
        conn.execute(
            text('UPDATE release SET manifest = :m, "commit" = :c'), {"m": forged, "c": other}
        )
    assert broken_at(ws, ev.seq) == f"release row id=1 differs from event {ev.seq} (altered)"
    show = shipdeck("-o", "json", "release", "show", "web", "1.0.0", env=ws.env("alice"))
    assert show.code == 7, show.out
    message = show.json()["error"]["message"]
    assert message.startswith("release web 1.0.0 (table release, id=1, event ")
    assert "(altered)" in message and rel.digest[:19] in message
    deploy = shipdeck("--yes", "deploy", "web", "1.0.0", "--env", "staging", env=ws.env("alice"))
    assert deploy.code == 7 and "release web 1.0.0" in deploy.err


def test_a_release_row_edited_around_its_digest_is_still_caught(ws: WorkspaceFixture) -> None:
    """The manifest and its digest agree (recomputed by the attacker); only the binding to the
    event shows the edit."""
    alice = ws.as_user("alice")
    rel = create_release(alice, "web", "1.0.0").release
    [ev] = audit_log.list_events(ws.base, AuditFilter(kind="release.created"))
    with ws.base.db.write() as conn:
        conn.execute(text("UPDATE release SET notes = 'approved by the CTO'"))
    assert broken_at(ws, ev.seq) == f"release row id=1 differs from event {ev.seq} (altered)"
    show = shipdeck("release", "show", "web", "1.0.0", env=ws.env("alice"))
    assert show.code == 7 and "release row id=1 differs from event" in show.err
    assert rel.digest  # the digest itself was not touched


def test_honest_state_verifies_with_its_rows_counted(ws: WorkspaceFixture) -> None:
    plan = prod_plan(ws)
    approve(ws.as_user("bob"), plan.id)
    check_item(ws.as_user("bob"), plan.id, plan.checklist[0].item)
    r = verify(ws)
    assert r.code == 0, r.out
    assert r.json()["state_rows"] == 4  # release, plan, approval, tick


def test_a_rejected_plan_set_back_to_approved_is_refused_and_named(ws: WorkspaceFixture) -> None:
    """The plan's state moves after its creation; each move rebinds it, so an edited state is
    as visible as an edited body."""
    plan = prod_plan(ws)
    reject(ws.as_user("bob"), plan.id, "not this week")
    [ev] = audit_log.list_events(ws.base, AuditFilter(kind="plan.rejected"))
    with ws.base.db.write() as conn:
        conn.execute(text("UPDATE plan SET state = 'approved', result = ''"))
    assert broken_at(ws, ev.seq) == f"plan row id={plan.id} differs from event {ev.seq} (altered)"
    found = blockers(get_plan(ws.as_user("alice"), plan.id))
    assert found["unverified"][0].startswith(f"plan row id={plan.id} differs from event {ev.seq}")
    run = shipdeck("--yes", "plan", "run", plan.id, env=ws.env("alice"))
    assert run.code == 3, run.err
    assert f"plan row id={plan.id} differs from event {ev.seq} (altered)" in run.err
    assert audit_log.list_events(ws.base, AuditFilter(kind="run.*")) == []


def test_an_edited_plan_is_not_rebound_by_the_next_change(ws: WorkspaceFixture) -> None:
    """An approval rebinds the plan row; were it to bind whatever the row says now, it would
    launder the edit into the chain. It refuses instead, and nothing is recorded."""
    plan = prod_plan(ws)
    [ev] = audit_log.list_events(ws.base, AuditFilter(kind="plan.created"))
    before = head_seq(ws)
    with ws.base.db.write() as conn:
        conn.execute(text("UPDATE plan SET name = 'hotfix approved by the CTO'"))
    r = shipdeck("plan", "approve", plan.id, env=ws.env("bob"))
    assert r.code == 7, r.err
    assert r.err.strip() == (
        f"shipdeck: error: plan row id={plan.id} differs from event {ev.seq} (altered): refusing to "
        "change it; `shipdeck audit verify` lists every such row"
    )
    assert head_seq(ws) == before
    assert broken_at(ws, ev.seq) == f"plan row id={plan.id} differs from event {ev.seq} (altered)"


def test_an_edited_override_is_not_laundered_by_its_acknowledgement(ws: WorkspaceFixture) -> None:
    """alice's override is extended behind shipdeck's back from one hour to a week; bob's
    acknowledgement would rebind the row as it is now. It refuses instead, records nothing, and
    the extended override opens nothing."""
    from datetime import timedelta

    from shipdeck.core.services.plans import override

    plan = prod_plan(ws)
    o = override(ws.as_user("alice"), plan.id, "incident 7", timedelta(hours=1))
    [ev] = audit_log.list_events(ws.base, AuditFilter(kind="override.used"))
    with ws.base.db.write() as conn:
        conn.execute(
            text("UPDATE override SET until = :u WHERE id = :i"),
            {"u": (o.until + timedelta(days=7)).replace(tzinfo=None), "i": o.id},
        )
    before = head_seq(ws)
    r = shipdeck("review", "ack", str(o.id), env=ws.env("bob"))
    assert r.code == 7, r.err
    assert r.err.strip() == (
        f"shipdeck: error: override row id={o.id} differs from event {ev.seq} (altered): refusing "
        "to change it; `shipdeck audit verify` lists every such row"
    )
    assert head_seq(ws) == before
    assert "unverified" in blockers(get_plan(ws.base, plan.id))


def test_a_forged_deployment_does_not_choose_what_a_rollback_restores(ws: WorkspaceFixture) -> None:
    """A rollback needs no approval (it ends incidents), so a row written into the deployment
    table must not decide what it brings back: it rolls back from what really went live to
    what was live before, and verify names the forged row."""
    from shipdeck.core.services.rollbacks import preview_rollback
    from tests.support.deployments import record_deployment

    alice = ws.as_user("alice")
    for version in ("1.0.0", "1.1.0", "2.0.0"):
        create_release(alice, "web", version)
    record_deployment(alice, "web", "staging", "1.0.0")
    record_deployment(alice, "web", "staging", "2.0.0")
    assert (preview_rollback(alice, "web", "staging").to_version) == "1.0.0"
    with ws.base.db.write() as conn:
        old = conn.execute(text("SELECT * FROM release WHERE version = '1.1.0'")).one()
        conn.execute(insert(DEPLOYMENTS).values(
            app="web", env="staging", release_id=old.id, version="1.1.0", commit=old.commit,
            digest=old.digest, color="green", at=alice.now(), by="alice", outcome="succeeded",
        ))  # fmt: skip
    preview = preview_rollback(alice, "web", "staging")
    assert (preview.from_version, preview.to_version) == ("2.0.0", "1.0.0")
    assert "deployment row" in verify(ws).json()["reason"]


def test_a_deployment_forged_or_edited_into_staging_does_not_promote(ws: WorkspaceFixture) -> None:
    """prod requires the release to have succeeded in staging: a deployment row written straight
    into the table, or a failed one edited to succeeded, is not that evidence."""
    plan = prod_plan(ws)
    with ws.base.db.read() as conn:
        rel = conn.execute(text('SELECT id, version, "commit", digest FROM release')).one()
    with ws.base.db.write() as conn:
        conn.execute(
            insert(DEPLOYMENTS).values(
                app="model-server", env="staging", release_id=rel.id, version=rel.version,
                commit=rel.commit, digest=rel.digest, color="blue", at=ws.clock.now(),
                by="alice", plan_id=None, kind="deploy", outcome="succeeded",
            )
        )  # fmt: skip
    found = blockers(get_plan(ws.as_user("alice"), plan.id))
    assert found["not_promoted"] == [
        "model-server 1.0.0 has not succeeded in staging yet (ship it there first)"
    ]
    assert "deployment row id=1 has no audit event (forged): it does not count" in "".join(
        found["unverified"]
    )
    assert broken_at(ws, head_seq(ws) + 1) == "deployment row id=1 has no audit event (forged)"


# --- checkpoints -------------------------------------------------------------------------------


def test_disagreeing_checkpoints_for_one_sequence_are_an_integrity_failure(
    ws: WorkspaceFixture, tmp_path: Path
) -> None:
    create_release(ws.as_user("alice"), "web", "1.0.0")
    cps = tmp_path / "cps.jsonl"
    assert shipdeck("audit", "checkpoint", "--to", str(cps), env=ws.env("alice")).code == 0
    assert verify(ws, "--checkpoints", str(cps)).code == 0
    true = json.loads(cps.read_text().splitlines()[0])
    forged = {**true, "hash": "f" * 64}
    with cps.open("a") as fh:
        fh.write(json.dumps(forged) + "\n")
    reason = broken_at(ws, true["seq"], "--checkpoints", str(cps))
    assert reason == (
        f"checkpoints disagree about event {true['seq']}: {cps} line 1 says {true['hash'][:16]}, "
        f"{cps} line 2 says ffffffffffffffff (a forged head was appended)"
    )


def test_verify_without_checkpoints_says_what_it_cannot_prove(ws: WorkspaceFixture) -> None:
    create_release(ws.as_user("alice"), "web", "1.0.0")
    r = verify(ws)
    assert r.code == 0
    assert r.json()["warnings"] == [audit_log.NO_CHECKPOINTS]
    text_mode = shipdeck("audit", "verify", env=ws.env("erin"))
    assert text_mode.code == 0
    assert (
        "truncated log (its newest events removed and the head row fixed) cannot be detected"
        in (text_mode.err)
    )
    required = verify(ws, "--require-checkpoints")
    assert required.code == 7 and required.json()["reason"] == audit_log.NO_CHECKPOINTS


@pytest.mark.parametrize(
    "line",
    [
        '{"seq": 1e400, "hash": "%s"}',
        '{"seq": 2.0, "hash": "%s"}',
        '{"seq": "2", "hash": "%s"}',
        '{"seq": NaN, "hash": "%s"}',
    ],
)
def test_checkpoint_lines_with_impossible_sequences_are_exit_7(
    ws: WorkspaceFixture, tmp_path: Path, line: str
) -> None:
    cps = tmp_path / "cps.jsonl"
    cps.write_text(line % ("ab" * 32) + "\n")
    r = verify(ws, "--checkpoints", str(cps))
    assert r.code == 7, (r.out, r.err)
    message = r.json()["error"]["message"]
    assert message.startswith(f"checkpoint store tampered with: {cps}: line 1: ")


def test_an_open_intent_is_reported_not_hidden(ws: WorkspaceFixture) -> None:
    """An effect whose outcome never got written (the command died): verify passes, and says."""
    with ws.base.db.write() as conn:
        seq = ws.base.audit(conn, "task.token-limit.intent", {"new": {"tpm": 5}}, env="prod")
    doc = verify(ws).json()
    assert doc["ok"] is True and doc["open_intents"] == [seq]
    assert any(f"events {seq})" in w for w in doc["warnings"])
    rec = shipdeck("reconcile", env=ws.env("alice"))
    assert rec.code == 0 and rec.out.strip() == (
        f"intent {seq} task.token-limit (prod) by {ws.base.actor.name} has no outcome: "
        "it may or may not have happened; check it by hand"
    )
    with ws.base.db.write() as conn:  # its outcome arrives: nothing is open any more
        ws.base.audit(conn, "task.token-limit", {"intent_seq": seq}, env="prod")
    assert verify(ws).json()["open_intents"] == []


# --- tampering at the storage-type level -------------------------------------------------------


def _tamper_types(ws: WorkspaceFixture, what: str) -> None:
    pg = not ws.base.db.is_sqlite
    statements = {
        "payload_as_text": [
            "ALTER TABLE audit_event ALTER COLUMN payload TYPE text USING encode(payload, 'escape')"
            if pg
            else "UPDATE audit_event SET payload = CAST(payload AS TEXT) WHERE seq = 2"
        ],
        "at_as_integer": [
            "ALTER TABLE audit_event ALTER COLUMN at TYPE bigint USING extract(epoch from at)::bigint"
            if pg
            else "UPDATE audit_event SET at = 1764547200 WHERE seq = 2"
        ],
        "head_row_deleted": ["DELETE FROM audit_head"],
    }[what]
    with ws.base.db.write() as conn:
        for sql in statements:
            conn.execute(text(sql))


@pytest.mark.parametrize("what", ["payload_as_text", "at_as_integer", "head_row_deleted"])
def test_rows_of_the_wrong_storage_type_are_exit_7_not_a_bug(
    ws: WorkspaceFixture, what: str
) -> None:
    create_release(ws.as_user("alice"), "web", "1.0.0")
    create_release(ws.as_user("alice"), "web", "1.0.1")
    _tamper_types(ws, what)
    r = verify(ws)
    assert r.code == 7, (r.out, r.err)
    doc = r.json()
    if what == "head_row_deleted":
        assert doc["first_bad_seq"] == 3 and doc["reason"] == (
            "the chain head row is missing or malformed"
        )
    else:
        first = 2 if ws.base.db.is_sqlite else 1  # PostgreSQL: the whole column changed type
        assert doc["first_bad_seq"] == first
        assert doc["reason"].startswith(f"event {first} has a column of the wrong type (")


def test_an_event_moved_to_another_era_is_exit_7(ws: WorkspaceFixture) -> None:
    """The same digits before year 1: PostgreSQL's to_char, which verify hashes, would print
    them without the era, so the era edit must still break the chain at its event."""
    create_release(ws.as_user("alice"), "web", "1.0.0")
    create_release(ws.as_user("alice"), "web", "1.0.1")
    sql = (
        "UPDATE audit_event SET at = at || ' BC' WHERE seq = 2"
        if ws.base.db.is_sqlite
        else "UPDATE audit_event SET at = (to_char(at, 'YYYY-MM-DD HH24:MI:SS.US') || ' BC')"
        "::timestamp WHERE seq = 2"
    )
    with ws.base.db.write() as conn:
        conn.execute(text(sql))
    r = verify(ws)
    assert r.code == 7, (r.out, r.err)
    assert r.json()["first_bad_seq"] == 2


# --- the detached runner ---------------------------------------------------------------------


def test_a_runner_started_by_hand_is_refused_and_audited(ws: WorkspaceFixture) -> None:
    """Anyone can read plan and epoch from `plan show -o json`; without the token the launching
    command handed its runner through a pipe, a second engine for the same lease is refused."""
    alice = ws.as_user("alice")
    create_release(alice, "web", "1.0.0")
    plan = create_plan(alice, "staging", ["web@1.0.0"])
    ticket = start_run(alice, plan.id)
    argv = [
        sys.executable, "-m", "shipdeck.core.runner", "--workspace", str(ws.root),
        "--actor", "alice", plan.id, str(ticket.epoch),
    ]  # fmt: skip
    env = {**ws.env("alice"), "PYTHONPATH": str(REPO_ROOT)}
    by_hand = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    guessed_fd = hand_over("x" * 43)  # the right channel, a guessed token
    try:
        guessed = subprocess.run(
            argv,
            env={**env, "SHIPDECK_RUNNER_TOKEN_FD": str(guessed_fd)},
            pass_fds=(guessed_fd,),
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        os.close(guessed_fd)
    reasons = ["no runner token", "a runner token that is used up or was never issued"]
    for ran, why in zip((by_hand, guessed), reasons, strict=True):
        assert ran.returncode == 4, (ran.stdout, ran.stderr)
        assert ran.stdout.strip() == (
            f"runner: not_permitted: runner for plan {plan.id} epoch {ticket.epoch} refused: "
            f"{why} (a runner is started only by 'shipdeck plan run', which takes the lease)"
        )
    refused = audit_log.list_events(ws.base, AuditFilter(kind="run.runner_refused"), ascending=True)
    assert [e.payload["reason"] for e in refused] == reasons
    assert get_plan(alice, plan.id).steps == ()  # neither runner did anything


# --- the digest covers the policy's definitions ----------------------------------------------


def test_redefining_a_window_voids_approvals_and_says_which(ws: WorkspaceFixture) -> None:
    """Approved under a deny window; the window is then turned into an always-open allow window
    under the same name. The approvals no longer count, and the blocker names the window."""
    deny = '[windows.night]\ncron = "0 22 * * *"\nduration = "8h"\nkind = "deny"\n\n'
    allow = '[windows.night]\ncron = "0 0 * * *"\nduration = "24h"\nkind = "allow"\n\n'
    env_line = '[environments.prod]\nwindows = ["night"]\n'
    ws.write_config(local_toml(top=deny).replace("[environments.prod]\n", env_line))
    plan = prod_plan(ws)
    for approver in ("bob", "carol"):
        approve(ws.as_user(approver), plan.id)
    assert "approvals_missing" not in blockers(get_plan(ws.as_user("alice"), plan.id))
    ws.write_config(local_toml(top=allow).replace("[environments.prod]\n", env_line))
    found = blockers(get_plan(ws.as_user("alice"), plan.id))
    assert "approvals_missing" in found
    [stale] = found["stale_approval"]
    assert stale.endswith("; changed since: window 'night'"), stale
