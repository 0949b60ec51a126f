"""Fault injection: when the audit intent cannot be written, the effect is never attempted.

Three real faults: PostgreSQL refusing writes (every transaction read-only, reads still work),
PostgreSQL ending the session as it appends an audit event (a trigger calling
pg_terminate_backend on its own backend: the connection is lost mid-transaction), and SQLite on a
full disk (a small tmpfs filled up; needs root to mount, skipped otherwise and failing under
CI=true). For each kind of effect (token-limit file write, checkpoint, restart,
notification) the test asserts the outside world is unchanged, the user got one line naming the
cause with the documented exit code (4 unwritable, 5 failed), and nothing half-recorded remains.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from shipdeck.core.errors import ShipdeckError
from shipdeck.core.services import audit_log, tasks
from shipdeck.core.services.audit_log import AuditFilter
from shipdeck.core.services.notify import notify
from tests.fakes.targets import RecordingTarget
from tests.support.cli import shipdeck
from tests.support.http import QuietHandler, serving
from tests.support.workspace import (
    BASIC_TOML,
    PG_ENV,
    PG_SKIP,
    FixedClock,
    WorkspaceFixture,
    postgres_schema,
    three_apps,
)

GATEWAY = """\
model_list:
  - model_name: chat-api
    litellm_params:
      model: openai/gpt-4o-mini
      tpm: 100000
      rpm: 600
"""


def config(hook_url: str) -> str:
    return BASIC_TOML + (
        '\n[apps.chat-api.targets.prod]\nadapter = "local"\nport = 1\n'
        '\n[apps.chat-api.targets.prod.token_limits]\nadapter = "litellm-file"\n'
        'path = "gateway.yaml"\nmodel = "chat-api"\n'
        f'\n[notifications.ops]\nurl = "{hook_url}"\n'
    )


@dataclass
class Fault:
    healthy: WorkspaceFixture  # the same workspace and database, writable
    broken: WorkspaceFixture  # ... as the commands see it now
    code: int
    cause: str  # words the one-line error must contain
    heal: Callable[[], None] = lambda: None  # make `broken` work again (disk full: free the room)


class Hook(QuietHandler):
    bodies: list[bytes] = []

    def do_POST(self) -> None:
        Hook.bodies.append(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        self.send_response(200)
        self.end_headers()


def _require_root() -> None:
    if os.geteuid() == 0:
        return
    message = "mounting a small tmpfs to fill needs root"
    if os.environ.get("CI") == "true":
        pytest.fail(message + "; CI runs as root")
    pytest.skip(message)


def with_option(url: str, option: str) -> str:
    """`url` with `option` (already percent-encoded, e.g. `-cname%3Dvalue`) appended to its
    libpq `options` value: the search_path the test schema needs stays."""
    found = re.search(r"([?&]options=)([^&]*)", url)
    assert found is not None, url
    return url[: found.end()] + "%20" + option + url[found.end() :]


def schema_of(url: str) -> str:
    found = re.search(r"search_path%3D([A-Za-z0-9_]+)", url)
    assert found is not None, url
    return found.group(1)


KILL_SETTING = "shipdeck.test_kill_audit"


class AuditKiller:
    """A trigger in the test's schema that ends the session (pg_terminate_backend on its own
    backend) as it inserts an audit event: for sessions started with the setting
    `shipdeck.test_kill_audit` = on (`url`), or for every session while `on()` (a one-row
    flag table the trigger reads). The server then closes the connection mid-transaction."""

    def __init__(self, url: str) -> None:
        from sqlalchemy import create_engine

        from shipdeck.core.storage.db import normalise_url

        self.schema = schema_of(url)
        self.engine = create_engine(normalise_url(url))
        self.url = with_option(url, f"-c{KILL_SETTING}%3Don")
        s = f'"{self.schema}"'
        self._run(
            f"CREATE TABLE {s}.test_kill_audit (kill boolean NOT NULL)",
            f"INSERT INTO {s}.test_kill_audit VALUES (false)",
            f"""CREATE FUNCTION {s}.test_kill_audit() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF current_setting('{KILL_SETTING}', true) = 'on'
                        OR (SELECT kill FROM {s}.test_kill_audit) THEN
                    PERFORM pg_terminate_backend(pg_backend_pid());
                END IF;
                RETURN NEW;
            END $$""",
            f"CREATE TRIGGER test_kill_audit BEFORE INSERT ON {s}.audit_event "
            f"FOR EACH ROW EXECUTE FUNCTION {s}.test_kill_audit()",
        )

    def _run(self, *statements: str) -> None:
        from sqlalchemy import text

        with self.engine.begin() as conn:
            for sql in statements:
                conn.execute(text(sql))

    def on(self) -> None:
        self._run(f'UPDATE "{self.schema}".test_kill_audit SET kill = true')

    def off(self) -> None:
        self._run(f'UPDATE "{self.schema}".test_kill_audit SET kill = false')

    def close(self) -> None:
        self.engine.dispose()


class FullDisk:
    """A small tmpfs for the SQLite state, which `fill()` fills up (all but a few KB) and
    `free()` empties again. Needs root (skipped otherwise, failing under CI=true)."""

    def __init__(self, where: Path, size: str = "4m") -> None:
        _require_root()
        self.where = where
        where.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                       check=True)  # fmt: skip
        self.url = f"sqlite:///{where / 'state.db'}"
        self.fill_file = where / "fill"
        self.raw: sqlite3.Connection | None = None

    def fill(self) -> None:
        """Move the WAL's pages into the database file and cut the WAL to nothing, so the next
        write has to grow it, then take all but a few KB of what is free. The connection stays
        open until `close()`: it keeps the WAL index (-shm) in place, which a process opening
        the database later could not create on the full disk."""
        self.raw = sqlite3.connect(self.where / "state.db", timeout=60)
        busy, _, _ = self.raw.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        assert busy == 0, "a connection held a transaction open: the WAL could not be truncated"
        st = os.statvfs(self.where)
        room = 8 * 1024  # less than the pages one audit append writes
        subprocess.run(
            ["fallocate", "-l", str(st.f_bavail * st.f_frsize - room), str(self.fill_file)],
            check=True,
        )

    def free(self) -> None:
        self.fill_file.unlink(missing_ok=True)

    def close(self) -> None:
        if self.raw is not None:
            self.raw.close()
        subprocess.run(["umount", "-l", str(self.where)], check=True)


def postgres_base() -> str:
    """The test server's URL; skipped without one (failing under CI=true, which has one)."""
    base = os.environ.get(PG_ENV)
    if not base:
        if os.environ.get("CI") == "true":
            pytest.fail(PG_SKIP)
        pytest.skip(PG_SKIP)
    return base


