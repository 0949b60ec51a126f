"""S3Checkpoints against moto's server over real HTTP on loopback."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from shipdeck.adapters.s3_checkpoints import S3Checkpoints
from shipdeck.core.errors import AdapterError, ConfigError, UsageError


@pytest.fixture
def s3(moto_endpoint: str) -> Iterator[Any]:
    client = boto3.client("s3", endpoint_url=moto_endpoint)
    yield client
    client.close()


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"checkpoints-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


def test_appends_keep_every_line_and_every_version(
    s3: Any, bucket: str, moto_endpoint: str
) -> None:
    store = S3Checkpoints(f"s3://{bucket}/audit/heads.ndjson", endpoint_url=moto_endpoint)
    assert store.read() == ""  # nothing written yet: no object, no error

    store.append('{"seq": 1, "head": "aa"}')
    store.append('{"seq": 2, "head": "bb"}')

    assert store.read() == '{"seq": 1, "head": "aa"}\n{"seq": 2, "head": "bb"}\n'
    versions = s3.list_object_versions(Bucket=bucket, Prefix="audit/heads.ndjson")["Versions"]
    assert len(versions) == 2
    [older] = [v for v in versions if not v["IsLatest"]]
    first = s3.get_object(Bucket=bucket, Key="audit/heads.ndjson", VersionId=older["VersionId"])
    assert first["Body"].read() == b'{"seq": 1, "head": "aa"}\n'  # an overwrite erases nothing


def test_a_second_store_on_the_same_object_reads_what_the_first_wrote(
    bucket: str, moto_endpoint: str
) -> None:
    location = f"s3://{bucket}/heads"
    S3Checkpoints(location, endpoint_url=moto_endpoint).append("one")
    other = S3Checkpoints(location, endpoint_url=moto_endpoint)
    other.append("two")
    assert other.read() == "one\ntwo\n"
    assert other.location == location


def test_missing_bucket_is_a_one_line_adapter_error(moto_endpoint: str) -> None:
    missing = f"nope-{uuid.uuid4().hex[:8]}"
    store = S3Checkpoints(f"s3://{missing}/heads", endpoint_url=moto_endpoint)
    for call in (store.read, lambda: store.append("x")):
        with pytest.raises(AdapterError) as info:
            call()
        assert str(info.value) == f"s3 checkpoints s3://{missing}/heads: no such bucket"
        assert "\n" not in str(info.value)


@pytest.mark.parametrize("location", ["s3://bucket", "s3://bucket/", "file:///tmp/x", "s3:///k"])
def test_bad_locations_are_usage_errors(location: str) -> None:
    with pytest.raises(UsageError, match="expected s3://bucket/key"):
        S3Checkpoints(location)


def test_an_unversioned_bucket_is_refused(s3: Any, moto_endpoint: str) -> None:
    name = f"plain-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    store = S3Checkpoints(f"s3://{name}/heads", endpoint_url=moto_endpoint)
    for call in (store.read, lambda: store.append("x")):
        with pytest.raises(ConfigError) as info:
            call()
        assert str(info.value) == (
            f"s3 checkpoints s3://{name}/heads: bucket {name} has no versioning (never enabled): "
            "an overwrite would erase earlier checkpoints; enable versioning on it"
        )
    assert "Contents" not in s3.list_objects_v2(Bucket=name)  # nothing was written


def test_an_overwrite_cannot_take_back_a_true_line(
    s3: Any, bucket: str, moto_endpoint: str
) -> None:
    """The attacker replaces the object with a forged history: every version is read, so the
    true line is still there beside the forged one (verify then finds them disagreeing)."""
    store = S3Checkpoints(f"s3://{bucket}/heads", endpoint_url=moto_endpoint)
    store.append('{"seq": 1, "hash": "true"}')
    s3.put_object(Bucket=bucket, Key="heads", Body=b'{"seq": 1, "hash": "forged"}\n')
    assert store.read() == '{"seq": 1, "hash": "true"}\n{"seq": 1, "hash": "forged"}\n'


def test_object_lock_buckets_take_checkpoints(s3: Any, moto_endpoint: str) -> None:
    name = f"locked-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    s3.put_object_lock_configuration(
        Bucket=name,
        ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}},
        },
    )
    store = S3Checkpoints(f"s3://{name}/heads", endpoint_url=moto_endpoint)
    store.append("one")
    store.append("two")
    assert store.read() == "one\ntwo\n"
    versions = s3.list_object_versions(Bucket=name, Prefix="heads")["Versions"]
    assert len(versions) == 2  # put with a checksum, as Object Lock requires; both kept
