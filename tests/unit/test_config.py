"""shipdeck.toml validation, through the real `shipdeck config check` and through parse_config.

Every bad file must exit 4 with lines of the form `<file>: <key path>: <problem>` and never a
traceback; a fuzzer checks that no malformed table makes the parser itself fail.
"""

from __future__ import annotations

import copy
import os
import stat
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shipdeck.core.domain.config import parse_config
from shipdeck.core.errors import ConfigError
from tests.support.cli import shipdeck
from tests.support.workspace import BASIC_TOML, WorkspaceFixture

_PROD = "[environments.prod]\nrequires_previous = true\n"


def _replace(old: str, new: str) -> str:
    assert old in BASIC_TOML, old
    return BASIC_TOML.replace(old, new, 1)


# (name, shipdeck.toml text, the one expected "key.path: problem")
_NAME_RULE = (
    "must start with a letter or digit and hold only letters, digits, '.', '_' and '-'"
    " (64 at most): it names folders and files"
)
BAD_CONFIGS: list[tuple[str, str, str]] = [
    (
        "an app name that climbs out of the workspace",
        BASIC_TOML + '\n[apps."a/../../b"]\nrepo = "repos/web"\n',
        f"apps.a/../../b: app name 'a/../../b' {_NAME_RULE}",
    ),
    (
        "an environment name that is a path",
        _replace("[environments.prod]", '[environments."../../etc"]'),
        f"environments.../../etc: environment name '../../etc' {_NAME_RULE}",
    ),
    (
        "unknown top-level key",
        BASIC_TOML + "\n[aps.extra]\nrepo = 'x'\n",
        "aps: unknown key (did you mean 'apps'?)",
    ),
    (
        "unknown app key",
        _replace('repo = "repos/web"\n', 'repo = "repos/web"\ndepend_on = ["chat-api"]\n'),
        "apps.web.depend_on: unknown key (did you mean 'depends_on'?)",
    ),
    (
        "depends_on an unknown app",
        _replace('depends_on = ["model-server"]', 'depends_on = ["modle-server"]'),
        "apps.chat-api.depends_on[0]: unknown app 'modle-server' (did you mean 'model-server'?)",
    ),
    (
        "dependency cycle",
        _replace(
            'repo = "repos/model-server"\n', 'repo = "repos/model-server"\ndepends_on = ["web"]\n'
        ),
        "apps.chat-api.depends_on: dependency cycle chat-api -> model-server -> web -> chat-api",
    ),
    (
        "unknown role",
        _replace('override_roles = ["release-managers"]', 'override_roles = ["release-manager"]'),
        "environments.prod.override_roles[0]: unknown role 'release-manager'"
        " (did you mean 'release-managers'?)",
    ),
    (
        "unknown window",
        _replace(_PROD, _PROD + 'windows = ["business-hours"]\n'),
        "environments.prod.windows[0]: unknown window 'business-hours'",
    ),
    (
        "unknown freeze",
        _replace(_PROD, _PROD + 'freezes = ["year-end"]\n'),
        "environments.prod.freezes[0]: unknown freeze 'year-end'",
    ),
    (
        "bad cron",
        BASIC_TOML + '\n[windows.nightly]\ncron = "0 25 * * *"\nduration = "2h"\n',
        "windows.nightly.cron: invalid cron expression '0 25 * * *'",
    ),
    (
        "bad time zone",
        BASIC_TOML + '\n[windows.nightly]\ncron = "0 2 * * *"\nduration = "2h"\n'
        'timezone = "Europe/Berln"\n',
        "windows.nightly.timezone: unknown time zone 'Europe/Berln'",
    ),
    (
        "bad duration",
        BASIC_TOML + '\n[windows.nightly]\ncron = "0 2 * * *"\nduration = "2 hours"\n',
        "windows.nightly.duration: invalid duration '2 hours'",
    ),
    (
        "unknown target adapter",
        BASIC_TOML + '\n[apps.web.targets.prod]\nadapter = "locall"\nport = 8601\n',
        "apps.web.targets.prod.adapter: unknown target adapter 'locall' (did you mean 'local'?)",
    ),
    (
        "missing required adapter setting",
        BASIC_TOML + '\n[apps.web.targets.prod]\nadapter = "nginx"\ninclude_file = "x.conf"\n'
        'upstream = "web"\nblue_port = 1\n',
        "apps.web.targets.prod.green_port: required key is missing",
    ),
    (
        "wrong type",
        BASIC_TOML + '\n[apps.web.targets.prod]\nadapter = "local"\nport = "8601"\n',
        "apps.web.targets.prod.port: must be an integer, not a string",
    ),
    (
        "boolean where an integer belongs",
        _replace("required = 2", "required = true"),
        "environments.prod.approvals.required: must be an integer, not a boolean",
    ),
    (
        "unknown permission",
        _replace('"plan.approve", "plan.check"', '"plan.aprove", "plan.check"'),
        "roles.approvers.permissions[0]: unknown permission 'plan.aprove'"
        " (did you mean 'plan.approve'?)",
    ),
    (
        "freeze ends before it starts",
        BASIC_TOML + "\n[freezes.xmas]\nstart = 2026-12-24T00:00:00+01:00\n"
        "end = 2026-12-20T00:00:00+01:00\n",
        "freezes.xmas.end: must be after start",
    ),
    (
        "naive datetime",
        BASIC_TOML + "\n[freezes.xmas]\nstart = 2026-12-24T00:00:00\n"
        "end = 2026-12-27T00:00:00+01:00\n",
        "freezes.xmas.start: needs a UTC offset",
    ),
    (
        "target for an unknown environment",
        BASIC_TOML + '\n[apps.web.targets.qa]\nadapter = "local"\nport = 8601\n',
        "apps.web.targets.qa: unknown environment 'qa'",
    ),
    (
        "requires_previous on the first environment",
        _replace("[environments.staging]\n", "[environments.staging]\nrequires_previous = true\n"),
        "environments.staging.requires_previous: the first environment has no previous one",
    ),
    (
        "approvals without roles",
        _replace(
            'approvals = { required = 2, roles = ["approvers"] }', "approvals = { required = 2 }"
        ),
        "environments.prod.approvals.roles: required when approvals.required > 0",
    ),
    (
        "an app depending on itself",
        _replace('depends_on = ["chat-api"]', 'depends_on = ["web"]'),
        "apps.web.depends_on[0]: an app cannot depend on itself",
    ),
    (
        "artifact that is not a URI",
        _replace(
            'repo = "repos/web"\n', 'repo = "repos/web"\nartifacts = { bundle = "dist.tgz" }\n'
        ),
        "apps.web.artifacts.bundle.uri: must be a URI like hf://org/model@rev, s3://bucket/key"
        " or file://dir,"
        " not 'dist.tgz'",
    ),
    (
        "unknown log adapter",
        BASIC_TOML + '\n[apps.web.targets.prod]\nadapter = "local"\nport = 8601\n'
        'logs = { adapter = "syslog" }\n',
        "apps.web.targets.prod.logs.adapter: unknown log adapter 'syslog'",
    ),
    (
        "newline in a quoted value",
        _replace('"plan.approve", "plan.check"', '"plan\\napprove", "plan.check"'),
        "roles.approvers.permissions[0]: unknown permission 'plan\\napprove'",
    ),
    (
        "arrays nested past the TOML parser's recursion limit",
        BASIC_TOML + "\n[apps.web.config]\nx = " + "[" * 2000 + "]" * 2000 + "\n",
        "apps.web.config.x: nested more than 32 levels deep (line 42)",
    ),
    (
        "arrays nested deeper than the limit",
        BASIC_TOML + "\n[apps.web.config]\nx = " + "[" * 40 + "]" * 40 + "\n",
        "apps.web.config.x: nested more than 32 levels deep",
    ),
    (
        "a path with an embedded NUL",
        _replace('repo = "repos/web"', 'repo = "repos/\\u0000web"'),
        "apps.web.repo: contains a NUL character",
    ),
    (
        "a user name with a control character",
        _replace('users = ["alice"]', 'users = ["al\\u001eice"]'),
        "roles.release-managers.users[0]: user name 'al\\x1eice' holds a control character",
    ),
    (
        "a window with both duration and end",
        BASIC_TOML + '\n[windows.w]\ncron = "0 18 * * fri"\nduration = "1h"\nend = "Mon 07:00"\n',
        "windows.w.end: use either duration or end, not both",
    ),
    (
        "a window end that is not a wall-clock time",
        BASIC_TOML + '\n[windows.w]\ncron = "0 18 * * fri"\nend = "Monday 7"\n',
        "windows.w.end: invalid end 'Monday 7': use a local time HH:MM",
    ),
    (
        "a freeze in an unknown time zone",
        BASIC_TOML + "\n[freezes.f]\nstart = 2026-12-24T00:00:00\nend = 2026-12-27T07:00:00\n"
        'timezone = "Europe/Berln"\n',
        "freezes.f.timezone: unknown time zone 'Europe/Berln'",
    ),
    (
        "no environments",
        '[workspace]\nname = "x"\n',
        "environments: at least one environment is required",
    ),
]


