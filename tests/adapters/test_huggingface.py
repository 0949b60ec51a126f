"""HuggingFaceSource against the fake Hub over real HTTP on loopback."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from huggingface_hub import constants, hf_hub_download

from shipdeck.adapters.huggingface import HuggingFaceSource
from shipdeck.core.domain.artifact_diff import diff_artifacts, summarize
from shipdeck.core.errors import AdapterError
from tests.support.fake_hub import FakeHub, git_blob_id
from tests.support.moto_server import free_port

TOKEN = "hf_test_3f9c2a7d1b"
CARD = """---
license: apache-2.0
tags: [chat]
---

# Chat model v1
<!-- Provide a quick summary of what the model is/does. -->

A small model for the support chat.

## Uses
Answering tickets.
"""


@pytest.fixture(autouse=True)
def no_ambient_token(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Keep a developer's own Hub login out of these tests; returns where the token file goes."""
    for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    token_path = tmp_path / "hf-home" / "token"
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(token_path))
    return token_path


@pytest.fixture
def hub() -> Iterator[FakeHub]:
    with FakeHub() as hub:
        hub.add_token(TOKEN)
        yield hub


@pytest.fixture
def source(hub: FakeHub) -> HuggingFaceSource:
    return HuggingFaceSource(endpoint=hub.endpoint, token=TOKEN)


def _error(source: HuggingFaceSource, uri: str) -> str:
    with pytest.raises(AdapterError) as info:
        source.resolve("model", uri)
    return info.value.message


def test_branch_resolves_to_its_head_with_sizes_and_lfs_sha256(
    hub: FakeHub, source: HuggingFaceSource
) -> None:
    weights = b"\x01\x02" * 3000
    config = b'{"hidden_size": 64}'
    repo = hub.add_repo("acme/chat")
    sha = repo.commit({"README.md": CARD, "config.json": config, "model.safetensors": weights})

    art = source.resolve("model", "hf://acme/chat")

    assert art.name == "model"
    assert art.uri == "hf://acme/chat"
    assert art.resolved == f"hf://acme/chat@{sha}"
    assert art.digest == sha
    files = {f.path: f for f in art.files}
    assert set(files) == {"README.md", "config.json", "model.safetensors"}
    assert files["model.safetensors"].size == 6000
    assert files["model.safetensors"].sha256 == hashlib.sha256(weights).hexdigest()
    assert files["config.json"].size == len(config)
    assert files["config.json"].sha256 == git_blob_id(config)
    assert art.total_size() == 6000 + len(config) + len(CARD.encode())
    assert art.meta["repo_id"] == "acme/chat"
    assert art.meta["revision"] == "main"


def test_tag_and_sha_stay_pinned_while_the_branch_moves(
    hub: FakeHub, source: HuggingFaceSource
) -> None:
    repo = hub.add_repo("acme/chat")
    first = repo.commit({"model.safetensors": b"v1"})
    repo.tag("v1.0", first)
    second = repo.commit({"model.safetensors": b"v2 weights"})
    assert first != second

    assert source.resolve("m", "hf://acme/chat@main").digest == second
    assert source.resolve("m", "hf://acme/chat@v1.0").digest == first
    by_sha = source.resolve("m", f"hf://acme/chat@{first}")
    assert by_sha.resolved == f"hf://acme/chat@{first}"
    assert by_sha.files[0].size == 2
    # A resolved URI resolves to itself, so a release can be re-checked from its manifest.
    assert source.resolve("m", by_sha.resolved).resolved == by_sha.resolved


def test_dataset_repo_resolves_with_its_prefix(hub: FakeHub, source: HuggingFaceSource) -> None:
    repo = hub.add_repo("acme/evals", repo_type="dataset")
    sha = repo.commit({"data/test.parquet": b"rows" * 10}, branch="release")

    art = source.resolve("evals", "hf://datasets/acme/evals@release")

    assert art.resolved == f"hf://datasets/acme/evals@{sha}"
    assert art.meta["repo_type"] == "dataset"
    assert [(f.path, f.size) for f in art.files] == [("data/test.parquet", 40)]
    # Same id as a model is another repo: the type prefix matters.
    assert "repository not found" in _error(source, "hf://acme/evals@release")


