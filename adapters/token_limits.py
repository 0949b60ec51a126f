"""Token limits (tokens and requests per minute) for one model, where the gateway keeps them.

Two stores: a LiteLLM proxy config file, edited in place, and an HTTP gateway with a small JSON
API. Both refuse anything but positive integers before touching anything.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import yaml

from shipdeck.adapters.argv import run_argv
from shipdeck.adapters.local.processes import file_lock
from shipdeck.adapters.webhook import no_redirect_opener
from shipdeck.core.domain.redact import last_line
from shipdeck.core.errors import AdapterError
from shipdeck.core.ports import TokenLimits

LIMIT_KEYS = ("tpm", "rpm")


def check_limits(limits: TokenLimits) -> None:
    """Refuse zero, negative, fractional, boolean or textual limits: a gateway would read them
    as 'no limit' or reject them later, with the change already recorded."""
    for key in LIMIT_KEYS:
        value = getattr(limits, key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"{key} must be a positive integer, not {value!r}")


def _limit(label: str, key: str, value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise AdapterError(f"{label}: {key} is {value!r}, not an integer")
    return value


# --- LiteLLM proxy config ----------------------------------------------------------------------


def _get(node: yaml.Node, key: str) -> yaml.Node | None:
    if not isinstance(node, yaml.MappingNode):
        return None
    for key_node, value_node in node.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
            return value_node
    return None


def _references(root: yaml.Node) -> Counter[int]:
    """How many times each node is reached from the root: more than once means an alias."""
    counts: Counter[int] = Counter()
    stack = [root]
    while stack:
        node = stack.pop()
        counts[id(node)] += 1
        if counts[id(node)] > 1:
            continue
        if isinstance(node, yaml.SequenceNode):
            stack += node.value
        elif isinstance(node, yaml.MappingNode):
            stack += [part for pair in node.value for part in pair]
    return counts


def _model_entries(data: Any, model: str) -> list[dict[str, Any]]:
    entries = data.get("model_list") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        return []
    return [e for e in entries if isinstance(e, dict) and e.get("model_name") == model]


class LiteLLMFileLimits:
    """`tpm`/`rpm` under `litellm_params` of every deployment named `model` in a LiteLLM config.

    The file is edited in place (only the two values change; comments, order, quoting, line
    endings and the other deployments stay byte for byte), checked by parsing it again, and the
    proxy is told to reload. A failed reload puts the old text back.

    In place means in the same file, not a new one renamed over it: the config is often a
    symlink into the gateway's deployment, or bind-mounted into its container, and both keep
    pointing at the old inode after a rename (the gateway would keep the old limit while we
    report the new one). The workspace names this path, so a link here is followed on purpose,
    to the file it names; mode and owner stay the file's own.
    """

    def __init__(
        self,
        path: Path | str,
        model: str,
        reload: Sequence[str] | None = None,
        *,
        timeout: float = 60.0,
    ) -> None:
        self.path = Path(path)
        self.model = model
        self.reload = list(reload) if reload else None
        self.timeout = timeout
        self.label = f"litellm limits {model} in {self.path}"

    def _text(self) -> str:
        try:
            with open(self.path, encoding="utf-8", newline="") as fh:  # CRLF stays CRLF
                return fh.read()
        except FileNotFoundError:
            raise AdapterError(f"{self.label}: file not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise AdapterError(f"{self.label}: cannot read: {exc}") from None

    def _parse(self, text: str) -> Any:
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            raise AdapterError(f"{self.label}: not valid YAML{where}") from None

    def _entries(self, data: Any) -> list[dict[str, Any]]:
        entries = _model_entries(data, self.model)
        if not entries:
            raise AdapterError(f"{self.label}: no model_list entry with model_name {self.model}")
        return entries

    def read(self) -> TokenLimits:
        entries = self._entries(self._parse(self._text()))
        found: dict[str, int | None] = {}
        for key in LIMIT_KEYS:
            values = {
                _limit(self.label, key, (e.get("litellm_params") or {}).get(key)) for e in entries
            }
            if len(values) > 1:
                shown = ", ".join(sorted(str(v) for v in values))
                raise AdapterError(f"{self.label}: deployments disagree on {key}: {shown}")
            found[key] = values.pop()
        return TokenLimits(tpm=found["tpm"], rpm=found["rpm"])

    def write(self, limits: TokenLimits) -> None:
        check_limits(limits)
        changes = {k: getattr(limits, k) for k in LIMIT_KEYS if getattr(limits, k) is not None}
        if not changes:
            return
        lock = self.path.with_name(f".{self.path.name}.lock")
        with file_lock(lock, 30.0, self.label):
            old = self._text()
            new = self._edited(old, changes)
            if new == old:
                return
            self._replace(new)
            if self.reload is None:
                return
            try:
                run = run_argv(self.reload, self.timeout, label=f"{self.label}: reload")
                failure = (
                    None
                    if run.returncode == 0
                    else f"exit {run.returncode}: {last_line(run.stderr, run.stdout, limit=200)}"
                )
            except AdapterError as exc:
                failure = exc.message
            if failure is not None:
                self._replace(old)
                raise AdapterError(
                    f"{self.label}: reload failed ({failure}); previous file restored"
                )

    def _edited(self, text: str, changes: Mapping[str, int]) -> str:
        """Splice the new values into the text at the positions the YAML parser reports."""
        data = self._parse(text)
        self._entries(data)
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        model_list = _get(root, "model_list") if root is not None else None
        assert root is not None and isinstance(model_list, yaml.SequenceNode)  # _entries found it
        shared = _references(root)
        edits: list[tuple[int, int, str]] = []
        for item in model_list.value:
            name = _get(item, "model_name")
            if not (isinstance(name, yaml.ScalarNode) and name.value == self.model):
                continue
            params = _get(item, "litellm_params")
            if not isinstance(params, yaml.MappingNode):
                raise AdapterError(f"{self.label}: litellm_params is missing or not a mapping")
            touched = [params, *(_get(params, key) for key in changes)]
            if any(node is not None and shared[id(node)] > 1 for node in touched):
                # an anchor used elsewhere: editing it would change another deployment too
                raise AdapterError(f"{self.label}: cannot edit safely: litellm_params is an alias")
            edits += self._param_edits(params, changes)
        new = text
        for start, end, replacement in sorted(set(edits), reverse=True):
            new = new[:start] + replacement + new[end:]
        expected = data
        for entry in _model_entries(expected, self.model):
            entry["litellm_params"].update(changes)
        if self._parse(new) != expected:
            # an exotic layout the splice got wrong: refuse rather than change something else
            raise AdapterError(f"{self.label}: cannot edit safely: the result does not parse back")
        return new

    def _param_edits(
        self, params: yaml.MappingNode, changes: Mapping[str, int]
    ) -> list[tuple[int, int, str]]:
        edits: list[tuple[int, int, str]] = []
        missing: list[str] = []
        for key, value in changes.items():
            node = _get(params, key)
            if node is None:
                missing.append(f"{key}: {value}")
            elif isinstance(node, yaml.ScalarNode):
                edits.append((node.start_mark.index, node.end_mark.index, str(value)))
            else:
                raise AdapterError(f"{self.label}: {key} is not a plain value")
        if not missing:
            return edits
        if params.flow_style:
            if params.value:
                at = params.value[0][0].start_mark.index
                edits.append((at, at, ", ".join(missing) + ", "))
            else:
                at = params.start_mark.index + 1  # just inside "{}"
                edits.append((at, at, ", ".join(missing)))
        else:
            first = params.value[0][0]
            indent = "\n" + " " * first.start_mark.column
            at = first.start_mark.index
            edits.append((at, at, indent.join(missing) + indent))
        return edits

    def _replace(self, text: str) -> None:
        """Overwrite the real file's content in place (same inode, mode and owner). The space is
        reserved first, so a full disk fails before a byte of the old text is touched."""
        data = text.encode("utf-8")
        try:
            fd = os.open(self.path.resolve(strict=True), os.O_WRONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise AdapterError(f"{self.label}: cannot write: {exc.strerror or exc}") from None
        try:
            os.posix_fallocate(fd, 0, max(len(data), 1))
            written = os.pwrite(fd, data, 0)
            if written != len(data):
                raise OSError(f"short write ({written} of {len(data)} bytes)")
            os.ftruncate(fd, len(data))
            os.fsync(fd)
        except OSError as exc:
            raise AdapterError(f"{self.label}: cannot write: {exc.strerror or exc}") from None
        finally:
            os.close(fd)


# --- HTTP gateway ------------------------------------------------------------------------------


class HttpGatewayLimits:
    """GET/PUT {"tpm": N, "rpm": N} at {url}/models/{model}/limits with a bearer token read from
    the environment variable named `token_env` at call time (never stored, logged or shown)."""

    def __init__(self, url: str, model: str, token_env: str, *, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.model = model
        self.token_env = token_env
        self.timeout = timeout
        parts = urlsplit(self.url)
        host = parts.hostname or "?"
        where = f"{host}:{parts.port}" if parts.port else host
        self.label = f"gateway limits {model} at {where}"
        self._opener = no_redirect_opener()

    def _request(self, method: str, body: Mapping[str, Any] | None = None) -> dict[str, Any]:
        token = os.environ.get(self.token_env)
        if not token:
            raise AdapterError(f"{self.label}: environment variable {self.token_env} is not set")
        request = urllib.request.Request(
            f"{self.url}/models/{quote(self.model, safe='')}/limits",
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={
                "Authorization": f"Bearer {token}",
                "Accept": "application/json",
                **({"Content-Type": "application/json"} if body is not None else {}),
            },
        )

        def clean(text: str) -> str:
            return " ".join(text.replace(token, "***").split())[:200]

        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                raw = response.read(1 << 20)
        except urllib.error.HTTPError as exc:
            detail = clean(exc.read(2048).decode("utf-8", "replace")) or exc.reason
            raise AdapterError(f"{self.label}: {method} got HTTP {exc.code}: {detail}") from None
        except urllib.error.URLError as exc:
            raise AdapterError(f"{self.label}: cannot reach: {clean(str(exc.reason))}") from None
        except (TimeoutError, OSError) as exc:
            raise AdapterError(f"{self.label}: {method} failed: {clean(str(exc))}") from None
        if not raw.strip():
            return {}
        try:
            doc = json.loads(raw)
        except ValueError:
            raise AdapterError(f"{self.label}: {method} answered with something not JSON") from None
        if not isinstance(doc, dict):
            raise AdapterError(f"{self.label}: {method} answered with JSON that is not an object")
        return doc

    def read(self) -> TokenLimits:
        doc = self._request("GET")
        return TokenLimits(
            tpm=_limit(self.label, "tpm", doc.get("tpm")),
            rpm=_limit(self.label, "rpm", doc.get("rpm")),
        )

    def write(self, limits: TokenLimits) -> None:
        """PUT replaces the whole document, so a value left as None is read first and kept."""
        check_limits(limits)
        if limits.tpm is None and limits.rpm is None:
            return
        current = self.read() if limits.tpm is None or limits.rpm is None else limits
        self._request(
            "PUT",
            {
                "tpm": limits.tpm if limits.tpm is not None else current.tpm,
                "rpm": limits.rpm if limits.rpm is not None else current.rpm,
            },
        )
