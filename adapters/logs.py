"""Log sources for `shipdeck task logs`: a file, a command's output, or CloudWatch Logs.

Lines come back raw (the LogSource contract); `shipdeck.core.domain.redact.strip_controls` is what every
front end must apply before a line reaches a terminal, because log content is written by whoever
can reach the app.

`since` semantics, the same for file and command sources: logs are chronological, so reading from
the end we stop at the first line whose leading ISO-8601 timestamp is older than `since`. A line
without a timestamp (a stack trace, a wrapped message) belongs to the entry above it and is kept
or dropped with it; lines above the first timestamp of the output have no entry and are kept.
Naive timestamps, and a naive `since`, are taken as UTC. CloudWatch filters by event time itself.
"""

from __future__ import annotations

import os
import re
import selectors
import tempfile
import threading
from collections import deque
from collections.abc import Generator, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from shipdeck.adapters.argv import kill_group, placeholders, render_argv, run_argv, spawn
from shipdeck.adapters.aws import AwsClient, aws_errors
from shipdeck.core.domain.redact import last_line
from shipdeck.core.errors import AdapterError
from shipdeck.core.storage.nofollow import open_nofollow

# --- timestamps and selection ------------------------------------------------------------------

_LEADING_TS = re.compile(
    r"\[?(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?)"
)


def line_timestamp(line: str) -> datetime | None:
    """The ISO-8601 timestamp a line starts with (optionally in brackets), as aware UTC."""
    found = _LEADING_TS.match(line)
    if found is None:
        return None
    try:
        stamp = datetime.fromisoformat(found.group(1))
    except ValueError:
        return None
    return stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _check_count(lines: int | None) -> None:
    if lines is not None and lines < 0:
        raise ValueError(f"lines must be 0 or more, not {lines}")


def select_lines(
    newest_first: Iterable[str], lines: int | None, since: datetime | None
) -> list[str]:
    """Apply the `lines` and `since` rules to lines given newest first; returns oldest first.

    Consumes the iterable only as far as needed, so a backwards file reader stops early.
    """
    _check_count(lines)
    picked: list[str] = []
    if lines == 0:
        return picked
    if since is None:
        for line in newest_first:
            picked.append(line)
            if lines is not None and len(picked) >= lines:
                break
        picked.reverse()
        return picked
    cutoff = _aware(since)
    pending: list[str] = []  # lines without a timestamp, waiting for the entry line above them
    for line in newest_first:
        stamp = line_timestamp(line)
        if stamp is None:
            if lines is None or len(picked) + len(pending) < lines:
                pending.append(line)
            continue
        if stamp < cutoff:
            break  # the entry is older, and so is everything above it; its pending lines go too
        picked += pending
        picked.append(line)
        pending = []
        if lines is not None and len(picked) >= lines:
            break
    else:
        picked += pending  # above the first timestamp: nothing to judge them by, kept
    del picked[lines if lines is not None else len(picked) :]
    picked.reverse()
    return picked


def _decode_lines(data: bytes) -> list[str]:
    return _split_lines(data.decode("utf-8", "replace"))


def _split_lines(text: str) -> list[str]:
    if "\r" in text:  # a scan is far cheaper than a copy of a large tail
        text = text.replace("\r\n", "\n")
    out = text.split("\n")
    if out and out[-1] == "":
        out.pop()
    return out


def _decode_line(raw: bytes) -> str:
    return raw.decode("utf-8", "replace").removesuffix("\r")


# --- a file ------------------------------------------------------------------------------------


