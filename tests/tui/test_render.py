"""Remote text (commit subjects, authors, payloads) is shown as text: no escapes, no markup."""

from __future__ import annotations

from datetime import UTC, datetime

from shipdeck.core.domain.release import Manifest, ReleaseRecord
from shipdeck.core.ports import CommitInfo
from shipdeck.core.services.audit_log import Event
from shipdeck.core.services.releases import ReleaseDiff
from shipdeck.core.services.views import EnvDiff, Live
from shipdeck.tui.screens.app_detail import env_section
from shipdeck.tui.screens.audit import detail_text, parse_filter
from shipdeck.tui.widgets.audit_view import summary

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
HOSTILE = "\x1b[2J\x1b]0;pwned\x07[bold red]boom[/] \x9b31m \u202etxt.exe\u2066\u2069\u200f"
BIDI = ("\u202e", "\u2066", "\u2069", "\u200f")


def record(version: str, commit: str) -> ReleaseRecord:
    return ReleaseRecord(1, Manifest("web", version, commit), f"sha256:{version}", "", NOW, "alice")


def test_commit_subjects_and_authors_keep_brackets_and_lose_escapes() -> None:
    old, new = record("1.0.0", "a" * 40), record("1.1.0", "b" * 40)
    commit = CommitInfo("b" * 40, f"Mallory {HOSTILE}", NOW, f"Fix {HOSTILE}")
    diff = EnvDiff(
        "prod",
        old,
        Live("prod", "blue", NOW, "alice"),
        new,
        ReleaseDiff("web", old, new, [commit], [], []),
    )
    shown = env_section(diff, NOW).plain
    assert "Fix [bold red]boom[/]" in shown
    assert "\x1b" not in shown and "\x9b" not in shown and "\x07" not in shown
    assert not any(c in shown for c in BIDI) and "txt.exe" in shown


def test_audit_payload_is_pretty_json_text() -> None:
    ev = Event(
        7,
        NOW,
        "bob",
        "bob",
        None,
        "task.logs",
        "web",
        "prod",
        None,
        {"line": HOSTILE, "n": 2},
        "f" * 64,
    )
    shown = detail_text(ev).plain
    assert '"n": 2' in shown and "[bold red]boom[/]" in shown
    assert "\x1b" not in shown and "\x9b" not in shown
    line = summary(ev.payload)
    assert "\x1b" not in line and "\n" not in line and "line=" in line
    assert not any(c in shown or c in line for c in BIDI)


def test_filter_words() -> None:
    flt = parse_filter("actor:bob kind:plan.* since:2h until:2026-11-20", NOW)
    assert (flt.actor, flt.kind) == ("bob", "plan.*")
    assert flt.since == datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
    assert flt.until == datetime(2026, 11, 20, tzinfo=UTC)


def test_error_notifications_show_messages_as_the_cli_prints_them() -> None:
    from shipdeck.core.errors import AdapterError
    from shipdeck.tui.screens.base import error_line

    exc = AdapterError(f"webhook hooks.example: HTTP 401: {HOSTILE} password=hunter22")
    line = error_line(exc)
    assert line.startswith("webhook hooks.example: HTTP 401: ") and line.endswith("password=***")
    assert "\x1b" not in line and "\x9b" not in line and not any(c in line for c in BIDI)
    assert "hunter22" not in error_line(RuntimeError("db password=hunter22"))
