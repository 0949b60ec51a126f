"""A tiny Hugging Face Hub on loopback: real HTTP, the Hub's response shapes, in-memory repos.

It mirrors what huggingface_hub 2.4.0 reads from the Hub in these functions (shapes checked
against that version's source):

- `HfApi.model_info` / `HfApi.dataset_info` (`GET /api/{models,datasets}/{repo_id}` and
  `.../revision/{quoted rev}`, `?blobs=true` for files_metadata): `id`, `sha`, `lastModified`,
  `private`, `gated`, and `siblings` with `rfilename`, plus `size`, `blobId` and
  `lfs{sha256,size,pointerSize}` only when blobs are asked for, as the Hub does.
- `HfApi.model_info(securityStatus=True)` (`?securityStatus=True`): `securityRepoStatus` with
  `scansDone` and `filesWithIssues` (`path`, `level`: unscanned, safe, queued, error, caution,
  suspicious, unsafe), as the Hub's own scanners report a model repo; set a repo's `scan`.
- `HfApi.auth_check` (`GET /api/{type}/{repo_id}/auth-check`).
- `get_hf_file_metadata` / `hf_hub_download` (`HEAD`/`GET /{repo_id}/resolve/{rev}/{path}`,
  datasets under `/datasets/`): `X-Repo-Commit`, `ETag` (git blob id, or the LFS sha256),
  `Content-Length`; no redirect to a CDN and no Xet headers, so downloads take the plain path.
- `hf_raise_for_status` (utils/_http.py): errors carry `X-Error-Code` (`RepoNotFound`,
  `RevisionNotFound`, `EntryNotFound`, `GatedRepo`) and `X-Error-Message`, with the Hub's status
  codes: an anonymous caller gets 401 for private and missing repos alike, an authenticated one
  404; a gated repo lists its files to anyone but serves them (and auth-check) only to granted
  tokens: 401 without a token, 403 with one; an unknown token gets 401 "Invalid credentials in
  Authorization header" on every route.

Every request's method, path and headers are recorded so tests can check where a token went.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

# What a repo's .gitattributes sends to LFS on the Hub by default (a subset is enough here).
LFS_SUFFIXES = frozenset({".bin", ".safetensors", ".gguf", ".onnx", ".pt", ".pth", ".parquet"})
_TYPE_PLURALS = {"models": "model", "datasets": "dataset"}


def git_blob_id(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def lfs_pointer(content: bytes) -> bytes:
    oid = hashlib.sha256(content).hexdigest()
    return (
        f"version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {len(content)}\n"
    ).encode()


def is_lfs(path: str) -> bool:
    return PurePosixPath(path).suffix in LFS_SUFFIXES


@dataclass(frozen=True)
class Commit:
    sha: str
    files: Mapping[str, bytes]
    date: datetime


@dataclass
class FakeRepo:
    repo_id: str
    repo_type: str = "model"
    private: bool = False
    gated: bool = False
    granted: set[str] = field(default_factory=set)
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    scan: dict[str, str] = field(default_factory=dict)  # path -> level the Hub's scan gives it
    scans_done: bool = True

    def commit(
        self,
        files: Mapping[str, bytes | str],
        *,
        branch: str = "main",
        delete: tuple[str, ...] = (),
        message: str = "update",
    ) -> str:
        """Add or replace `files` (and drop `delete`) on top of `branch`; return the new sha."""
        parent = self.branches.get(branch)
        tree = dict(self.commits[parent].files) if parent else {}
        for path in delete:
            tree.pop(path)
        tree.update({p: c.encode() if isinstance(c, str) else c for p, c in files.items()})
        h = hashlib.sha1(f"{parent}\0{message}\0{len(self.commits)}".encode())
        for path in sorted(tree):
            h.update(path.encode() + b"\0" + git_blob_id(tree[path]).encode())
        sha = h.hexdigest()
        self.commits[sha] = Commit(sha, tree, datetime.now(UTC))
        self.branches[branch] = sha
        return sha

    def tag(self, name: str, sha: str) -> None:
        self.tags[name] = sha

    def grant(self, token: str) -> None:
        self.granted.add(token)

    def lookup(self, revision: str) -> Commit | None:
        sha = self.branches.get(revision) or self.tags.get(revision)
        if sha is None and revision in self.commits:
            sha = revision
        return self.commits.get(sha) if sha else None


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server saw it; header names lower-cased."""

    method: str
    path: str
    headers: Mapping[str, str]


