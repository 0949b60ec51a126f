"""diff_artifacts and summarize: pure functions, checked on examples and on generated artifacts."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shipdeck.core.domain.artifact_diff import diff_artifacts, format_size, signed_size, summarize
from shipdeck.core.ports import ArtifactDiff, ArtifactFile, ResolvedArtifact


def _art(*files: ArtifactFile, name: str = "model") -> ResolvedArtifact:
    return ResolvedArtifact(name=name, uri="x", resolved="x", digest="d", files=files)


def test_new_and_dropped_artifacts() -> None:
    art = _art(ArtifactFile("a.bin", 1_200_000_000, "h1"), ArtifactFile("b.json", 10, None))

    added = diff_artifacts(None, art)
    assert added.added == ("a.bin", "b.json")
    assert added.size_delta == 1_200_000_010
    assert summarize(added) == "model changed: 2 files (2 added), +1.2 GB"

    dropped = diff_artifacts(art, None)
    assert dropped.removed == ("a.bin", "b.json")
    assert summarize(dropped) == "model changed: 2 files (2 removed), -1.2 GB"

    with pytest.raises(ValueError):
        diff_artifacts(None, None)


def test_hash_or_size_change_counts_unknown_hashes_by_size() -> None:
    old = _art(
        ArtifactFile("same-hash.bin", 5, "h"),
        ArtifactFile("new-hash.bin", 5, "h"),
        ArtifactFile("no-hash.bin", 5, None),
        ArtifactFile("hash-appeared.bin", 5, None),
    )
    new = _art(
        ArtifactFile("same-hash.bin", 5, "h"),
        ArtifactFile("new-hash.bin", 5, "h2"),
        ArtifactFile("no-hash.bin", 5, None),
        ArtifactFile("hash-appeared.bin", 5, "h"),
    )
    diff = diff_artifacts(old, new)
    assert diff.changed == ("hash-appeared.bin", "new-hash.bin")
    assert summarize(diff) == "model changed: 2 files (2 changed), same size"
    assert summarize(diff_artifacts(new, new)) == "model unchanged"


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0 B"),
        (999, "999 B"),
        (1000, "1 kB"),
        (1500, "1.5 kB"),
        (99_940, "99.9 kB"),
        (123_456, "123 kB"),
        (999_600, "1 MB"),
        (1_234_567_890, "1.2 GB"),
        (-340_000_000, "-340 MB"),
        (5 * 10**18, "5000 PB"),
    ],
)
def test_format_size(size: int, text: str) -> None:
    assert format_size(size) == text


def test_signed_size() -> None:
    assert signed_size(1_200_000_000) == "+1.2 GB"
    assert signed_size(-1500) == "-1.5 kB"
    assert signed_size(0) == "+0 B"


Spec = dict[str, tuple[int, str | None]]

_files = st.dictionaries(
    st.sampled_from(["a", "b", "c", "d", "e"]),
    st.tuples(st.integers(0, 10**12), st.sampled_from([None, "h1", "h2"])),
)


@given(_files, _files)
def test_diff_properties(old_spec: Spec, new_spec: Spec) -> None:
    old = _art(*(ArtifactFile(p, s, h) for p, (s, h) in old_spec.items()))
    new = _art(*(ArtifactFile(p, s, h) for p, (s, h) in new_spec.items()))
    diff = diff_artifacts(old, new)
    back = diff_artifacts(new, old)

    assert isinstance(diff, ArtifactDiff)
    assert set(diff.added) == new_spec.keys() - old_spec.keys()
    assert set(diff.removed) == old_spec.keys() - new_spec.keys()
    assert (diff.added, diff.removed, diff.changed) == (back.removed, back.added, back.changed)
    assert diff.size_delta == new.total_size() - old.total_size() == -back.size_delta
    assert set(diff.changed) == {
        p for p in old_spec.keys() & new_spec.keys() if old_spec[p] != new_spec[p]
    }
    assert (summarize(diff) == "model unchanged") == (
        diff.changed_count == 0 and diff.size_delta == 0
    )