class FileLogSource:
    """A log file on this machine, read from the end so tailing a huge file costs only the tail."""

    def __init__(
        self,
        path: Path | str,
        *,
        workspace: Path | None = None,
        poll_interval: float = 0.25,
        block_size: int = 1 << 16,
    ) -> None:
        self.path = Path(path)
        self.workspace = workspace  # under it, no component of the path may be a symlink
        self.poll_interval = poll_interval
        self.block_size = block_size

    def _error(self, cause: str) -> AdapterError:
        return AdapterError(f"file log {self.path}: {cause}")

    def _open(self) -> BinaryIO:
        try:
            fd = open_nofollow(self.path, os.O_RDONLY, root=self.workspace)
            return open(fd, "rb", buffering=0)  # whole blocks: no buffer to copy through
        except FileNotFoundError:
            raise self._error("not found") from None
        except OSError as exc:
            raise self._error(exc.strerror or str(exc)) from None

    def tail(self, lines: int | None = None, since: datetime | None = None) -> list[str]:
        _check_count(lines)
        if lines == 0:
            return []
        with self._open() as f:
            end = os.fstat(f.fileno()).st_size
            if since is None:
                return self._last_lines(f, end, lines)
            return select_lines(self._backwards(f, end), lines, since)

    def newest_first(self) -> Generator[str, None, None]:
        """The file's lines newest first, read block by block from its end, so a caller that
        stops early (at the start of a time window) never reads the rest of a huge file. Close
        the iterator (contextlib.closing) to close the file when stopping early."""
        with self._open() as f:
            yield from self._backwards(f, os.fstat(f.fileno()).st_size)

    def _last_lines(self, f: BinaryIO, end: int, lines: int | None) -> list[str]:
        """Read whole blocks backwards until they hold `lines` complete lines, then decode once:
        counting newlines in C keeps this close to `tail -n`."""
        if lines is None:
            f.seek(0)
            return _decode_lines(f.read(end))
        blocks: list[bytes] = []
        newlines = 0
        pos = end
        size = self.block_size
        while pos > 0 and newlines <= lines:
            size = min(size, pos)
            pos -= size
            f.seek(pos)
            block = f.read(size)
            blocks.append(block)
            newlines += block.count(b"\n")
            size = min(size * 2, 1 << 24)  # a long tail is read in few, large reads
        blocks.reverse()
        data = b"".join(blocks)
        if pos > 0:
            data = data[data.index(b"\n") + 1 :]  # drop the partial first line
        return _decode_lines(data)[-lines:]

    def _backwards(self, f: BinaryIO, end: int) -> Iterator[str]:
        """Lines newest first, one block at a time."""
        if end == 0:
            return
        f.seek(end - 1)
        if f.read(1) == b"\n":
            end -= 1  # the final newline ends the last line; it does not start another
        pos = end
        carry = b""
        while True:
            size = min(self.block_size, pos)
            pos -= size
            f.seek(pos)
            parts = (f.read(size) + carry).split(b"\n")
            carry = parts.pop(0) if pos > 0 else b""
            for raw in reversed(parts):
                yield _decode_line(raw)
            if pos == 0:
                return

    def follow(self, stop: threading.Event) -> Iterator[str]:
        """Yield lines appended from now on; survives truncation and rotation (rename + new file,
        whose lines are read from its start)."""
        f: BinaryIO | None = None
        partial = b""
        try:
            try:
                f = self._open()
                f.seek(0, os.SEEK_END)
            except AdapterError:
                if self.path.exists() or self.path.is_symlink():
                    raise  # a planted link, or unreadable: say so, do not wait for it
                f = None  # read it from its start once it appears
            while not stop.is_set():
                data = f.read(1 << 16) if f is not None else b""
                if data:
                    *complete, partial = (partial + data).split(b"\n")
                    for raw in complete:
                        yield _decode_line(raw)
                    continue
                try:
                    current = os.stat(self.path)
                except FileNotFoundError:
                    current = None
                if f is None:
                    if current is not None:
                        f = self._open()
                        continue
                else:
                    mine = os.fstat(f.fileno())
                    if current is not None and (current.st_ino, current.st_dev) != (
                        mine.st_ino,
                        mine.st_dev,
                    ):
                        if partial:  # the old file is drained: its last line ends here
                            yield _decode_line(partial)
                            partial = b""
                        f.close()
                        f = self._open()
                        continue
                    if mine.st_size < f.tell():
                        f.seek(0)  # truncated in place: start again from the top
                        partial = b""
                        continue
                stop.wait(self.poll_interval)
        finally:
            if f is not None:
                f.close()


