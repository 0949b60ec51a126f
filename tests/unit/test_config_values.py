"""Raw-value checks on shipdeck.toml: nesting depth and NUL characters, with key paths."""

from __future__ import annotations

import tomllib

from shipdeck.core.domain.config_values import MAX_DEPTH, deep_nesting_at, value_problems


def test_brackets_in_strings_comments_and_headers_are_not_nesting() -> None:
    text = (
        '[apps."web[1]"]\n'
        f'repo = "{"[" * 50}"  # {"[" * 50}\n'
        f"notes = '''\n{'{' * 50}\n'''\n"
        f"[[apps.web.list]]\nx = [{', '.join(['[1]'] * 40)}]\n"
    )
    tomllib.loads(text)
    assert deep_nesting_at(text) is None


def test_the_first_line_too_deep_is_named_with_its_table_and_key() -> None:
    deep = "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1)
    text = f'[workspace]\nname = "x"\n\n[apps.web.config]\nok = [[1]]\nlimits = {deep}\n'
    assert deep_nesting_at(text) == (6, "apps.web.config.limits")


def test_value_problems_name_the_key_path() -> None:
    raw = {
        "apps": {"web": {"repo": "a\x00b", "config": {"x": [[[0]]]}}},
        "roles": {"r": {"users": ["ok", "b\x00d"]}},
        "k\x00": 1,
    }
    deep: object = 1
    for _ in range(MAX_DEPTH + 5):
        deep = [deep]
    raw["apps"]["web"]["config"]["deep"] = deep  # type: ignore[index]
    assert sorted(value_problems(raw)) == [
        ("apps.web.config.deep", f"nested more than {MAX_DEPTH} levels deep"),
        ("apps.web.repo", "contains a NUL character"),
        ("k\x00", "key contains a NUL character"),
        ("roles.r.users[1]", "contains a NUL character"),
    ]
