"""Model and dataset repositories on the Hugging Face Hub as release artifacts.

A release must name exactly what it ships, so `resolve` turns a branch or tag into the commit sha
the Hub serves right now, with every file's size and LFS sha256, and pins the release to that sha.
Written against huggingface_hub 2.4.0 (httpx2 transport): the exceptions handled below are the
ones that version raises.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from shipdeck.core.errors import AdapterError
from shipdeck.core.ports import ArtifactFile, ResolvedArtifact

if TYPE_CHECKING:
    from huggingface_hub import DatasetInfo, HfApi, ModelInfo

_REPO_PREFIX = {"model": "", "dataset": "datasets/"}
_CARD = "README.md"


@dataclass(frozen=True)
class _Ref:
    repo_type: str
    repo_id: str
    revision: str

    @property
    def label(self) -> str:
        return f"{_REPO_PREFIX[self.repo_type]}{self.repo_id}@{self.revision}"


class HuggingFaceSource:
    """`hf://org/model@rev` and `hf://datasets/org/name@rev` (rev: branch, tag or sha; "main").

    `endpoint` and `token` left as None fall back to what huggingface_hub reads itself
    (HF_ENDPOINT, HF_TOKEN, the saved token file), so a user's usual Hub login just works.
    """

    scheme = "hf"

    def __init__(
        self, endpoint: str | None = None, token: str | None = None, *, timeout: float = 10.0
    ) -> None:
        self._endpoint = endpoint
        self._token = token
        self._timeout = timeout

    @classmethod
    def from_settings(
        cls, settings: Mapping[str, Any], environ: Mapping[str, str] | None = None
    ) -> HuggingFaceSource:
        """Build from a shipdeck.toml `[sources.X]` table of kind "hf".

        The token is named, never written in the file: `token_env` (a variable) or `token_file`.
        """
        env = os.environ if environ is None else environ
        token: str | None = None
        if var := settings.get("token_env"):
            token = env.get(var)
            if not token:
                raise AdapterError(f"hf source: token_env {var} is not set")
        elif path := settings.get("token_file"):
            try:
                token = Path(path).expanduser().read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise AdapterError(f"hf source: token_file {path}: {exc.strerror}") from exc
            if not token:
                raise AdapterError(f"hf source: token_file {path} is empty")
        return cls(endpoint=settings.get("endpoint"), token=token)

    # --- port ---------------------------------------------------------------------------------

    def resolve(self, name: str, uri: str) -> ResolvedArtifact:
        ref = _parse(uri)
        with self._translated(ref.label):
            api = self._api()
            info: ModelInfo | DatasetInfo
            if ref.repo_type == "model":  # the Hub scans model repos and says so when asked
                info = api.model_info(
                    ref.repo_id,
                    revision=ref.revision,
                    files_metadata=True,
                    securityStatus=True,
                    timeout=self._timeout,
                )
            else:
                info = api.dataset_info(
                    ref.repo_id, revision=ref.revision, files_metadata=True, timeout=self._timeout
                )
            if info.gated:
                # The Hub lists a gated repo's files to anyone but serves them only to granted
                # tokens: check now, not when a deploy tries to download the weights.
                api.auth_check(ref.repo_id, repo_type=ref.repo_type)
        if not info.sha:
            raise AdapterError(f"hf source: {ref.label}: the Hub returned no commit sha")
        files = tuple(
            ArtifactFile(
                path=s.rfilename,
                size=s.size or 0,
                sha256=s.lfs.sha256 if s.lfs is not None else s.blob_id,
            )
            for s in info.siblings or ()
        )
        last_modified = info.last_modified.isoformat() if info.last_modified else None
        return ResolvedArtifact(
            name=name,
            uri=uri,
            resolved=f"hf://{_REPO_PREFIX[ref.repo_type]}{ref.repo_id}@{info.sha}",
            digest=info.sha,
            files=files,
            meta={
                "repo_id": ref.repo_id,
                "repo_type": ref.repo_type,
                "revision": ref.revision,
                "last_modified": last_modified,
                "hub_scan": getattr(info, "security_repo_status", None),
            },
        )

    def describe(self, artifact: ResolvedArtifact, lines: int = 10) -> list[str]:
        """The head of the model (or dataset) card at the pinned sha, without its YAML header.

        Streams the card and stops reading once enough lines are in: cards can be long.
        """
        from huggingface_hub.errors import RemoteEntryNotFoundError

        ref = _parse(artifact.resolved)
        with self._translated(ref.label):
            try:
                with self._stream(ref, _CARD) as r:
                    return _card_head(r.iter_lines(), lines)
            except RemoteEntryNotFoundError:
                return []

    def fetch(self, artifact: ResolvedArtifact, path: str, into: BinaryIO, max_bytes: int) -> None:
        """Stream one file at the pinned sha (never through the download cache), stopping with
        an error once more than `max_bytes` arrived."""
        ref = _parse(artifact.resolved)
        with self._translated(f"{ref.label}: {path}"), self._stream(ref, path) as r:
            got = 0
            for chunk in r.iter_bytes():
                got += len(chunk)
                if got > max_bytes:
                    raise AdapterError(f"hf source: {ref.label}: {path} is over {max_bytes} bytes")
                into.write(chunk)

    def promote(self, artifact: ResolvedArtifact, destination: str) -> ResolvedArtifact:
        raise AdapterError(
            f"hf source: {artifact.resolved}: promote is not supported "
            "(a Hub commit is immutable: every environment uses the same pinned sha)"
        )

    # --- helpers ------------------------------------------------------------------------------

    @contextmanager
    def _stream(self, ref: _Ref, path: str) -> Iterator[Any]:
        """An open streaming GET of `path` at `ref`, its HTTP status already checked."""
        from huggingface_hub import hf_hub_url
        from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

        url = hf_hub_url(
            ref.repo_id,
            path,
            repo_type=ref.repo_type,
            revision=ref.revision,
            endpoint=self._endpoint,
        )
        headers = build_hf_headers(token=self._token)
        with get_session().stream("GET", url, headers=headers, timeout=self._timeout) as r:
            hf_raise_for_status(r)
            yield r

    def _api(self) -> HfApi:
        from huggingface_hub import HfApi

        return HfApi(endpoint=self._endpoint, token=self._token)

    @contextmanager
    def _translated(self, label: str) -> Iterator[None]:
        """Turn whatever huggingface_hub or its transport raises into one AdapterError line."""
        try:
            yield
        except AdapterError:
            raise
        except Exception as exc:
            raise AdapterError(f"hf source: {label}: {self._redact(self._cause(exc))}") from exc

    def _cause(self, exc: Exception) -> str:
        import httpx2
        from huggingface_hub import constants
        from huggingface_hub.errors import (
            GatedRepoError,
            HfHubHTTPError,
            OfflineModeIsEnabled,
            RepositoryNotFoundError,
            RevisionNotFoundError,
        )

        endpoint = self._endpoint or constants.ENDPOINT
        if isinstance(exc, HfHubHTTPError):
            status = exc.response.status_code
            server = exc.response.headers.get("X-Error-Message") or ""
            if isinstance(exc, RevisionNotFoundError):
                return "revision not found"
            if isinstance(exc, GatedRepoError):
                if status == 401:
                    return "access denied: gated repo, and no token was sent"
                return "access denied: gated repo, and this token has not been granted access"
            if isinstance(exc, RepositoryNotFoundError) and status != 401:
                return "repository not found"
            if status == 401:
                if server == "Invalid credentials in Authorization header":
                    return "access denied: the token was rejected (401)"
                return "access denied or repository not found: no valid token was sent (401)"
            if status == 403:
                return f"access denied (403){': ' + server if server else ''}"
            return f"HTTP {status} from {endpoint}{': ' + server if server else ''}"
        if isinstance(exc, httpx2.TimeoutException):
            return f"endpoint {endpoint} did not answer within {self._timeout:g}s"
        if isinstance(exc, httpx2.TransportError):
            return f"endpoint {endpoint} unreachable: {exc or type(exc).__name__}"
        if isinstance(exc, OfflineModeIsEnabled):
            return "HF_HUB_OFFLINE is set"
        return f"{type(exc).__name__}: {exc}"

    def _redact(self, text: str) -> str:
        """Belt and braces: no cause text may carry the token, whatever a server echoed."""
        from huggingface_hub import get_token

        try:
            ambient = get_token()
        except Exception:  # an OIDC exchange can fail here; the message must still go out
            ambient = None
        first_line = text.splitlines()[0] if text else text
        for secret in (self._token, ambient):
            if secret:
                first_line = first_line.replace(secret, "***")
        return first_line


def _parse(uri: str) -> _Ref:
    from huggingface_hub import parse_hf_uri
    from huggingface_hub.errors import HfUriError

    try:
        parsed = parse_hf_uri(uri)
    except HfUriError as exc:
        raise AdapterError(f"hf source: {uri}: not an hf:// repo URI ({exc.msg.strip()})") from exc
    if parsed.type not in _REPO_PREFIX:
        raise AdapterError(f"hf source: {uri}: only model and dataset repos can be artifacts")
    if parsed.path_in_repo:
        raise AdapterError(f"hf source: {uri}: name a whole repo, not a path inside it")
    return _Ref(parsed.type, parsed.id, parsed.revision or "main")


def _card_head(card: Iterable[str], lines: int) -> list[str]:
    """First `lines` non-empty lines after the YAML front matter and one-line HTML comments."""
    head: list[str] = []
    state = "start"  # -> "yaml" while inside a leading front matter block -> "body"
    for raw in card:
        line = raw.rstrip()
        if state != "body" and line == "---":
            state = "yaml" if state == "start" else "body"
            continue
        if state == "yaml" or not line.strip():
            continue
        state = "body"
        if line.lstrip().startswith("<!--") and line.endswith("-->"):
            continue
        head.append(line)
        if len(head) >= lines:
            break
    return head