# --- a command ---------------------------------------------------------------------------------


class CommandLogSource:
    """Logs printed by a configured command (`journalctl`, `kubectl logs`, a script).

    The template may use `{lines}` and `{since}` (ISO-8601) to push the request down, plus any
    `values` (app, env, config...). The `lines`/`since` rules are applied again to the output, so a
    command that ignores them still gives the right answer. `follow_template` is a long-running
    command (`journalctl -f`) whose output is streamed.
    """

    def __init__(
        self,
        template: Sequence[str],
        values: Mapping[str, object] | None = None,
        *,
        follow_template: Sequence[str] | None = None,
        timeout: float = 60.0,
        label: str = "command log",
    ) -> None:
        self.template = list(template)
        self.follow_template = list(follow_template) if follow_template is not None else None
        self.values = dict(values or {})
        self.timeout = timeout
        self.label = label
        known = {*self.values, "lines", "since"}
        for tpl in (self.template, self.follow_template or []):
            try:
                used = {name.split("[", 1)[0] for name in placeholders(tpl)}
            except ValueError as exc:
                raise AdapterError(f"{label}: {exc}") from None
            if unknown := sorted(used - known):
                raise AdapterError(f"{label}: unknown placeholder {{{unknown[0]}}}")

    def _render(self, template: Sequence[str], extra: Mapping[str, object]) -> list[str]:
        try:
            return render_argv(template, {**self.values, **extra})
        except ValueError as exc:
            raise AdapterError(f"{self.label}: {exc}") from None

    def tail(self, lines: int | None = None, since: datetime | None = None) -> list[str]:
        _check_count(lines)
        argv = self._render(
            self.template,
            {"lines": lines, "since": _aware(since).isoformat() if since is not None else None},
        )
        run = run_argv(argv, self.timeout, label=self.label)
        if run.returncode != 0:
            raise AdapterError(
                f"{self.label}: {argv[0]} exited {run.returncode}: {last_line(run.stderr)}"
            )
        return select_lines(reversed(_split_lines(run.stdout)), lines, since)

    def follow(self, stop: threading.Event) -> Iterator[str]:
        if self.follow_template is None:
            raise AdapterError(f"{self.label}: following is not configured (follow command)")
        argv = self._render(self.follow_template, {})
        with tempfile.TemporaryFile() as errors:
            proc = spawn(argv, self.label, stderr=errors.fileno())
            assert proc.stdout is not None
            partial = b""
            try:
                with selectors.DefaultSelector() as sel:
                    sel.register(proc.stdout, selectors.EVENT_READ)
                    while not stop.is_set():
                        if not sel.select(timeout=0.2):
                            continue
                        data = os.read(proc.stdout.fileno(), 1 << 16)
                        if not data:
                            break
                        *complete, partial = (partial + data).split(b"\n")
                        for raw in complete:
                            yield _decode_line(raw)
                if stop.is_set():
                    return
                if partial:
                    yield _decode_line(partial)
                code = proc.wait()
                if code != 0:
                    errors.seek(0)
                    detail = last_line(errors.read().decode("utf-8", "replace"))
                    raise AdapterError(f"{self.label}: {argv[0]} exited {code}: {detail}")
            finally:
                if proc.poll() is None:
                    kill_group(proc)
                proc.stdout.close()


# --- CloudWatch Logs ---------------------------------------------------------------------------


