"""The demo's git repositories: real history, with the demo users as authors and dates walked
through the past weeks."""

from __future__ import annotations

import os
import subprocess
from datetime import datetime, timedelta
from pathlib import Path

from shipdeck.core.demo.users import DEMO_USERS


def _git(repo: Path, *args: str, when: datetime | None = None, author: str = "alice") -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": DEMO_USERS.get(author, author),
        "GIT_AUTHOR_EMAIL": f"{author}@example.com",
        "GIT_COMMITTER_NAME": DEMO_USERS.get(author, author),
        "GIT_COMMITTER_EMAIL": f"{author}@example.com",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    if when is not None:
        stamp = when.strftime("%Y-%m-%dT%H:%M:%S+0000")
        env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = stamp
    done = subprocess.run(
        ["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


def make_repo(path: Path, subjects: tuple[str, ...], start: datetime, step: timedelta) -> list[str]:
    """A real repository whose commits carry `subjects`, dated from `start`; returns their shas."""
    path.mkdir(parents=True, exist_ok=True)
    _git(path, "init", "-q", "-b", "main")
    authors = ["alice", "dave", "carol", "frank"]
    shas = []
    for i, subject in enumerate(subjects):
        (path / "CHANGELOG.md").open("a").write(f"- {subject}\n")
        (path / f"src_{i % 3}.txt").write_text(f"{subject}\n")
        _git(path, "add", "-A")
        _git(
            path,
            "commit",
            "-q",
            "-m",
            subject,
            when=start + step * i,
            author=authors[i % len(authors)],
        )
        shas.append(_git(path, "rev-parse", "HEAD"))
    return shas