def _check(root: Path, *extra: str) -> Any:
    return shipdeck("--workspace", str(root), *extra, "config", "check", env=dict(os.environ))


def test_an_actor_name_with_a_control_character_exits_4(ws: WorkspaceFixture) -> None:
    r = shipdeck("status", env=ws.env("al\x1eice"))
    assert (r.code, r.err_lines) == (
        4,
        ["shipdeck: error: SHIPDECK_ACTOR: user name 'al\\x1eice' holds a control character"],
    )


def test_a_freeze_may_end_at_a_local_wall_clock_time() -> None:
    text = BASIC_TOML.replace(
        "[environments.prod]\n", '[environments.prod]\nfreezes = ["xmas"]\n'
    ) + (
        "\n[freezes.xmas]\nstart = 2026-10-24T18:00:00\nend = 2026-10-25T02:30:00\n"
        'timezone = "Europe/Berlin"\n'
    )
    freeze = parse_config(tomllib.loads(text)).freezes["xmas"]
    # 02:30 happens twice that night (Berlin falls back): a freeze lasts until the second.
    assert freeze.end.isoformat() == "2026-10-25T02:30:00+01:00"
    assert freeze.start.isoformat() == "2026-10-24T18:00:00+02:00"


def test_there_are_at_least_fifteen_distinct_bad_configs() -> None:
    assert len({text for _, text, _ in BAD_CONFIGS}) >= 15