class CloudWatchLogSource:
    """A CloudWatch Logs group, or one stream of it, through boto3."""

    def __init__(
        self,
        group: str,
        stream: str | None = None,
        region: str | None = None,
        endpoint_url: str | None = None,
        profile: str | None = None,
        *,
        poll_interval: float = 1.0,
    ) -> None:
        self.group = group
        self.stream = stream
        self.poll_interval = poll_interval
        self.label = f"cloudwatch log {group}" + (f"/{stream}" if stream else "")
        self._logs = AwsClient(
            "logs", self.label, region=region, endpoint_url=endpoint_url, profile=profile
        )

    def tail(self, lines: int | None = None, since: datetime | None = None) -> list[str]:
        _check_count(lines)
        if lines == 0:
            return []
        start = _millis(since) if since is not None else None
        with aws_errors(self.label):
            events = (
                self._stream_events(lines, start)
                if self.stream is not None
                else self._group_events(lines, start)
            )
        out: list[str] = []
        for event in events:
            out.extend(_event_lines(event))
        return out[-lines:] if lines is not None else out

    def _stream_events(self, lines: int | None, start: int | None) -> list[dict[str, Any]]:
        """Newest pages first through the backward token until enough lines are in hand."""
        kwargs: dict[str, Any] = {
            "logGroupName": self.group,
            "logStreamName": self.stream,
            "startFromHead": False,
        }
        if start is not None:
            kwargs["startTime"] = start
        if lines is not None:
            kwargs["limit"] = min(lines, 10_000)
        pages: list[list[dict[str, Any]]] = []
        count = 0
        token: str | None = None
        while True:
            page = self._logs().get_log_events(**kwargs, **({"nextToken": token} if token else {}))
            events = page.get("events", [])
            if events:
                pages.append(events)
                count += sum(len(_event_lines(e)) for e in events)
            nxt = page.get("nextBackwardToken")
            if not events or nxt == token or (lines is not None and count >= lines):
                break
            token = nxt
        pages.reverse()
        return [event for page in pages for event in page]

    def _group_events(self, lines: int | None, start: int | None) -> list[dict[str, Any]]:
        """filter_log_events only pages forward, so keep a bounded window of the newest."""
        window: deque[dict[str, Any]] = deque(maxlen=lines)
        for event in self._filter(start):
            window.append(event)
        return sorted(window, key=lambda e: (e.get("timestamp", 0), e.get("ingestionTime", 0)))

    def _filter(self, start: int | None) -> Iterator[dict[str, Any]]:
        kwargs: dict[str, Any] = {"logGroupName": self.group}
        if self.stream is not None:
            kwargs["logStreamNames"] = [self.stream]
        if start is not None:
            kwargs["startTime"] = start
        token: str | None = None
        while True:
            page = self._logs().filter_log_events(
                **kwargs, **({"nextToken": token} if token else {})
            )
            yield from page.get("events", [])
            token = page.get("nextToken")
            if not token:
                return

    def follow(self, stop: threading.Event) -> Iterator[str]:
        """Poll for events from now on; events sharing the last timestamp are de-duplicated by
        id, because the next poll starts at that same millisecond."""
        last = _millis(datetime.now(UTC))
        seen: set[str] = set()
        while not stop.is_set():
            with aws_errors(self.label):
                fresh = [e for e in self._filter(last) if e.get("eventId") not in seen]
            fresh.sort(key=lambda e: e.get("timestamp", 0))
            for event in fresh:
                stamp = int(event.get("timestamp", last))
                if stamp > last:
                    last, seen = stamp, set()
                seen.add(str(event.get("eventId")))
                yield from _event_lines(event)
            if not fresh:
                stop.wait(self.poll_interval)

    def close(self) -> None:
        self._logs.close()


def _millis(moment: datetime) -> int:
    return int(_aware(moment).timestamp() * 1000)


def _event_lines(event: Mapping[str, Any]) -> list[str]:
    """One event as lines: the first carries the event's time, so `since` and humans see it."""
    stamp = datetime.fromtimestamp(int(event.get("timestamp", 0)) / 1000, UTC)
    lines = _split_lines(str(event.get("message", ""))) or [""]
    lines[0] = f"{stamp.isoformat(timespec='milliseconds')} {lines[0]}"
    return lines
