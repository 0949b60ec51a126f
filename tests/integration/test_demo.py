"""`shipdeck demo`: the workspace it builds (real git, real local targets, file:// model and
data artifacts), what it tells the person who ran it, and `demo stop`, which must leave no
process behind (checked by pid).

One demo is built per module, by a real `shipdeck demo --no-tui` process, so the target
processes it starts are not children of the test runner.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shipdeck.core.demo import DEMO_USERS, running_processes, still_running_notice
from tests.support.cli import Ran, shipdeck, shipdeck_process


def gone(pid: int) -> bool:
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return True
    return raw.rsplit(b")", 1)[1].split()[0] in (b"Z", b"X")


def state_of(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0].decode()


def demo_env(root: Path, actor: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPDECK_")}
    env["NO_COLOR"] = "1"
    if actor:
        env["SHIPDECK_ACTOR"] = actor
    return env | {"SHIPDECK_WORKSPACE": str(root)}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Ran]]:
    root = tmp_path_factory.mktemp("demo") / "ws"
    built = shipdeck_process("demo", "--dir", str(root), "--no-tui", env=demo_env(root))
    try:
        yield root, built
    finally:
        if (root / "shipdeck.toml").exists():
            shipdeck("demo", "stop", str(root), env=demo_env(root))


def test_demo_prints_the_path_the_users_and_how_to_act_and_stop(demo: tuple[Path, Ran]) -> None:
    root, built = demo
    assert built.code == 0, built.err
    assert built.out == f"{root}\n"  # stdout: the path alone, for scripts
    lines = built.err_lines
    users = {line.split()[0]: line for line in lines if line.startswith("  ") and
             line.split()[0] in DEMO_USERS}  # fmt: skip
    assert list(users) == list(DEMO_USERS)
    assert "release-managers" in users["alice"] and "break-glass" in users["alice"]
    assert all("approvers" in users[u] for u in ("bob", "carol"))
    assert "auditors" in users["erin"] and "on-call" in users["frank"]
    assert f"Act as bob:     SHIPDECK_ACTOR=bob shipdeck -w {root} plan list" in lines
    assert f"Stop processes: shipdeck demo stop {root}" in lines
    assert stat.S_IMODE(root.stat().st_mode) == 0o700  # no one else reads the workspace


def test_demo_releases_carry_offline_model_and_data_artifacts(demo: tuple[Path, Ran]) -> None:
    root, _ = demo
    env = demo_env(root, "erin")
    shown = shipdeck("-o", "json", "release", "show", "model-server", "1.5.0", env=env)
    assert shown.code == 0, shown.err
    (model,) = shown.json()["release"]["artifacts"]
    assert model["uri"] == "file://models/model-server/1.5.0"
    assert model["resolved"] == f"{model['uri']}?sha256={model['digest']}"
    status = shipdeck("-o", "json", "status", "--app", "model-server", env=env).json()
    for cell in status["apps"][0]["environments"]:
        (change,) = cell["artifact_changes"]
        assert change["summary"].startswith("model changed: 4 files (4 changed), +")
    table = shipdeck("status", env=env).out
    assert "eval-data changed: 2 files" in table  # chat-api's data set, prod one release behind
    diff = shipdeck("release", "diff", "model-server", "1.4.0", "1.5.0", env=env)
    assert "  model changed: 4 files (4 changed), +1.6 kB" in diff.out.splitlines()
    verify = shipdeck("-o", "json", "audit", "verify", env=env)
    assert verify.code == 0 and verify.json()["ok"] is True


def test_demo_stop_ends_runners_and_targets_and_is_idempotent(demo: tuple[Path, Ran]) -> None:
    root, _ = demo
    alice = demo_env(root, "alice")
    # A detached runner that holds its lease, stopped by a failpoint just before it switches.
    plan = shipdeck("-o", "json", "plan", "create", "--env", "staging", "model-server@1.5.0",
                    env=alice).json()["plan"]["id"]  # fmt: skip
    ran = shipdeck_process(
        "-o", "json", "plan", "run", plan,
        env={**alice, "SHIPDECK_FAILPOINT": "before:switch:model-server:stop"},
    )  # fmt: skip
    assert ran.code == 0, ran.err
    runner = ran.json()["run"]["pid"]
    deadline = time.monotonic() + 60
    while not gone(runner) and state_of(runner) != "T" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert state_of(runner) == "T"  # at the failpoint, lease held
    targets = [p.pid for p in running_processes(root)]
    assert len(targets) >= 16  # 4 apps x 2 envs: a proxy and a live color each, plus staged
    assert still_running_notice(root) == (  # what the TUI says on quit
        f"{len(targets)} local target process(es) keep running; "
        f"stop them with: shipdeck demo stop {root}"
    )

    stopped = shipdeck("demo", "stop", str(root), env=alice)
    assert stopped.code == 0, stopped.err
    said = stopped.out.splitlines()
    assert f"stopped runner of plan {plan} (pid {runner})" in said
    assert said[-1] == f"{len(targets) + 1} process(es) stopped"
    assert all(gone(pid) for pid in [runner, *targets])
    assert running_processes(root) == []
    again = shipdeck("demo", "stop", str(root), env=alice)
    assert (again.code, again.out) == (0, "nothing was running\n")
    kinds = [e["kind"] for e in shipdeck("-o", "json", "audit", "list", "--limit", "3",
                                         env=alice).json()["events"]]  # fmt: skip
    assert kinds[:2] == ["demo.stopped", "demo.stop"]


def test_demo_stop_refuses_a_workspace_the_demo_did_not_build(tmp_path: Path) -> None:
    (tmp_path / "shipdeck.toml").write_text('[workspace]\nname = "prod"\n')
    r = shipdeck("demo", "stop", str(tmp_path), env=demo_env(tmp_path))
    assert r.code == 2
    assert r.err_lines == [
        f"shipdeck: error: {tmp_path}: not a demo workspace (no .shipdeck/demo); "
        "only `shipdeck demo` ones"
    ]
    nowhere = tmp_path / "nowhere"
    missing = shipdeck("demo", "stop", str(nowhere), env=demo_env(tmp_path))
    assert missing.code == 2
    assert missing.err_lines == [
        f"shipdeck: error: {nowhere}: no shipdeck.toml there (not a demo workspace)"
    ]
