"""The git port over GitPython, driving `git log` / `git rev-list` with format strings, and
libgit2 (pygit2) in process for commit distances.

`Repo.iter_commits` builds an object per commit and is about ten times slower at 1k commits, so the
history is read as one formatted text stream instead.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from shipdeck.core.errors import AdapterError, NotFoundError, PermissionDenied
from shipdeck.core.ports import CommitInfo

if TYPE_CHECKING:
    import git

_FIELD = "\x1f"
_FORMAT = _FIELD.join(("%H", "%an", "%aI", "%s"))


def _dubious(path: Path, stderr: str) -> PermissionDenied:
    """git refuses a repository another user owns: its own words, on one line, with its fix
    (exit 4), instead of the 'unknown revision' its silence would otherwise turn into."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    reason = lines[0].removeprefix("fatal: ")
    fix = next((ln for ln in lines if ln.startswith("git config")), None)
    fix = fix or f"git config --global --add safe.directory {path}"
    return PermissionDenied(f"not permitted: git {path}: {reason}; fix: {fix}")


class GitRepositories:
    """Implements core.ports.GitPort for repositories on local disk."""

    def __init__(self) -> None:
        self._repos: dict[Path, git.Repo] = {}

    def _repo(self, path: Path) -> git.Repo:
        # Imported here: GitPython costs 50-100 ms to import, and a warm `status` (every commit
        # distance cached) never needs it (bench/status_json.py).
        import git

        path = path.resolve()
        repo = self._repos.get(path)
        if repo is None:
            try:
                repo = git.Repo(path)
            except git.NoSuchPathError as exc:
                raise AdapterError(f"git {path}: no such folder") from exc
            except git.InvalidGitRepositoryError as exc:
                raise AdapterError(f"git {path}: not a git repository") from exc
            self._repos[path] = repo
        return repo

    def _git(self, path: Path, *args: str) -> str:
        import git

        try:
            return str(self._repo(path).git.execute(["git", *args]))
        except git.GitCommandError as exc:
            stderr = (exc.stderr or "").strip().removeprefix("stderr: ").strip(" '")
            if "dubious ownership" in stderr:
                raise _dubious(path, stderr) from exc
            cause = stderr.splitlines()
            detail = cause[-1].strip(" '") if cause else str(exc.status)
            raise AdapterError(f"git {path}: {' '.join(args[:2])}: {detail}") from exc

    def resolve(self, repo: Path, ref: str) -> str:
        """A ref the repository does not have is the caller's mistake (exit 2), not a failure."""
        if ref.startswith("-"):
            raise NotFoundError(f"git {repo}: '{ref}' is not a revision")
        self._repo(repo)  # a missing repository stays an adapter failure
        try:
            return self._git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").strip()
        except AdapterError as exc:
            raise NotFoundError(f"git {repo}: unknown revision '{ref}'") from exc

    def _range(self, old: str | None, new: str) -> list[str]:
        for ref in (old, new):
            if ref is not None and ref.startswith("-"):
                raise AdapterError(f"git: '{ref}' is not a revision")
        return [new] if old is None else [f"{old}..{new}"]

    def commits_between(self, repo: Path, old: str | None, new: str) -> list[CommitInfo]:
        out = self._git(repo, "log", f"--format={_FORMAT}", *self._range(old, new), "--")
        commits = []
        for line in out.splitlines():
            sha, author, date, subject = line.split(_FIELD, 3)
            commits.append(CommitInfo(sha, author, datetime.fromisoformat(date), subject))
        return commits

    def count_pairs(
        self, repo: Path, pairs: Collection[tuple[str, str]]
    ) -> dict[tuple[str, str], int]:
        """Commits in `new` but not in `old`, per pair, with libgit2 in process: a git process per
        repository was most of a cold status at a thousand apps (bench/status_json.py). Where
        libgit2 will not open the repository (another user's, a format it does not read), git
        itself counts: git stays the judge of what may be read, and its refusal reaches the user."""
        tips = sorted({sha for pair in pairs for sha in pair})
        for ref in tips:
            if ref.startswith("-"):
                raise AdapterError(f"git: '{ref}' is not a revision")
        if not tips:
            return {}
        counted = _count_in_process(repo, pairs)
        return counted if counted is not None else self._count_with_git(repo, tips, pairs)

    def _count_with_git(
        self, repo: Path, tips: list[str], pairs: Collection[tuple[str, str]]
    ) -> dict[tuple[str, str], int]:
        """One `git rev-list --parents` over every commit named, then set arithmetic per pair."""
        out = self._git(repo, "rev-list", "--parents", "--ignore-missing", *tips, "--")
        parents: dict[str, list[str]] = {}
        for line in out.splitlines():
            sha, *rest = line.split()
            parents[sha] = rest
        counts: dict[tuple[str, str], int] = {}
        for old, new in pairs:
            if old in parents and new in parents:
                counts[(old, new)] = len(_ancestry(parents, new) - _ancestry(parents, old))
        return counts


def _count_in_process(
    repo: Path, pairs: Collection[tuple[str, str]]
) -> dict[tuple[str, str], int] | None:
    """libgit2's ahead/behind per pair; None when libgit2 cannot open the repository. A commit
    it does not have (history rewritten) is left out, as `rev-list --ignore-missing` leaves it."""
    import pygit2

    try:
        opened = pygit2.Repository(str(repo), pygit2.enums.RepositoryOpenFlag.NO_SEARCH)
    except pygit2.GitError:
        return None
    counts: dict[tuple[str, str], int] = {}
    try:
        for old, new in pairs:
            try:
                counts[(old, new)] = opened.ahead_behind(new, old)[0]
            except (pygit2.GitError, KeyError, ValueError):
                continue
    finally:
        opened.free()
    return counts


def _ancestry(parents: dict[str, list[str]], tip: str) -> set[str]:
    """`tip` and every commit reachable from it in the walked graph."""
    seen = {tip}
    stack = [tip]
    while stack:
        for parent in parents.get(stack.pop(), ()):
            if parent not in seen:
                seen.add(parent)
                stack.append(parent)
    return seen
