"""S3Source against moto's server over real HTTP on loopback."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from shipdeck.adapters.s3 import S3Source
from shipdeck.core.domain.artifact_diff import diff_artifacts, summarize
from shipdeck.core.errors import AdapterError
from tests.support.moto_server import free_port

BucketFactory = Callable[..., str]


@pytest.fixture
def s3(moto_endpoint: str) -> Any:
    return boto3.client("s3", endpoint_url=moto_endpoint)


@pytest.fixture
def bucket(s3: Any) -> BucketFactory:
    """Make a uniquely named bucket (versioned unless asked otherwise) for one test."""

    def make(versioned: bool = True) -> str:
        name = f"shipdeck-{uuid.uuid4().hex[:12]}"
        s3.create_bucket(Bucket=name)
        if versioned:
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        return name

    return make


@pytest.fixture
def source(moto_endpoint: str) -> S3Source:
    return S3Source(endpoint_url=moto_endpoint)


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def _error(call: Callable[[], object]) -> str:
    with pytest.raises(AdapterError) as info:
        call()
    return info.value.message


def test_single_object_pins_the_latest_version_and_etag(
    s3: Any, bucket: BucketFactory, source: S3Source
) -> None:
    b = bucket()
    s3.put_object(Bucket=b, Key="models/chat/model.bin", Body=b"v1")
    latest = s3.put_object(Bucket=b, Key="models/chat/model.bin", Body=b"v2 weights")

    art = source.resolve("model", f"s3://{b}/models/chat/model.bin")

    assert art.uri == f"s3://{b}/models/chat/model.bin"
    assert art.resolved == f"s3://{b}/models/chat/model.bin?versionId={latest['VersionId']}"
    assert [(f.path, f.size, f.sha256) for f in art.files] == [
        ("model.bin", 10, _md5(b"v2 weights"))
    ]
    assert art.meta["objects"] == [
        {
            "key": "models/chat/model.bin",
            "version_id": latest["VersionId"],
            "etag": _md5(b"v2 weights"),
            "size": 10,
        }
    ]
    assert source.resolve("model", art.resolved).digest == art.digest


def test_explicit_version_id_resolves_that_version(
    s3: Any, bucket: BucketFactory, source: S3Source
) -> None:
    b = bucket()
    first = s3.put_object(Bucket=b, Key="model.bin", Body=b"first")
    s3.put_object(Bucket=b, Key="model.bin", Body=b"second!")

    art = source.resolve("model", f"s3://{b}/model.bin?versionId={first['VersionId']}")

    assert art.resolved == f"s3://{b}/model.bin?versionId={first['VersionId']}"
    assert art.files[0].size == 5
    assert art.files[0].sha256 == _md5(b"first")
    assert art.digest != source.resolve("model", f"s3://{b}/model.bin").digest


def test_unversioned_bucket_pins_by_etag(s3: Any, bucket: BucketFactory, source: S3Source) -> None:
    b = bucket(versioned=False)
    s3.put_object(Bucket=b, Key="model.bin", Body=b"one")

    art = source.resolve("model", f"s3://{b}/model.bin")
    assert art.resolved == f"s3://{b}/model.bin?etag={_md5(b'one')}"
    assert source.resolve("model", art.resolved).digest == art.digest

    s3.put_object(Bucket=b, Key="model.bin", Body=b"two")
    assert _error(lambda: source.resolve("model", art.resolved)) == (
        f"s3 source: {art.resolved}: object changed since it was pinned (ETag no longer matches)"
    )


def test_prefix_resolves_every_latest_object(
    s3: Any, bucket: BucketFactory, source: S3Source
) -> None:
    b = bucket()
    s3.put_object(Bucket=b, Key="chat/v1/", Body=b"")  # a console "folder"
    s3.put_object(Bucket=b, Key="chat/v1/config.json", Body=b"{}")
    s3.put_object(Bucket=b, Key="chat/v1/shards/model-1.bin", Body=b"a" * 100)
    s3.put_object(Bucket=b, Key="chat/v1/shards/model-1.bin", Body=b"b" * 120)
    s3.put_object(Bucket=b, Key="chat/v1/old.bin", Body=b"gone")
    s3.delete_object(Bucket=b, Key="chat/v1/old.bin")
    s3.put_object(Bucket=b, Key="chat/v10/other.bin", Body=b"not under the prefix")

    art = source.resolve("model", f"s3://{b}/chat/v1/")

    assert [(f.path, f.size, f.sha256) for f in art.files] == [
        ("config.json", 2, _md5(b"{}")),
        ("shards/model-1.bin", 120, _md5(b"b" * 120)),
    ]
    assert art.resolved == f"s3://{b}/chat/v1/?sha256={art.digest}"
    assert len(art.digest) == 64
    assert source.resolve("model", art.resolved).digest == art.digest
    assert source.resolve("model", f"s3://{b}/chat/v1/").digest == art.digest

    s3.put_object(Bucket=b, Key="chat/v1/config.json", Body=b"{}")  # same bytes, new version
    assert source.resolve("model", f"s3://{b}/chat/v1/").digest != art.digest
    assert "objects under the prefix changed since it was pinned" in _error(
        lambda: source.resolve("model", art.resolved)
    )


def test_diff_after_overwriting_an_object(s3: Any, bucket: BucketFactory, source: S3Source) -> None:
    b = bucket()
    s3.put_object(Bucket=b, Key="chat/model.bin", Body=b"x" * 2000)
    s3.put_object(Bucket=b, Key="chat/config.json", Body=b"{}")
    s3.put_object(Bucket=b, Key="chat/stale.txt", Body=b"bye")
    before = source.resolve("model", f"s3://{b}/chat/")

    s3.put_object(Bucket=b, Key="chat/model.bin", Body=b"y" * 3500)
    s3.put_object(Bucket=b, Key="chat/tokenizer.json", Body=b"{}")
    s3.delete_object(Bucket=b, Key="chat/stale.txt")
    after = source.resolve("model", f"s3://{b}/chat/")

    diff = diff_artifacts(before, after)
    assert diff.changed == ("model.bin",)
    assert diff.added == ("tokenizer.json",)
    assert diff.removed == ("stale.txt",)
    assert diff.size_delta == 1500 + 2 - 3
    assert summarize(diff) == "model changed: 3 files (1 added, 1 removed, 1 changed), +1.5 kB"


def test_promote_copies_the_pinned_versions(
    s3: Any, bucket: BucketFactory, source: S3Source
) -> None:
    staging, prod = bucket(), bucket()
    s3.put_object(Bucket=staging, Key="chat/model.bin", Body=b"pinned weights")
    s3.put_object(Bucket=staging, Key="chat/cfg/config.json", Body=b"{}")
    art = source.resolve("model", f"s3://{staging}/chat/")
    s3.put_object(Bucket=staging, Key="chat/model.bin", Body=b"newer, unreviewed")

    copy = source.promote(art, f"s3://{prod}/releases/chat/")

    body = s3.get_object(Bucket=prod, Key="releases/chat/model.bin")["Body"].read()
    assert body == b"pinned weights"
    assert s3.get_object(Bucket=prod, Key="releases/chat/cfg/config.json")["Body"].read() == b"{}"
    assert copy.name == "model"
    assert copy.uri == f"s3://{prod}/releases/chat/"
    assert copy.resolved == f"s3://{prod}/releases/chat/?sha256={copy.digest}"
    assert diff_artifacts(art, copy).changed_count == 0
    again = source.resolve("model", copy.resolved)
    assert again.digest == copy.digest
    assert again.meta["objects"] == copy.meta["objects"]


def test_promote_single_object(s3: Any, bucket: BucketFactory, source: S3Source) -> None:
    staging, prod = bucket(), bucket()
    s3.put_object(Bucket=staging, Key="models/chat.gguf", Body=b"gguf")
    art = source.resolve("model", f"s3://{staging}/models/chat.gguf")

    copy = source.promote(art, f"s3://{prod}/live/")

    head = s3.head_object(Bucket=prod, Key="live/chat.gguf")
    assert copy.resolved == f"s3://{prod}/live/chat.gguf?versionId={head['VersionId']}"
    assert [(f.path, f.size) for f in copy.files] == [("chat.gguf", 4)]
    assert "promote needs a destination prefix ending in '/'" in _error(
        lambda: source.promote(art, f"s3://{prod}/live/chat.gguf")
    )


def test_describe_lists_object_metadata(s3: Any, bucket: BucketFactory, source: S3Source) -> None:
    b = bucket()
    for i in range(4):
        s3.put_object(
            Bucket=b, Key=f"data/part-{i}.parquet", Body=b"p" * 1000, ContentType="x/parquet"
        )
    art = source.resolve("data", f"s3://{b}/data/")

    lines = source.describe(art, lines=3)

    assert len(lines) == 3
    assert lines[0].startswith(f"data/part-0.parquet  1 kB  etag {_md5(b'p' * 1000)}  modified 2")
    assert lines[0].endswith("  x/parquet")
    assert lines[2] == "... and 2 more objects (2 kB)"
    assert len(source.describe(art)) == 4


def test_describe_without_meta_resolves_again(
    s3: Any, bucket: BucketFactory, source: S3Source
) -> None:
    """An artifact read back from a release manifest carries only its URIs."""
    b = bucket()
    s3.put_object(Bucket=b, Key="m.bin", Body=b"m")
    art = source.resolve("m", f"s3://{b}/m.bin")
    bare = type(art)(name=art.name, uri=art.uri, resolved=art.resolved, digest=art.digest)
    assert source.describe(bare)[0].startswith("m.bin  1 B  etag ")


def test_missing_bucket_key_and_version(s3: Any, bucket: BucketFactory, source: S3Source) -> None:
    b = bucket()
    s3.put_object(Bucket=b, Key="model.bin", Body=b"w")
    s3.put_object(Bucket=b, Key="deleted.bin", Body=b"w")
    s3.delete_object(Bucket=b, Key="deleted.bin")
    missing = f"nope-{uuid.uuid4().hex[:8]}"

    def resolve(uri: str) -> str:
        return _error(lambda: source.resolve("model", uri))

    assert resolve(f"s3://{missing}/model.bin") == (
        f"s3 source: s3://{missing}/model.bin: no such bucket"
    )
    assert (
        resolve(f"s3://{missing}/models/") == f"s3 source: s3://{missing}/models/: no such bucket"
    )
    assert resolve(f"s3://{b}/other.bin") == f"s3 source: s3://{b}/other.bin: no such key"
    assert resolve(f"s3://{b}/deleted.bin") == f"s3 source: s3://{b}/deleted.bin: no such key"
    assert resolve(f"s3://{b}/model.bin?versionId=v0") == (
        f"s3 source: s3://{b}/model.bin?versionId=v0: no such version"
    )
    assert resolve(f"s3://{b}/empty/") == f"s3 source: s3://{b}/empty/: no objects under prefix"

    art = source.resolve("model", f"s3://{b}/model.bin")
    assert _error(lambda: source.promote(art, f"s3://{missing}/x/")) == (
        f"s3 source: {art.resolved} -> s3://{missing}/x/: no such bucket"
    )


def test_unreachable_endpoint() -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    source = S3Source(endpoint_url=endpoint, connect_timeout=1, max_attempts=1)
    message = _error(lambda: source.resolve("model", "s3://models/chat/model.bin"))
    assert message == f"s3 source: s3://models/chat/model.bin: endpoint {endpoint} unreachable"


def test_unknown_profile(moto_endpoint: str) -> None:
    source = S3Source(endpoint_url=moto_endpoint, profile=f"no-such-{uuid.uuid4().hex[:6]}")
    assert "AWS profile no-such-" in _error(lambda: source.resolve("m", "s3://b/k"))


@pytest.mark.parametrize(
    ("uri", "cause"),
    [
        ("hf://acme/chat", "expected s3://bucket/key"),
        ("s3:///key", "expected s3://bucket/key"),
        ("s3://bucket/key?colour=blue", "expected s3://bucket/key"),
        ("s3://bucket/prefix/?versionId=1", "versionId and etag pin one object"),
        ("s3://bucket/key?sha256=ab", "sha256 pins a prefix"),
    ],
)
def test_bad_uris(uri: str, cause: str) -> None:
    source = S3Source(endpoint_url=f"http://127.0.0.1:{free_port()}", max_attempts=1)
    assert cause in _error(lambda: source.resolve("m", uri))


def test_from_settings_passes_overrides(moto_endpoint: str, s3: Any, bucket: BucketFactory) -> None:
    b = bucket()
    s3.put_object(Bucket=b, Key="k", Body=b"v")
    source = S3Source.from_settings({"endpoint_url": moto_endpoint, "region": "eu-west-1"})
    assert source.resolve("m", f"s3://{b}/k").files[0].size == 1
