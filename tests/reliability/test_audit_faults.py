"""Fault injection: when the audit intent cannot be written, the effect is never attempted.

Two real faults: PostgreSQL refusing writes (every transaction read-only, reads still work) and
SQLite on a full disk (a small tmpfs filled up; needs root to mount, skipped otherwise and failing
under CI=true). For each kind of effect (token-limit file write, checkpoint, restart,
notification) the test asserts the outside world is unchanged, the user got one line naming the
cause with the documented exit code (4 unwritable, 5 failed), and nothing half-recorded remains.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
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


@pytest.fixture
def hook() -> Iterator[str]:
    Hook.bodies = []
    with serving(Hook) as base:
        yield base + "/hook"


@pytest.fixture(params=["postgres_read_only", "sqlite_disk_full"])
def fault(request: pytest.FixtureRequest, tmp_path: Path, hook: str) -> Iterator[Fault]:
    root = tmp_path / "ws"
    root.mkdir()
    clock = FixedClock()
    if request.param == "postgres_read_only":
        base = os.environ.get(PG_ENV)
        if not base:
            pytest.skip(PG_SKIP)
        with postgres_schema(base) as url:
            healthy = three_apps(root, url, clock, config(hook))
            (root / "gateway.yaml").write_text(GATEWAY)
            ro = url.replace("options=", "options=-cdefault_transaction_read_only%3Don%20", 1)
            broken = WorkspaceFixture(root, ro, clock)
            yield Fault(healthy, broken, 4, "read-only transaction")
            broken.close()
            healthy.close()
        return
    _require_root()
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)], check=True)
    try:
        url = f"sqlite:///{disk / 'state.db'}"
        healthy = three_apps(root, url, clock, config(hook))
        (root / "gateway.yaml").write_text(GATEWAY)
        with healthy.base.db.read():  # an open connection keeps the WAL index (-shm) in place
            st = os.statvfs(disk)
            room = 8 * 1024  # less than the pages one audit append writes
            subprocess.run(
                ["fallocate", "-l", str(st.f_bavail * st.f_frsize - room), str(disk / "fill")],
                check=True,
            )
            yield Fault(healthy, healthy, 5, "disk full")
        healthy.close()
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=True)


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
    if fault.broken is fault.healthy:  # disk full: free the room again, then it must work
        (Path(fault.healthy.db_url.removeprefix("sqlite:///")).parent / "fill").unlink()
    cps = tmp_path / "cps.jsonl"
    r = shipdeck("audit", "checkpoint", "--to", str(cps), env=fault.healthy.env("alice"))
    assert r.code == 0, r.err
    assert cps.exists()
    kinds = [e.kind for e in audit_log.list_events(fault.healthy.base, ascending=True)]
    assert kinds[-2:] == ["audit.checkpoint.intent", "audit.checkpoint"]
