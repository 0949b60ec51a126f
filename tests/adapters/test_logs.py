"""Log sources on real files, real commands and moto's CloudWatch Logs; hostile lines come out clean."""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shipdeck.adapters.logs import (
    CloudWatchLogSource,
    CommandLogSource,
    FileLogSource,
    line_timestamp,
)
from shipdeck.core.domain.redact import strip_controls
from shipdeck.core.errors import AdapterError
from shipdeck.core.ports import LogSource
from tests.unit.test_redact_controls import forbidden, hostile

# --- strip_controls on lines read from a file -----------------------------------------------


@settings(max_examples=100, deadline=None)
@given(st.lists(hostile, min_size=1, max_size=20))
def test_hostile_lines_through_a_file_come_out_clean(tmp_path_factory: pytest.TempPathFactory,
                                                    lines: list[str]) -> None:  # fmt: skip
    path = tmp_path_factory.mktemp("hostile") / "app.log"
    path.write_bytes(b"".join(line.encode("utf-8", "surrogatepass") + b"\n" for line in lines))
    path.write_bytes(path.read_bytes() + b"[bold]tail\x1b[0m\xc2\x9b\n")
    got = [strip_controls(line) for line in FileLogSource(path).tail(lines=1000)]
    assert got[-1] == "[bold]tail"
    assert not any(forbidden(ch) for line in got for ch in line)


# --- FileLogSource.tail ------------------------------------------------------------------------


def write_lines(path: Path, lines: list[str], end: str = "\n") -> Path:
    path.write_text("\n".join(lines) + end, encoding="utf-8")
    return path


def test_tail_last_lines(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "a.log", [f"line {i}" for i in range(1000)])
    source = FileLogSource(path)
    assert source.tail(lines=3) == ["line 997", "line 998", "line 999"]
    assert source.tail(lines=0) == []
    assert len(source.tail()) == 1000
    assert source.tail(lines=5000) == [f"line {i}" for i in range(1000)]


def test_tail_handles_missing_final_newline_crlf_and_bad_utf8(tmp_path: Path) -> None:
    path = tmp_path / "b.log"
    path.write_bytes(b"one\r\ntwo \xff\xfe\r\nthree")
    assert FileLogSource(path).tail(lines=2) == ["two \ufffd\ufffd", "three"]
    empty = tmp_path / "empty.log"
    empty.write_bytes(b"")
    assert FileLogSource(empty).tail(lines=10) == []


@settings(max_examples=200)
@given(
    lines=st.lists(st.text(st.characters(exclude_characters="\n\r"), max_size=12), max_size=60),
    count=st.integers(min_value=0, max_value=80),
    block=st.integers(min_value=1, max_value=50),
    final_newline=st.booleans(),
)
def test_backwards_reading_matches_a_plain_split(
    tmp_path_factory: pytest.TempPathFactory,
    lines: list[str],
    count: int,
    block: int,
    final_newline: bool,
) -> None:
    path = tmp_path_factory.mktemp("prop") / "p.log"
    data = "\n".join(lines) + ("\n" if final_newline and lines else "")
    path.write_bytes(data.encode("utf-8", "surrogatepass"))
    expected = path.read_bytes().decode("utf-8", "replace").split("\n")
    if expected[-1] == "":
        expected.pop()
    source = FileLogSource(path, block_size=block)
    assert source.tail(lines=count) == (expected[-count:] if count else [])
    # `since` far in the past walks the whole file through the line-by-line reader.
    long_ago = datetime(1970, 1, 1, tzinfo=UTC)
    assert source.tail(lines=count, since=long_ago) == (expected[-count:] if count else [])


def test_tail_since_stops_at_the_first_older_line(tmp_path: Path) -> None:
    t0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    lines = [
        f"{(t0 + timedelta(minutes=0)).isoformat()} old",
        "  old continuation",
        f"{(t0 + timedelta(minutes=5)).isoformat()} boundary",
        "Traceback (most recent call last):",
        f"[{(t0 + timedelta(minutes=9)).strftime('%Y-%m-%d %H:%M:%S,%f')[:-3]}] bracketed",
        f"{(t0 + timedelta(minutes=10)).strftime('%Y-%m-%dT%H:%M:%S')} naive is utc",
    ]
    path = write_lines(tmp_path / "c.log", lines)
    source = FileLogSource(path, block_size=16)
    since = t0 + timedelta(minutes=5)
    assert source.tail(since=since) == lines[2:]
    assert source.tail(since=since.replace(tzinfo=None)) == lines[2:]
    assert source.tail(since=since, lines=2) == lines[4:]
    assert source.tail(since=t0 + timedelta(hours=1)) == []