@dataclass(frozen=True)
class _Reply:
    status: int
    headers: Mapping[str, str]
    body: bytes = b""


class FakeHub:
    """Start with `with FakeHub() as hub:`; `hub.endpoint` is what HfApi(endpoint=...) takes."""

    def __init__(self) -> None:
        self.repos: dict[tuple[str, str], FakeRepo] = {}
        self.tokens: set[str] = set()
        self.requests: list[RecordedRequest] = []
        self.outage: tuple[int, str] | None = None  # (status, X-Error-Message) for every route
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- data ---------------------------------------------------------------------------------

    def add_token(self, token: str) -> str:
        self.tokens.add(token)
        return token

    def add_repo(
        self, repo_id: str, *, repo_type: str = "model", private: bool = False, gated: bool = False
    ) -> FakeRepo:
        repo = FakeRepo(repo_id, repo_type, private=private, gated=gated)
        self.repos[(repo_type, repo_id)] = repo
        return repo

    def recorded(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self.requests)

    # --- server -------------------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        assert self._server is not None, "FakeHub is not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakeHub:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                self._serve(head=False)

            def do_HEAD(self) -> None:
                self._serve(head=True)

            def _serve(self, head: bool) -> None:
                headers = {k.lower(): v for k, v in self.headers.items()}
                with hub._lock:
                    hub.requests.append(RecordedRequest(self.command, self.path, headers))
                reply = hub.handle(self.path, headers)
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                if not head:
                    self.wfile.write(reply.body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None and self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    # --- routing ------------------------------------------------------------------------------

    def handle(self, raw_path: str, headers: Mapping[str, str]) -> _Reply:
        split = urlsplit(raw_path)
        query = parse_qs(split.query)
        segments = [unquote(s) for s in split.path.strip("/").split("/")]
        if self.outage is not None:
            return _error(self.outage[0], None, self.outage[1])
        token = _bearer(headers)
        if token is not None and token not in self.tokens:
            return _error(401, None, "Invalid credentials in Authorization header")
        if segments[:1] == ["api"] and len(segments) >= 4 and segments[1] in _TYPE_PLURALS:
            repo_type = _TYPE_PLURALS[segments[1]]
            repo_id = "/".join(segments[2:4])
            rest = segments[4:]
            if rest == ["auth-check"]:
                return self._auth_check(repo_type, repo_id, token)
            if not rest or (len(rest) == 2 and rest[0] == "revision"):
                revision = rest[1] if rest else "main"
                blobs = query.get("blobs", ["false"])[0].lower() == "true"
                security = query.get("securityStatus", ["false"])[0].lower() == "true"
                return self._info(repo_type, repo_id, revision, token, blobs, security)
        repo_type = "model"
        if segments[:1] == ["datasets"]:
            repo_type, segments = "dataset", segments[1:]
        if len(segments) >= 5 and segments[2] == "resolve":
            repo_id = "/".join(segments[:2])
            return self._resolve(repo_type, repo_id, segments[3], "/".join(segments[4:]), token)
        return _error(404, None, "Not Found")

    def _visible(self, repo_type: str, repo_id: str, token: str | None) -> FakeRepo | _Reply:
        repo = self.repos.get((repo_type, repo_id))
        if repo is None or (repo.private and token not in repo.granted):
            if token is None:
                return _error(401, "RepoNotFound", "Invalid username or password.")
            return _error(404, "RepoNotFound", "Repository not found")
        return repo

    def _gate(self, repo: FakeRepo, token: str | None) -> _Reply | None:
        if not repo.gated or token in repo.granted:
            return None
        if token is None:
            msg = f"Access to model {repo.repo_id} is restricted. You must have access to it and be"
            return _error(401, "GatedRepo", msg + " authenticated to access it. Please log in.")
        msg = (
            f"Access to model {repo.repo_id} is restricted and you are not in the authorized list."
        )
        return _error(403, "GatedRepo", msg)

    def _auth_check(self, repo_type: str, repo_id: str, token: str | None) -> _Reply:
        repo = self._visible(repo_type, repo_id, token)
        if isinstance(repo, _Reply):
            return repo
        return self._gate(repo, token) or _json({})

    def _info(
        self,
        repo_type: str,
        repo_id: str,
        revision: str,
        token: str | None,
        blobs: bool,
        security: bool = False,
    ) -> _Reply:
        repo = self._visible(repo_type, repo_id, token)
        if isinstance(repo, _Reply):
            return repo
        commit = repo.lookup(revision)
        if commit is None:
            return _error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        extra: dict[str, Any] = {}
        if security and repo_type == "model":
            extra["securityRepoStatus"] = {
                "scansDone": repo.scans_done,
                "filesWithIssues": [
                    {"path": p, "level": level}
                    for p, level in sorted(repo.scan.items())
                    if level != "safe" and p in commit.files
                ],
            }
        return _json(
            {
                **extra,
                "_id": hashlib.md5(repo_id.encode()).hexdigest()[:24],
                "id": repo_id,
                "author": repo_id.split("/")[0],
                "sha": commit.sha,
                "lastModified": commit.date.isoformat().replace("+00:00", "Z"),
                "private": repo.private,
                "gated": "manual" if repo.gated else False,
                "disabled": False,
                "tags": [],
                "siblings": [_sibling(p, c, blobs) for p, c in sorted(commit.files.items())],
            }
        )

    def _resolve(
        self, repo_type: str, repo_id: str, revision: str, path: str, token: str | None
    ) -> _Reply:
        repo = self._visible(repo_type, repo_id, token)
        if isinstance(repo, _Reply):
            return repo
        commit = repo.lookup(revision)
        if commit is None:
            return _error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        denied = self._gate(repo, token)
        if denied is not None:
            return denied
        content = commit.files.get(path)
        if content is None:
            return _error(404, "EntryNotFound", f'{path} does not exist on "{revision}"')
        etag = hashlib.sha256(content).hexdigest() if is_lfs(path) else git_blob_id(content)
        return _Reply(
            200,
            {
                "Content-Type": "application/octet-stream",
                "X-Repo-Commit": commit.sha,
                "ETag": f'"{etag}"',
                "Accept-Ranges": "bytes",
            },
            content,
        )


def _bearer(headers: Mapping[str, str]) -> str | None:
    value = headers.get("authorization")
    if value is None or not value.startswith("Bearer "):
        return None
    return value.removeprefix("Bearer ")


def _sibling(path: str, content: bytes, blobs: bool) -> dict[str, Any]:
    if not blobs:
        return {"rfilename": path}
    if not is_lfs(path):
        return {"rfilename": path, "size": len(content), "blobId": git_blob_id(content)}
    pointer = lfs_pointer(content)
    return {
        "rfilename": path,
        "size": len(content),
        "blobId": git_blob_id(pointer),
        "lfs": {
            "sha256": hashlib.sha256(content).hexdigest(),
            "size": len(content),
            "pointerSize": len(pointer),
        },
    }


def _json(data: Any) -> _Reply:
    return _Reply(200, {"Content-Type": "application/json"}, json.dumps(data).encode())


def _error(status: int, code: str | None, message: str) -> _Reply:
    headers = {"Content-Type": "application/json", "X-Error-Message": message}
    if code is not None:
        headers["X-Error-Code"] = code
    return _Reply(status, headers, json.dumps({"error": message}).encode())