def test_diff_of_two_revisions(hub: FakeHub, source: HuggingFaceSource) -> None:
    repo = hub.add_repo("acme/chat")
    old_sha = repo.commit(
        {"README.md": CARD, "config.json": "{}", "model.safetensors": b"a" * 1_000_000}
    )
    new_sha = repo.commit(
        {"model.safetensors": b"b" * 1_250_000, "tokenizer.json": "{}"}, delete=("config.json",)
    )

    old = source.resolve("model", f"hf://acme/chat@{old_sha}")
    new = source.resolve("model", f"hf://acme/chat@{new_sha}")
    diff = diff_artifacts(old, new)

    assert diff.added == ("tokenizer.json",)
    assert diff.removed == ("config.json",)
    assert diff.changed == ("model.safetensors",)
    assert diff.size_delta == 250_000 + 2 - 2
    assert summarize(diff) == ("model changed: 3 files (1 added, 1 removed, 1 changed), +250 kB")
    assert diff_artifacts(old, old).changed_count == 0


def test_describe_reads_the_card_head_at_the_pinned_sha(
    hub: FakeHub, source: HuggingFaceSource
) -> None:
    repo = hub.add_repo("acme/chat")
    sha = repo.commit({"README.md": CARD, "model.safetensors": b"w"})
    art = source.resolve("model", f"hf://acme/chat@{sha}")
    repo.commit({"README.md": "# Chat model v2\n"})

    assert source.describe(art, lines=2) == [
        "# Chat model v1",
        "A small model for the support chat.",
    ]
    assert source.describe(art) == [
        "# Chat model v1",
        "A small model for the support chat.",
        "## Uses",
        "Answering tickets.",
    ]
    card_requests = [r.path for r in hub.recorded() if "/resolve/" in r.path]
    assert card_requests and all(f"/resolve/{sha}/README.md" in p for p in card_requests)


def test_describe_without_a_card_is_empty(hub: FakeHub, source: HuggingFaceSource) -> None:
    hub.add_repo("acme/bare").commit({"model.safetensors": b"w"})
    assert source.describe(source.resolve("m", "hf://acme/bare")) == []


def test_private_repo_without_token_is_denied_with_401(hub: FakeHub) -> None:
    repo = hub.add_repo("acme/secret", private=True)
    repo.commit({"model.safetensors": b"w"})
    repo.grant(TOKEN)
    anonymous = HuggingFaceSource(endpoint=hub.endpoint)

    message = _error(anonymous, "hf://acme/secret")

    assert message == (
        "hf source: acme/secret@main: access denied or repository not found: "
        "no valid token was sent (401)"
    )
    assert HuggingFaceSource(endpoint=hub.endpoint, token=TOKEN).resolve("m", "hf://acme/secret")


def test_gated_repo_needs_a_granted_token(hub: FakeHub, source: HuggingFaceSource) -> None:
    repo = hub.add_repo("acme/llama", gated=True)
    repo.commit({"model.safetensors": b"w"})

    assert _error(source, "hf://acme/llama") == (
        "hf source: acme/llama@main: access denied: gated repo, "
        "and this token has not been granted access"
    )
    assert "access denied: gated repo, and no token was sent" in _error(
        HuggingFaceSource(endpoint=hub.endpoint), "hf://acme/llama"
    )
    repo.grant(TOKEN)
    assert source.resolve("m", "hf://acme/llama").files[0].path == "model.safetensors"


def test_missing_repo_and_wrong_revision(hub: FakeHub, source: HuggingFaceSource) -> None:
    hub.add_repo("acme/chat").commit({"model.safetensors": b"w"})

    assert _error(source, "hf://acme/nope") == "hf source: acme/nope@main: repository not found"
    assert _error(source, "hf://acme/chat@v9") == "hf source: acme/chat@v9: revision not found"
    assert _error(source, "hf://datasets/acme/chat@v9") == (
        "hf source: datasets/acme/chat@v9: repository not found"
    )


def test_rejected_token_and_server_errors(hub: FakeHub) -> None:
    hub.add_repo("acme/chat").commit({"model.safetensors": b"w"})
    wrong = HuggingFaceSource(endpoint=hub.endpoint, token="hf_revoked_000")
    assert _error(wrong, "hf://acme/chat") == (
        "hf source: acme/chat@main: access denied: the token was rejected (401)"
    )

    hub.outage = (503, "Service Unavailable")
    source = HuggingFaceSource(endpoint=hub.endpoint, token=TOKEN)
    assert _error(source, "hf://acme/chat") == (
        f"hf source: acme/chat@main: HTTP 503 from {hub.endpoint}: Service Unavailable"
    )


def test_unreachable_endpoint() -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    message = _error(HuggingFaceSource(endpoint=endpoint, token=TOKEN), "hf://acme/chat@v1")
    assert message.startswith(f"hf source: acme/chat@v1: endpoint {endpoint} unreachable")
    assert "\n" not in message