def test_line_timestamp_forms() -> None:
    assert line_timestamp("2026-03-01T12:00:00Z x") == datetime(2026, 3, 1, 12, tzinfo=UTC)
    assert line_timestamp("2026-03-01 12:00:00.123456789+01:00 x") is not None
    assert line_timestamp("[2026-03-01 12:00] x") == datetime(2026, 3, 1, 12, tzinfo=UTC)
    assert line_timestamp("2026-13-45T99:00:00 bad") is None
    assert line_timestamp("no time here") is None


def test_missing_file_is_a_one_line_adapter_error(tmp_path: Path) -> None:
    with pytest.raises(AdapterError, match=r"^file log .*nope\.log: not found$"):
        FileLogSource(tmp_path / "nope.log").tail(lines=1)


def test_negative_line_count_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="lines must be 0 or more"):
        FileLogSource(write_lines(tmp_path / "x.log", ["a"])).tail(lines=-1)


# --- follow ------------------------------------------------------------------------------------


class Follower:
    """Runs source.follow in a thread and hands lines over a queue."""

    def __init__(self, source: LogSource) -> None:
        self.stop = threading.Event()
        self.lines: queue.Queue[str] = queue.Queue()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(source,), daemon=True)
        self.thread.start()

    def _run(self, source: LogSource) -> None:
        try:
            for line in source.follow(self.stop):
                self.lines.put(line)
        except BaseException as exc:
            self.error = exc

    def take(self, count: int, timeout: float = 10.0) -> list[str]:
        return [self.lines.get(timeout=timeout) for _ in range(count)]

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=10)
        assert not self.thread.is_alive()


@pytest.fixture()
def follow() -> Iterator[list[Follower]]:
    started: list[Follower] = []
    yield started
    for follower in started:
        follower.close()


def append(path: Path, data: bytes) -> None:
    with path.open("ab") as f:
        f.write(data)


def test_follow_yields_new_lines_only_and_waits_for_a_full_line(
    tmp_path: Path, follow: list[Follower]
) -> None:
    path = write_lines(tmp_path / "f.log", ["before"])
    f = Follower(FileLogSource(path, poll_interval=0.02))
    follow.append(f)
    time.sleep(0.2)  # let it open the file and seek to the end
    append(path, b"first\nsec")
    assert f.take(1) == ["first"]
    append(path, b"ond\r\n")
    assert f.take(1) == ["second"]


def test_follow_survives_truncation_and_rotation(tmp_path: Path, follow: list[Follower]) -> None:
    path = write_lines(tmp_path / "r.log", ["old"])
    f = Follower(FileLogSource(path, poll_interval=0.02))
    follow.append(f)
    time.sleep(0.2)
    append(path, b"a\n")
    assert f.take(1) == ["a"]
    with path.open("r+b") as fh:  # copytruncate-style rotation
        fh.truncate(0)
    time.sleep(0.2)
    append(path, b"after truncate\n")
    assert f.take(1) == ["after truncate"]
    append(path, b"last words in old")
    os.rename(path, tmp_path / "r.log.1")  # rename + create rotation
    time.sleep(0.2)
    write_lines(path, ["fresh 1", "fresh 2"])
    assert f.take(3) == ["last words in old", "fresh 1", "fresh 2"]
    assert f.error is None


def test_follow_waits_for_a_file_that_does_not_exist_yet(
    tmp_path: Path, follow: list[Follower]
) -> None:
    path = tmp_path / "later.log"
    f = Follower(FileLogSource(path, poll_interval=0.02))
    follow.append(f)
    time.sleep(0.1)
    write_lines(path, ["hello"])
    assert f.take(1) == ["hello"]


# --- CommandLogSource --------------------------------------------------------------------------

PRINTER = """
import sys
for i in range(50):
    print(f"2026-03-01T12:{i:02d}:00Z line {i}")
print("args", sys.argv[1:])
"""


def script(tmp_path: Path, code: str) -> str:
    """Code goes in a file: braces in an argv template are placeholders."""
    path = tmp_path / f"{uuid.uuid4().hex[:8]}.py"
    path.write_text(code, encoding="utf-8")
    return str(path)


def test_command_source_pushes_lines_down_and_filters_again(tmp_path: Path) -> None:
    printer = script(tmp_path, PRINTER)
    source = CommandLogSource([sys.executable, printer, "{lines}", "{since}"])
    got = source.tail(lines=2, since=datetime(2026, 3, 1, 12, 30, tzinfo=UTC))
    assert got == ["2026-03-01T12:49:00Z line 49", "args ['2', '2026-03-01T12:30:00+00:00']"]
    all_since = CommandLogSource([sys.executable, printer]).tail(
        since=datetime(2026, 3, 1, 12, 48, tzinfo=UTC)
    )
    assert all_since == ["2026-03-01T12:48:00Z line 48", "2026-03-01T12:49:00Z line 49", "args []"]