@pytest.mark.parametrize(("name", "text", "problem"), BAD_CONFIGS, ids=[c[0] for c in BAD_CONFIGS])
def test_config_check_names_file_and_key_path(
    tmp_path: Path, name: str, text: str, problem: str
) -> None:
    path = tmp_path / "shipdeck.toml"
    path.write_text(text, encoding="utf-8")
    r = _check(tmp_path)
    assert r.code == 4, (name, r.out, r.err)
    assert "Traceback" not in r.out + r.err
    assert r.out == ""
    assert r.err_lines, name
    assert all(line.startswith(f"{path}: ") for line in r.err_lines), r.err
    assert r.err_lines[0].startswith(f"{path}: {problem}"), r.err

    j = _check(tmp_path, "-o", "json")
    assert j.code == 4
    doc = j.json()
    assert doc["schema_version"] == 1 and doc["ok"] is False
    assert doc["errors"][0].startswith(f"{path}: {problem}")
    assert doc["error"]["exit_code"] == 4 and doc["error"]["kind"] == "config_invalid"


def test_every_problem_is_reported_in_one_run(tmp_path: Path) -> None:
    text = _replace('depends_on = ["model-server"]', 'depends_on = ["modle-server"]')
    text = text.replace('"plan.approve", "plan.check"', '"plan.aprove", "plan.check"')
    (tmp_path / "shipdeck.toml").write_text(text + "\n[extra]\n", encoding="utf-8")
    r = _check(tmp_path)
    assert r.code == 4
    assert len(r.err_lines) == 3, r.err
    assert [line.split(": ")[1] for line in r.err_lines] == [
        "extra",
        "roles.approvers.permissions[0]",
        "apps.chat-api.depends_on[0]",
    ]


@pytest.mark.parametrize(
    ("raw", "where"),
    [
        (b"[apps.web\nrepo = 'x'\n", "line 1"),
        (b'[workspace]\nname = "a"\n[workspace]\nname = "b"\n', "line 3"),
        (b'[workspace]\nname = "\xff"\n', "not UTF-8"),
    ],
)
def test_unreadable_toml_names_file_and_place(tmp_path: Path, raw: bytes, where: str) -> None:
    path = tmp_path / "shipdeck.toml"
    path.write_bytes(raw)
    r = _check(tmp_path)
    assert r.code == 4
    assert "Traceback" not in r.err
    assert len(r.err_lines) == 1
    assert r.err.startswith(f"{path}: ") and where in r.err


def test_same_errors_stop_every_other_command(tmp_path: Path) -> None:
    (tmp_path / "shipdeck.toml").write_text(BAD_CONFIGS[2][1], encoding="utf-8")
    r = shipdeck("--workspace", str(tmp_path), "status", env=dict(os.environ))
    assert r.code == 4
    assert r.err_lines == [f"shipdeck: error: {tmp_path / 'shipdeck.toml'}: {BAD_CONFIGS[2][2]}"]


