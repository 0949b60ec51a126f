"""Release versions: which strings a workspace accepts, and which of two versions is higher.

Pure. `[releases] versions` in shipdeck.toml picks the rule (VersionScheme); the default accepts
PEP 440 (packaging.version) or SemVer 2.0.0. "Latest" everywhere (status, plan defaults, the TUI)
means the highest version under this order, never the last one recorded: a hotfix 1.3.2 recorded
after 1.4.0 does not become the release a plain `plan create` ships.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache, total_ordering
from typing import Literal, get_args

from packaging.version import InvalidVersion, Version

VersionScheme = Literal["pep440-or-semver", "pep440", "semver", "any"]
SCHEMES: tuple[VersionScheme, ...] = get_args(VersionScheme)
DEFAULT_SCHEME: VersionScheme = "pep440-or-semver"

# semver.org's recommended expression (SemVer 2.0.0), without a leading "v".
_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)
_EXAMPLES = {
    "pep440-or-semver": "1.4.0, 1.4.0rc1 or 1.4.0-rc.1",
    "pep440": "1.4.0, 1.4.0rc1 or 2024.6.1",
    "semver": "1.4.0 or 1.4.0-rc.1",
}
_NAMES = {"pep440-or-semver": "a PEP 440 or SemVer", "pep440": "a PEP 440", "semver": "a SemVer"}


def _pep440(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


SemverKey = tuple[tuple[int, int, int], tuple[tuple[int, int | str], ...]]


def _semver(text: str) -> SemverKey | None:
    """(major, minor, patch) and the pre-release identifiers in SemVer precedence (numeric
    identifiers sort before alphanumeric ones); build metadata is ignored, as SemVer says."""
    m = _SEMVER.match(text)
    if m is None:
        return None
    pre = tuple(
        (0, int(p)) if p.isdigit() else (1, p)
        for p in (m.group(4).split(".") if m.group(4) else ())
    )
    return (int(m.group(1)), int(m.group(2)), int(m.group(3))), pre


@lru_cache(maxsize=4096)
def _parse(text: str) -> tuple[Version | None, SemverKey | None]:
    """A version string parsed once per process, however many keys and comparisons name it:
    status orders every app's releases, and two parses per comparison were a fifth of it at a
    thousand apps (bench/status_json.py)."""
    return _pep440(text), _semver(text)


def version_problem(scheme: VersionScheme, version: str) -> str | None:
    """Why `version` is refused under `scheme` (one sentence), or None when it is accepted."""
    if not version or "@" in version or any(c.isspace() or not c.isprintable() for c in version):
        return f"version '{version}': must be non-empty, without spaces or '@'"
    if scheme == "any":
        return None
    ok = {
        "pep440": _pep440(version) is not None,
        "semver": _semver(version) is not None,
        "pep440-or-semver": _pep440(version) is not None or _semver(version) is not None,
    }[scheme]
    if ok:
        return None
    return (
        f"version '{version}': not {_NAMES[scheme]} version, e.g. {_EXAMPLES[scheme]} "
        f'(shipdeck.toml [releases] versions = "{scheme}")'
    )


@total_ordering
@dataclass(frozen=True)
class VersionOrder:
    """A sort key: PEP 440 order where both sides parse as PEP 440, SemVer precedence where both
    are SemVer, release numbers then "final above pre-release" across the two; strings neither
    rule parses (scheme "any") sort below every parsed version, by when they were recorded."""

    version: str
    recorded: int = 0  # the release's id: the tie-breaker, and the order of unparsed versions

    @property
    def _parsed(self) -> tuple[Version | None, SemverKey | None]:
        return _parse(self.version)

    def _release(self) -> tuple[int, ...] | None:
        pep, sem = self._parsed
        if pep is not None:
            return pep.release
        return sem[0] if sem is not None else None

    def _compare(self, other: VersionOrder) -> int:
        (pep_a, sem_a), (pep_b, sem_b) = self._parsed, other._parsed
        if pep_a is not None and pep_b is not None:
            return (pep_a > pep_b) - (pep_a < pep_b)
        if sem_a is not None and sem_b is not None:
            return _cmp_semver(sem_a, sem_b)
        rel_a, rel_b = self._release(), other._release()
        if rel_a is None or rel_b is None:
            return (rel_a is not None) - (rel_b is not None)
        width = max(len(rel_a), len(rel_b))
        pad_a, pad_b = rel_a + (0,) * (width - len(rel_a)), rel_b + (0,) * (width - len(rel_b))
        if pad_a != pad_b:
            return (pad_a > pad_b) - (pad_a < pad_b)
        return (not self._pre()) - (not other._pre())

    def _pre(self) -> bool:
        pep, sem = self._parsed
        if pep is not None:
            return pep.is_prerelease
        return bool(sem and sem[1])

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, VersionOrder):
            return NotImplemented
        c = self._compare(other)
        return c < 0 if c else self.recorded < other.recorded


def _cmp_semver(a: SemverKey, b: SemverKey) -> int:
    if a[0] != b[0]:
        return (a[0] > b[0]) - (a[0] < b[0])
    if not a[1] or not b[1]:
        return (not a[1]) - (not b[1])  # a release ranks above its pre-releases
    for x, y in zip(a[1], b[1], strict=False):
        if x != y:
            return 1 if x > y else -1  # same kind when the first fields are equal
    return (len(a[1]) > len(b[1])) - (len(a[1]) < len(b[1]))


def compare(old: str, new: str) -> int:
    """-1 when `new` is lower than `old` (a downgrade), 0 when neither is higher, 1 otherwise."""
    return VersionOrder(new)._compare(VersionOrder(old))


def is_downgrade(old: str | None, new: str) -> bool:
    """True when moving from `old` to `new` goes to a lower version."""
    return old is not None and compare(old, new) < 0
