"""file:// artifacts: a real directory on disk, pinned by per-file SHA-256, and refused when a
symlink leads out of it or the URI carries a NUL byte (exit 4 through the CLI, naming it)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from shipdeck.adapters.file_source import FileSource
from shipdeck.core.domain.artifact_diff import diff_artifacts, summarize
from shipdeck.core.errors import AdapterError, UnsafeFile
from tests.support.cli import shipdeck
from tests.support.workspace import BASIC_TOML, FixedClock, three_apps


def model_dir(root: Path, weights: bytes, extra: dict[str, bytes] | None = None) -> Path:
    root.mkdir(parents=True)
    (root / "config.json").write_bytes(b'{"layers": 2}')
    (root / "weights").mkdir()
    (root / "weights" / "model.safetensors").write_bytes(weights)
    for name, data in (extra or {}).items():
        (root / name).write_bytes(data)
    return root


def test_resolve_lists_every_file_with_size_and_sha256(tmp_path: Path) -> None:
    model_dir(tmp_path / "m", b"w" * 3000)
    art = FileSource(tmp_path).resolve("model", "file://m")
    assert [(f.path, f.size) for f in art.files] == [
        ("config.json", 13),
        ("weights/model.safetensors", 3000),
    ]
    assert art.files[1].sha256 == hashlib.sha256(b"w" * 3000).hexdigest()
    assert art.digest.startswith("sha256:")
    assert art.resolved == f"file://m?sha256={art.digest}"
    # The same content resolves to the same pin, wherever it is named from.
    assert FileSource(Path("/")).resolve("model", f"file://{tmp_path / 'm'}").digest == art.digest


def test_a_changed_directory_diffs_by_file_and_no_longer_matches_its_pin(tmp_path: Path) -> None:
    model_dir(tmp_path / "v1", b"w" * 3000)
    model_dir(tmp_path / "v2", b"x" * 5000, {"tokenizer.json": b"{}"})
    src = FileSource(tmp_path)
    old, new = src.resolve("model", "file://v1"), src.resolve("model", "file://v2")
    assert summarize(diff_artifacts(old, new)) == (
        "model changed: 2 files (1 added, 1 changed), +2 kB"
    )
    assert src.resolve("model", old.resolved).digest == old.digest  # re-resolving a pin
    (tmp_path / "v1" / "config.json").write_bytes(b'{"layers": 3}')
    with pytest.raises(AdapterError, match="no longer matches its pin"):
        src.resolve("model", old.resolved)


def test_symlinks_inside_the_directory_are_read_as_their_target(tmp_path: Path) -> None:
    root = model_dir(tmp_path / "m", b"w" * 10)
    (root / "alias.safetensors").symlink_to("weights/model.safetensors")
    art = FileSource(tmp_path).resolve("model", "file://m")
    sizes = {f.path: f.size for f in art.files}
    assert sizes["alias.safetensors"] == 10


@pytest.mark.parametrize("kind", ["file", "directory"])
def test_a_symlink_out_of_the_directory_is_refused(tmp_path: Path, kind: str) -> None:
    root = model_dir(tmp_path / "m", b"w")
    secret = tmp_path / "outside"
    secret.mkdir()
    (secret / "id_rsa").write_text("private")
    link = root / "weights" / "leak"
    link.symlink_to(secret / "id_rsa" if kind == "file" else secret)
    with pytest.raises(UnsafeFile, match=r"artifact model: weights/leak") as exc:
        FileSource(tmp_path).resolve("model", "file://m")
    assert exc.value.exit_code == 4
    assert "private" not in exc.value.message


def test_a_fifo_is_refused_instead_of_blocking(tmp_path: Path) -> None:
    root = model_dir(tmp_path / "m", b"w")
    os.mkfifo(root / "pipe")
    with pytest.raises(UnsafeFile, match="artifact model: pipe is not a regular file"):
        FileSource(tmp_path).resolve("model", "file://m")


def test_a_nul_byte_or_a_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(UnsafeFile, match="artifact model: file:// path contains a NUL"):
        FileSource(tmp_path).resolve("model", "file://m\x00/../../etc")
    with pytest.raises(AdapterError, match=r"artifact model: .*nope does not exist"):
        FileSource(tmp_path).resolve("model", "file://nope")


def test_promote_copies_exactly_the_pinned_files(tmp_path: Path) -> None:
    model_dir(tmp_path / "m", b"w" * 100)
    src = FileSource(tmp_path)
    pinned = src.resolve("model", "file://m")
    copy = src.promote(pinned, "file://prod/m")
    assert copy.digest == pinned.digest and (tmp_path / "prod" / "m" / "config.json").exists()
    with pytest.raises(AdapterError, match="already exists"):
        src.promote(pinned, "file://prod/m")


def test_release_create_pins_a_model_dir_and_refuses_a_symlink_attack(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    ws = three_apps(root, f"sqlite:///{tmp_path / 'state.db'}", FixedClock(), BASIC_TOML)
    try:
        model_dir(root / "models" / "v1", b"w" * 2000)
        model_dir(root / "models" / "v2", b"w" * 4000)
        env = ws.env()
        for version, folder in (("1.0.0", "v1"), ("1.1.0", "v2")):
            r = shipdeck("release", "create", "model-server", version,
                         "--artifact", f"model=file://models/{folder}", env=env)  # fmt: skip
            assert r.code == 0, r.err
        diff = shipdeck("release", "diff", "model-server", "1.0.0", "1.1.0", env=env)
        assert "  model changed: 1 file (1 changed), +2 kB" in diff.out.splitlines()
        (root / "models" / "v3").mkdir()
        (root / "models" / "v3" / "weights").symlink_to("/etc/passwd")
        bad = shipdeck("release", "create", "model-server", "1.2.0",
                       "--artifact", "model=file://models/v3", env=env)  # fmt: skip
        assert bad.code == 4, bad.err
        assert bad.err_lines == [
            "shipdeck: error: artifact model: weights is a symlink out of "
            f"{(root / 'models' / 'v3').resolve()} (to /etc/passwd): refused"
        ]
    finally:
        ws.close()