def test_token_goes_only_in_the_bearer_header_and_never_in_errors(
    hub: FakeHub, source: HuggingFaceSource
) -> None:
    repo = hub.add_repo("acme/chat")
    repo.commit({"README.md": CARD})
    hub.add_repo("acme/llama", gated=True).commit({"model.safetensors": b"w"})
    hub.add_repo("acme/secret", private=True).commit({"model.safetensors": b"w"})

    source.describe(source.resolve("m", "hf://acme/chat"))
    messages = [
        _error(source, uri)
        for uri in ("hf://acme/llama", "hf://acme/secret", "hf://acme/nope", "hf://acme/chat@x")
    ]
    hub.outage = (500, f"upstream rejected Authorization: Bearer {TOKEN}")
    messages.append(_error(source, "hf://acme/chat"))

    requests = hub.recorded()
    assert requests
    for request in requests:
        assert request.headers["authorization"] == f"Bearer {TOKEN}"
        others = [v for k, v in request.headers.items() if k != "authorization"]
        assert not any(TOKEN in v for v in others)
        assert TOKEN not in request.path
    assert len(messages) == 5
    for message in messages:
        assert TOKEN not in message
        assert message.startswith("hf source: ")
    assert messages[-1].endswith("upstream rejected Authorization: Bearer ***")


def test_ambient_credentials_are_used_when_none_are_given(
    hub: FakeHub, monkeypatch: pytest.MonkeyPatch, no_ambient_token: Path
) -> None:
    repo = hub.add_repo("acme/secret", private=True)
    repo.commit({"model.safetensors": b"w"})
    repo.grant(TOKEN)
    source = HuggingFaceSource(endpoint=hub.endpoint)

    no_ambient_token.parent.mkdir(parents=True)
    no_ambient_token.write_text(TOKEN)  # what `hf auth login` saves
    assert source.resolve("m", "hf://acme/secret").digest

    monkeypatch.setenv("HF_TOKEN", "hf_from_env_1")  # HF_TOKEN wins over the file
    hub.add_token("hf_from_env_1")
    assert "repository not found" in _error(source, "hf://acme/secret")
    assert hub.recorded()[-1].headers["authorization"] == "Bearer hf_from_env_1"


def test_from_settings_reads_the_named_token(
    hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = hub.add_repo("acme/secret", private=True)
    repo.commit({"model.safetensors": b"w"})
    repo.grant(TOKEN)

    from_env = HuggingFaceSource.from_settings(
        {"endpoint": hub.endpoint, "token_env": "SHIPDECK_HF"}, environ={"SHIPDECK_HF": TOKEN}
    )
    assert from_env.resolve("m", "hf://acme/secret").digest
    token_file = tmp_path / "hf.token"
    token_file.write_text(f"{TOKEN}\n")
    from_file = HuggingFaceSource.from_settings(
        {"endpoint": hub.endpoint, "token_file": str(token_file)}
    )
    assert from_file.resolve("m", "hf://acme/secret").digest

    with pytest.raises(AdapterError, match="token_env SHIPDECK_HF is not set"):
        HuggingFaceSource.from_settings({"token_env": "SHIPDECK_HF"}, environ={})
    with pytest.raises(AdapterError, match=r"token_file .*missing"):
        HuggingFaceSource.from_settings({"token_file": str(tmp_path / "missing")})


@pytest.mark.parametrize(
    ("uri", "cause"),
    [
        ("hf://acme", "not an hf:// repo URI"),
        ("s3://acme/chat", "not an hf:// repo URI"),
        ("hf://spaces/acme/demo", "only model and dataset repos"),
        ("hf://acme/chat@main/config.json", "not a path inside it"),
    ],
)
def test_bad_uris_are_refused_before_any_request(
    hub: FakeHub, source: HuggingFaceSource, uri: str, cause: str
) -> None:
    assert cause in _error(source, uri)
    assert hub.recorded() == []


def test_promote_is_not_supported(hub: FakeHub, source: HuggingFaceSource) -> None:
    hub.add_repo("acme/chat").commit({"model.safetensors": b"w"})
    art = source.resolve("model", "hf://acme/chat")
    with pytest.raises(AdapterError, match=r"^hf source: hf://acme/chat@\w+: promote is not"):
        source.promote(art, "s3://prod-models/chat/")


def test_fake_hub_serves_what_hf_hub_download_expects(hub: FakeHub, tmp_path: Path) -> None:
    """The fake's resolve endpoint satisfies the library's own download path, not just ours."""
    weights = b"\x00\xff" * 512
    sha = hub.add_repo("acme/chat").commit({"model.safetensors": weights})

    path = hf_hub_download(
        "acme/chat",
        "model.safetensors",
        revision="main",
        endpoint=hub.endpoint,
        cache_dir=tmp_path / "cache",
        token=TOKEN,
    )

    assert Path(path).read_bytes() == weights
    assert f"/snapshots/{sha}/" in Path(path).as_posix()