@contextmanager
def faulty_workspace(
    kind: str,
    tmp_path: Path,
    toml: str,
    prepare: Callable[[WorkspaceFixture], None] = lambda ws: None,
    disk: str = "4m",
) -> Iterator[Fault]:
    """A three-app workspace with `toml`, set up by `prepare` while healthy, then the fault:
    `postgres_read_only` (every transaction read-only, reads still work),
    `postgres_killed_connection` (a session that inserts an audit event is ended by the server)
    or `sqlite_disk_full` (the state on a full tmpfs of size `disk`)."""
    root = tmp_path / "ws"
    root.mkdir()
    clock = FixedClock()
    if kind.startswith("postgres_"):
        with postgres_schema(postgres_base()) as url:
            healthy = three_apps(root, url, clock, toml)
            prepare(healthy)
            killer = None
            if kind == "postgres_read_only":
                broken = WorkspaceFixture(
                    root, with_option(url, "-cdefault_transaction_read_only%3Don"), clock
                )
                fault = Fault(healthy, broken, 4, "read-only transaction")
            else:
                killer = AuditKiller(url)
                broken = WorkspaceFixture(root, killer.url, clock)
                fault = Fault(healthy, broken, 5, KILLED_CAUSE)
            try:
                yield fault
            finally:
                broken.close()
                healthy.close()
                if killer is not None:
                    killer.close()
        return
    full = FullDisk(tmp_path / "disk", disk)
    try:
        healthy = three_apps(root, full.url, clock, toml)
        prepare(healthy)
        full.fill()
        yield Fault(healthy, healthy, 5, "disk full", full.free)
        healthy.close()
    finally:
        full.close()


# What the product says when the server ends the session under it (SQLSTATE 57P01).
KILLED_CAUSE = "the database server ended the connection"

FAULTS = ["postgres_read_only", "postgres_killed_connection", "sqlite_disk_full"]


@pytest.fixture
def hook() -> Iterator[str]:
    Hook.bodies = []
    with serving(Hook) as base:
        yield base + "/hook"


@pytest.fixture(params=FAULTS)
def fault(request: pytest.FixtureRequest, tmp_path: Path, hook: str) -> Iterator[Fault]:
    def gateway(ws: WorkspaceFixture) -> None:
        (ws.root / "gateway.yaml").write_text(GATEWAY)

    with faulty_workspace(request.param, tmp_path, config(hook), gateway) as fault:
        yield fault


