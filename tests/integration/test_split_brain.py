"""No split brain: the database a workspace names is the only one. Opening never creates a
database; a missing or unreachable one is an error naming it (password masked), exit 4; only
`db upgrade` creates one, and it says which first."""

from __future__ import annotations

import os
from pathlib import Path

from tests.support.cli import shipdeck
from tests.support.moto_server import free_port
from tests.support.workspace import BASIC_TOML


def workspace(tmp_path: Path, database: str | None = None) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    toml = BASIC_TOML
    if database is not None:
        toml = toml.replace('name = "test"\n', f'name = "test"\ndatabase = "{database}"\n')
    (root / "shipdeck.toml").write_text(toml, encoding="utf-8")
    return root


def env_for(root: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "SHIPDECK_DATABASE_URL"}
    return {**env, "SHIPDECK_WORKSPACE": str(root), "SHIPDECK_ACTOR": "alice", **extra}


def test_a_configured_database_that_is_unreachable_is_named_and_never_replaced(
    tmp_path: Path,
) -> None:
    port = free_port()
    root = workspace(tmp_path, f"postgresql://shipdeck:${{SDK_TEST_PW}}@127.0.0.1:{port}/state")
    unset = shipdeck("status", env=env_for(root))
    assert unset.code == 4
    assert unset.err_lines == [
        f"shipdeck: error: {root / 'shipdeck.toml'}: workspace.database: ${{SDK_TEST_PW}} is not "
        "set in the environment"
    ]
    for argv in (["status"], ["db", "upgrade"]):
        r = shipdeck(*argv, env=env_for(root, SDK_TEST_PW="hunter2-secret"))
        assert r.code == 4, r.err
        assert r.err.startswith(
            f"shipdeck: error: database postgresql+psycopg://shipdeck:***@127.0.0.1:{port}/state: "
            "cannot connect: "
        ), r.err
        assert "hunter2-secret" not in r.err
    assert not (root / ".shipdeck").exists()


def test_only_db_upgrade_creates_the_sqlite_state_and_says_so(tmp_path: Path) -> None:
    root = workspace(tmp_path)
    db = root / ".shipdeck" / "state.db"
    r = shipdeck("status", env=env_for(root))
    assert r.code == 4
    assert r.err_lines == [
        f"shipdeck: error: database sqlite:///{db}: no such database; run 'shipdeck db upgrade' "
        "to create it (if your team shares a PostgreSQL state, set [workspace] database in "
        "shipdeck.toml instead)"
    ]
    assert not db.exists()
    up = shipdeck("db", "upgrade", env=env_for(root))
    assert up.code == 0, up.err
    assert up.err_lines[0] == f"creating a new SQLite database in sqlite:///{db}"
    assert (db.stat().st_mode & 0o777) == 0o600  # not shared: private, whatever the umask
    assert shipdeck("status", env=env_for(root)).code == 0