def test_init_writes_a_starter_that_checks_ok(tmp_path: Path) -> None:
    target = tmp_path / "team"
    r = shipdeck("init", str(target), env=dict(os.environ))
    assert r.code == 0, r.err
    assert (target / "shipdeck.toml").is_file()
    ok = _check(target, "-o", "json")
    assert ok.code == 0, ok.out + ok.err
    doc = ok.json()
    assert doc["ok"] is True
    assert doc["environments"] == ["staging", "prod"]
    assert doc["roles"] == ["approvers", "auditors", "release-managers"]
    again = shipdeck("init", str(target), env=dict(os.environ))
    assert again.code == 2 and "already exists" in again.err
    assert stat.S_IMODE((target / "shipdeck.toml").stat().st_mode) == 0o600  # whatever the umask


def test_init_never_writes_through_a_planted_link(tmp_path: Path) -> None:
    """A dangling link at shipdeck.toml would have made init write the starter wherever it
    points (a file the operator may write and the planter may read)."""
    target, elsewhere = tmp_path / "team", tmp_path / "elsewhere"
    target.mkdir()
    (target / "shipdeck.toml").symlink_to(elsewhere)
    r = shipdeck("init", str(target), env=dict(os.environ))
    assert r.code == 2 and "already exists (not overwritten)" in r.err, r.err
    assert not elsewhere.exists()


def test_valid_config_parses_to_the_policy_it_states() -> None:
    cfg = parse_config(tomllib.loads(BASIC_TOML))
    assert cfg.env_order() == ["staging", "prod"]
    assert cfg.previous_env("prod") == "staging" and cfg.previous_env("staging") is None
    prod = cfg.environments["prod"]
    assert prod.requires_previous and prod.approvals.required == 2
    assert prod.approvals.roles == ("approvers",)
    assert [c.id for c in prod.checklist] == ["release-notes-reviewed"]
    assert cfg.apps["web"].depends_on == ("chat-api",)
    assert cfg.apps["chat-api"].config == {"max_tokens": 4096}
    assert "release.create" in cfg.permissions_of("alice")
    assert cfg.permissions_of("bob") == {"plan.approve", "plan.check"}
    assert cfg.permissions_of("erin") == frozenset()
    assert cfg.permissions_of("mallory") == frozenset()


# A valid configuration that uses every section, for the fuzzer to break.
_FULL = tomllib.loads(
    BASIC_TOML
    + """
[windows.nightly]
cron = "0 2 * * *"
duration = "2h"
timezone = "Europe/Berlin"
kind = "deny"

[freezes.xmas]
start = 2026-12-24T00:00:00+01:00
end = 2026-12-27T00:00:00+01:00

[sources.hub]
kind = "hf"
endpoint = "http://127.0.0.1:9"

[notifications.chat]
url = "http://127.0.0.1:9/hook"
events = ["run.failed"]

[apps.web.artifacts]
model = { uri = "hf://org/model@main", source = "hub" }

[apps.web.targets.prod]
adapter = "local"
port = 8601
logs = { adapter = "file", path = "web.log" }
token_limits = { adapter = "litellm-file", path = "litellm.yaml", model = "m" }
"""
)
_FULL["environments"]["prod"]["windows"] = ["nightly"]
_FULL["environments"]["prod"]["freezes"] = ["xmas"]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    items = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else []
    )
    for key, child in items:
        out.append((*prefix, key))
        out.extend(_paths(child, (*prefix, key)))
    return out


_PATHS = _paths(_FULL)
_JUNK = st.one_of(
    st.none(),  # None deletes the key
    st.booleans(),
    st.integers(-3, 3),
    st.floats(allow_nan=False),
    st.text(max_size=8),
    st.lists(st.one_of(st.integers(), st.text(max_size=4)), max_size=2),
    st.dictionaries(st.text(max_size=6), st.one_of(st.integers(), st.text(max_size=4)), max_size=2),
)


def test_full_config_is_valid() -> None:
    cfg = parse_config(_FULL)
    assert cfg.apps["web"].targets["prod"].logs is not None
    assert cfg.environments["prod"].windows == ("nightly",)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(_PATHS), _JUNK), min_size=1, max_size=3))
def test_malformed_tables_give_config_errors_never_crashes(edits: list[tuple[Any, Any]]) -> None:
    raw = copy.deepcopy(_FULL)
    for path, junk in edits:
        parent: Any = raw
        try:
            for key in path[:-1]:
                parent = parent[key]
            if junk is None:
                del parent[path[-1]]
            else:
                parent[path[-1]] = junk
        except (KeyError, IndexError, TypeError):
            continue  # an earlier edit removed this path
    try:
        parse_config(raw, "f.toml")
    except ConfigError as exc:
        problems = exc.all_errors  # type: ignore[attr-defined]
        assert problems and all(p.startswith("f.toml: ") for p in problems)
        assert all("\n" not in p for p in problems)