def assert_one_line(err: str, fault: Fault) -> None:
    """One error line naming the cause (a confirmation preview may precede it), nothing raw."""
    lines = [ln for ln in err.splitlines() if ln.startswith("shipdeck:")]
    assert len(lines) == 1, err
    assert fault.cause in lines[0] and "nothing was changed" in lines[0], lines[0]
    for leak in ("Traceback", "INSERT", "UPDATE", "SELECT", "db upgrade", "unexpected"):
        assert leak not in err, err


def no_events(fault: Fault, kind: str) -> None:
    assert audit_log.list_events(fault.healthy.base, AuditFilter(kind=kind)) == []


def test_token_limit_is_not_written_without_its_intent(fault: Fault) -> None:
    gateway = fault.healthy.root / "gateway.yaml"
    r = shipdeck(
        "--yes", "task", "token-limit", "chat-api", "--env", "prod", "--tpm", "5000",
        env=fault.broken.env("alice"),
    )  # fmt: skip
    assert r.code == fault.code, r.err
    assert_one_line(r.err, fault)
    assert gateway.read_text() == GATEWAY
    no_events(fault, "task.token-limit*")


def test_checkpoint_is_not_written_without_its_intent(fault: Fault, tmp_path: Path) -> None:
    cps = tmp_path / "cps.jsonl"
    r = shipdeck("audit", "checkpoint", "--to", str(cps), env=fault.broken.env("alice"))
    assert r.code == fault.code, r.err
    assert_one_line(r.err, fault)
    assert not cps.exists()
    no_events(fault, "audit.checkpoint*")


def test_restart_is_not_attempted_without_its_intent(fault: Fault) -> None:
    target = RecordingTarget()
    ctx = replace(fault.broken.as_user("alice"), targets=target.factory)
    with pytest.raises(ShipdeckError) as caught:
        tasks.restart(ctx, "chat-api", "prod")
    assert int(caught.value.exit_code) == fault.code
    assert fault.cause in caught.value.message
    assert target.calls == []
    no_events(fault, "task.restart*")


def test_notification_is_not_sent_without_its_intent(fault: Fault) -> None:
    failed = notify(fault.broken.as_user("alice"), "plan.awaiting_approval", {"plan": "p-1"})
    assert failed == ["ops"]
    assert Hook.bodies == []
    no_events(fault, "notify.*")


def test_without_the_fault_the_same_effect_happens(fault: Fault, tmp_path: Path) -> None:
    """The control: once the fault is gone the same command acts, between intent and outcome,
    so the tests above cannot pass on a fixture that breaks everything."""
    fault.heal()  # disk full: free the room again, then it must work
    cps = tmp_path / "cps.jsonl"
    r = shipdeck("audit", "checkpoint", "--to", str(cps), env=fault.healthy.env("alice"))
    assert r.code == 0, r.err
    assert cps.exists()
    kinds = [e.kind for e in audit_log.list_events(fault.healthy.base, ascending=True)]
    assert kinds[-2:] == ["audit.checkpoint.intent", "audit.checkpoint"]


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_an_export_onto_a_full_disk_says_so_in_one_line_and_the_log_is_kept(
    ws: WorkspaceFixture, tmp_path: Path, fmt: str
) -> None:
    """The export writes its bytes straight to the file (JSONL pages undecoded): a disk that
    fills up under it is a usage error naming the file and the cause, not a traceback, and the
    log it read is whole afterwards."""
    env = ws.env("alice")
    for n in range(4):  # more than the few KB fill() leaves free
        notes = f"release {n}: " + "changes " * 1000
        assert shipdeck("release", "create", "web", f"1.{n}.0", "--notes", notes, env=env).code == 0
    disk = FullDisk(ws.root / "full", size="1m")
    try:
        disk.fill()
        out = ws.root / "full" / f"audit.{fmt}"
        ran = shipdeck("audit", "export", "--format", fmt, "--out", str(out), env=env)
        assert ran.code == 2, ran
        assert "Traceback" not in ran.err
        [line] = ran.err.strip().splitlines()
        assert f"export to {out}: cannot write" in line and "No space left" in line
        assert not out.exists()  # no cut-off file that would pass for the whole log
    finally:
        disk.close()
    verified = shipdeck("audit", "verify", env=env)
    assert verified.code == 0, verified
