"""strip_controls and strip_lines on hostile terminal input: no escape sequence or control
character survives, tab and newline (within text) and markup do, and nothing else is touched.

Moved from tests/adapters/test_logs.py when the log adapter's own copy was folded into
core.domain.redact. The one contract change: strip_controls keeps newlines (the TUI and the CLI
show multi-line text with it), so "no newline in a line" is asserted on strip_lines instead.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shipdeck.core.domain.redact import (
    csv_cell,
    json_bytes,
    json_lines,
    json_text,
    last_line,
    one_line,
    strip_controls,
    strip_lines,
)

BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"


def forbidden(ch: str) -> bool:
    code = ord(ch)
    return (code < 0x20 and ch != "\t") or 0x7F <= code <= 0x9F or ch in BIDI


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("\x1b[31mred\x1b[0m", "red"),
        ("\x1b[38;2;255;0;0mtrue\x1b[m", "true"),
        ("\x1b]0;new title\x07after", "after"),
        ("\x1b]8;;http://evil\x1b\\link\x1b]8;;\x1b\\", "link"),
        ("\x1bP1$r0m\x1b\\kept", "kept"),
        ("\x1b_apc\x1b\\\x1b^pm\x1b\\\x1bXsos\x1b\\ok", "ok"),
        ("\x9b31mc1 csi\x9d0;t\x9cdone", "c1 csidone"),
        ("\x90dcs body\x9cafter", "after"),
        ("\x1b]0;title\x9cafter", "after"),
        ("a\x1b(Bb\x1b7c\x1b=d", "abcd"),
        ("lone\x1b", "lone"),
        ("bell\x07 back\x08space\x7f", "bell backspace"),
        ("tab\tstays", "tab\tstays"),
        ("[bold]markup[/bold] stays", "[bold]markup[/bold] stays"),
        ("ünïcødé ✓ 漢字", "ünïcødé ✓ 漢字"),
        ("cut at end \x1b[", "cut at end "),
        ("unterminated \x1b]0;title", "unterminated "),
        ("two\nlines\r", "two\nlines"),
        ("if (admin\u202e\u2066 /* x */\u2069\u2066) {", "if (admin /* x */) {"),
        ("\u200eltr\u200frtl\u061carabic", "ltrrtlarabic"),
    ],
)
def test_strip_controls_examples(raw: str, clean: str) -> None:
    assert strip_controls(raw) == clean


FRAGMENTS = [
    "\x1b", "\x1b[", "\x1b]", "\x1bP", "\x1b\\", "\x07", "\x9b", "\x9c", "\x9d", "\x90",
    "[bold]", "[/]", "31m", ";", "\n", "\t", "\r", "\x00", "\x7f", "\x85", *BIDI,
]  # fmt: skip
hostile = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.characters()), max_size=40).map("".join)
clean_text = st.text(st.characters(exclude_categories=["Cs"]).filter(lambda c: not forbidden(c)))


@settings(max_examples=500)
@given(hostile)
def test_no_control_survives(text: str) -> None:
    out = strip_controls(text)
    assert not any(forbidden(ch) for ch in out if ch != "\n")
    assert strip_controls(out) == out
    assert not any(forbidden(ch) for line in strip_lines(text) for ch in line)


@given(clean_text)
def test_clean_text_is_untouched(text: str) -> None:
    assert strip_controls(text) == text


@settings(max_examples=300)
@given(hostile, hostile)
def test_markup_after_any_garbage_stays_verbatim(before: str, after: str) -> None:
    """BEL ends whatever sequence `before` left open, so the markup that follows is plain text."""
    assert "[bold]" in strip_controls(before + "\x07[bold]" + after)


def test_strip_lines_splits_then_strips() -> None:
    assert strip_lines("a\x1b[1m\r\nb\x07\n") == ["a", "b"]
    assert strip_lines("") == []
    assert strip_lines("\x1b]0;open\nnext\n") == ["", "next"]


def test_one_line_flattens_and_cuts() -> None:
    assert (
        one_line("  503 \x1b[31mService\x1b[0m\n\tUnavailable \x07 ") == "503 Service Unavailable"
    )
    assert one_line("x" * 500, limit=120) == "x" * 120
    assert one_line("") == ""


def test_last_line_prefers_the_first_output_with_something_to_say() -> None:
    assert last_line("warn\nerror: \x1b]0;t\x07disk full\n\n", "ignored") == "error: disk full"
    assert last_line(" \n\x1b[0m\n", "from stdout\n") == "from stdout"
    assert last_line("", "") == "no output"
    assert last_line("y" * 500, limit=200) == "y" * 200


def test_json_text_escapes_what_a_terminal_acts_on_and_keeps_the_data() -> None:
    import json

    doc = json.dumps({"subject": "fix\u202e txt.exe\x85\x7f", "ok": "ü ✓"}, ensure_ascii=False)
    safe = json_text(doc)
    assert not any(ch in safe for ch in (*BIDI, "\x85", "\x7f"))
    assert "ü ✓" in safe and json.loads(safe) == json.loads(doc)
    assert json_text('{"a": 1}') == '{"a": 1}'


def test_json_lines_escape_each_line_as_json_text_does() -> None:
    unsafe = [chr(c) for c in range(0x110000) if json_text(chr(c)) != chr(c)]
    assert "\x7f" in unsafe and "\u2028" in unsafe and "\u202e" in unsafe
    for ch in unsafe:  # each is found whatever page it is in: escaped, the rest kept
        lines = [b'{"a":"ok"}', f'{{"a":"\u00fc {ch} \u2713"}}'.encode(), b'{"b":1}']
        assert json_lines(lines).decode() == "\n".join(json_text(x.decode()) for x in lines)
    plain = [b'{"a":"\xc3\xbc \xe2\x9c\x93 \xe2\x80\x94"}', b'{"b":"\\u2028"}']
    assert json_lines(plain) == b"\n".join(plain)  # an em dash looks unsafe; nothing changes
    assert json_bytes(plain[0]) is plain[0] and json_lines([]) == b""


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ('=HYPERLINK("http://evil","x")', '\'=HYPERLINK("http://evil","x")'),
        ("+1+1", "'+1+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tindented", "'\tindented"),
        ("\r=1", "'=1"),  # CR is stripped, and what it hid is still neutralised
        ("\x1b[31m=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"),
        ("alice\u202eevil", "aliceevil"),
        ("plain text = fine", "plain text = fine"),
        (42, "42"),
        (None, ""),
    ],
)
def test_csv_cell_neutralises_formulas_and_controls(value: object, cell: str) -> None:
    assert csv_cell(value) == cell