def test_command_source_errors_are_one_line() -> None:
    failing = [sys.executable, "-c", "import sys; sys.exit('no such pod \\x1b[31mweb\\x1b[0m')"]
    with pytest.raises(AdapterError, match=r"^command log: .* exited 1: no such pod web$"):
        CommandLogSource(failing).tail(lines=5)
    with pytest.raises(AdapterError, match=r"\{lines\} has no value"):
        CommandLogSource(["journalctl", "-n", "{lines}"]).tail()
    with pytest.raises(AdapterError, match=r"unknown placeholder \{pod\}"):
        CommandLogSource(["kubectl", "logs", "{pod}"])


def test_command_source_follows_a_long_running_command(
    tmp_path: Path, follow: list[Follower]
) -> None:
    streamer = script(
        tmp_path,
        "import sys, time\n"
        "for i in range(3): print(f'tick {sys.argv[1]} {i}', flush=True)\n"
        "time.sleep(60)\n",
    )
    source = CommandLogSource(
        ["true"], {"app": "chat api"}, follow_template=[sys.executable, streamer, "{app}"]
    )
    f = Follower(source)
    follow.append(f)
    assert f.take(3) == ["tick chat api 0", "tick chat api 1", "tick chat api 2"]
    f.close()  # stopping kills the command; close() asserts the thread ended
    with pytest.raises(AdapterError, match="following is not configured"):
        next(CommandLogSource(["true"]).follow(threading.Event()))


# --- CloudWatchLogSource -----------------------------------------------------------------------


@pytest.fixture()
def log_group(moto_endpoint: str) -> Iterator[tuple[str, object]]:
    client = boto3.client("logs", endpoint_url=moto_endpoint, region_name="us-east-1")
    group = f"/shipdeck/{uuid.uuid4().hex[:8]}"
    client.create_log_group(logGroupName=group)
    for stream in ("web-1", "web-2"):
        client.create_log_stream(logGroupName=group, logStreamName=stream)
    yield group, client
    client.close()


def put(client: object, group: str, stream: str, events: list[tuple[datetime, str]]) -> None:
    client.put_log_events(  # type: ignore[attr-defined]
        logGroupName=group,
        logStreamName=stream,
        logEvents=[{"timestamp": int(t.timestamp() * 1000), "message": m} for t, m in events],
    )


def test_cloudwatch_stream_and_group_tail(
    moto_endpoint: str, log_group: tuple[str, object]
) -> None:
    group, client = log_group
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    put(client, group, "web-1", [(base + timedelta(minutes=i), f"one {i}") for i in range(10)])
    put(client, group, "web-2", [(base + timedelta(minutes=i, seconds=30), "two\nsecond line")
                                 for i in range(2)])  # fmt: skip
    stream = CloudWatchLogSource(group, "web-1", "us-east-1", moto_endpoint)
    got = stream.tail(lines=2)
    assert [line.split(" ", 1)[1] for line in got] == ["one 8", "one 9"]
    assert line_timestamp(got[-1]) == base + timedelta(minutes=9)
    since = stream.tail(since=base + timedelta(minutes=7))
    assert [line.split(" ", 1)[1] for line in since] == ["one 7", "one 8", "one 9"]

    whole = CloudWatchLogSource(group, None, "us-east-1", moto_endpoint)
    lines = whole.tail(since=base, lines=5)
    assert lines[-1].endswith(" one 9")
    everything = whole.tail()
    assert "second line" in everything and len(everything) == 10 + 4
    stream.close()
    whole.close()


def test_cloudwatch_follow_and_errors(
    moto_endpoint: str, log_group: tuple[str, object], follow: list[Follower]
) -> None:
    group, client = log_group
    f = Follower(CloudWatchLogSource(group, "web-1", "us-east-1", moto_endpoint,
                                     poll_interval=0.1))  # fmt: skip
    follow.append(f)
    time.sleep(0.3)
    put(client, group, "web-1", [(datetime.now(UTC) + timedelta(seconds=1), "live one")])
    assert f.take(1)[0].endswith(" live one")
    with pytest.raises(AdapterError, match=r"^cloudwatch log /nope/x: ResourceNotFoundException"):
        CloudWatchLogSource("/nope", "x", "us-east-1", moto_endpoint).tail(lines=1)
