"""Objects and prefixes in S3 (or any S3-compatible store) as release artifacts.

A release pins what it ships: one object by its VersionId (or by its ETag when the bucket is not
versioned), a prefix by the exact version of every object under it. Promotion copies exactly
those versions into an environment's bucket, never whatever happens to be latest by then.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from typing import Any, BinaryIO
from urllib.parse import parse_qs, urlencode, urlsplit

from shipdeck.adapters.aws import AwsClient, aws_cause, aws_errors
from shipdeck.core.domain.artifact_diff import format_size
from shipdeck.core.errors import AdapterError
from shipdeck.core.ports import ArtifactFile, ResolvedArtifact

_NULL_VERSION = "null"  # what S3 reports as VersionId in a bucket that never had versioning
_QUERY_KEYS = {"versionId", "etag", "sha256"}


@dataclass(frozen=True)
class _Location:
    bucket: str
    key: str  # the object key, or the prefix when `is_prefix`
    version_id: str | None = None
    etag: str | None = None
    sha256: str | None = None

    @property
    def is_prefix(self) -> bool:
        return self.key == "" or self.key.endswith("/")


@dataclass(frozen=True)
class _Object:
    key: str
    version_id: str
    etag: str
    size: int


class S3Source:
    """`s3://bucket/key`, `s3://bucket/key?versionId=V`, `s3://bucket/prefix/` (trailing slash).

    Credentials, region and endpoint come from boto3's usual chain (AWS_PROFILE,
    AWS_ENDPOINT_URL, ~/.aws/config, instance roles...); the arguments override it per source.
    """

    scheme = "s3"

    def __init__(
        self,
        endpoint_url: str | None = None,
        profile: str | None = None,
        region: str | None = None,
        *,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        max_attempts: int = 3,
    ) -> None:
        self._s3 = AwsClient(
            "s3",
            "s3 source",
            region=region,
            endpoint_url=endpoint_url,
            profile=profile,
            max_attempts=max_attempts,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
        )

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> S3Source:
        """Build from a shipdeck.toml `[sources.X]` table of kind "s3"."""
        return cls(
            endpoint_url=settings.get("endpoint_url"),
            profile=settings.get("profile"),
            region=settings.get("region"),
        )

    # --- port ---------------------------------------------------------------------------------

    def resolve(self, name: str, uri: str) -> ResolvedArtifact:
        loc = _parse(uri)
        with self._translated(uri, loc):
            objects = self._list(loc) if loc.is_prefix else [self._head(loc)]
        artifact = _artifact(name, uri, loc, objects)
        if loc.sha256 is not None and artifact.digest != loc.sha256:
            raise AdapterError(
                f"s3 source: {uri}: objects under the prefix changed since it was pinned "
                f"(sha256 now {artifact.digest})"
            )
        return artifact

    def describe(self, artifact: ResolvedArtifact, lines: int = 10) -> list[str]:
        loc = _parse(artifact.resolved)
        objects = self._objects_of(artifact)
        shown = objects if len(objects) <= lines else objects[: max(lines - 1, 0)]
        out: list[str] = []
        with self._translated(artifact.resolved, loc):
            for obj in shown:
                head = self._s3().head_object(
                    Bucket=loc.bucket, Key=obj.key, **_version_arg(obj.version_id)
                )
                modified = head["LastModified"].strftime("%Y-%m-%d %H:%M:%SZ")
                out.append(
                    f"{obj.key}  {format_size(obj.size)}  etag {obj.etag}  modified {modified}  "
                    f"{head.get('ContentType', '-')}"
                )
        if len(shown) < len(objects):
            rest = objects[len(shown) :]
            size = format_size(sum(o.size for o in rest))
            out.append(f"... and {len(rest)} more objects ({size})")
        return out

    def promote(self, artifact: ResolvedArtifact, destination: str) -> ResolvedArtifact:
        """Server-side copy of each pinned version under the `destination` prefix.

        Objects already under the destination are left alone; the returned artifact lists only
        the copies. copy_object handles objects up to 5 GB, S3's limit for a single-request copy.
        """
        src = _parse(artifact.resolved)
        dest = _parse(destination)
        if not dest.is_prefix or dest.version_id or dest.etag or dest.sha256:
            raise AdapterError(
                f"s3 source: {destination}: promote needs a destination prefix ending in '/'"
            )
        objects = self._objects_of(artifact)
        base = src.key if src.is_prefix else _dirname(src.key)
        copies: list[_Object] = []
        with self._translated(f"{artifact.resolved} -> {destination}", dest):
            for obj in objects:
                source: dict[str, str] = {"Bucket": src.bucket, "Key": obj.key}
                source.update(_version_arg(obj.version_id))
                key = dest.key + obj.key.removeprefix(base)
                out = self._s3().copy_object(
                    Bucket=dest.bucket,
                    Key=key,
                    CopySource=source,
                    CopySourceIfMatch=f'"{obj.etag}"',
                )
                copies.append(
                    _Object(
                        key=key,
                        version_id=out.get("VersionId") or _NULL_VERSION,
                        etag=out["CopyObjectResult"]["ETag"].strip('"'),
                        size=obj.size,
                    )
                )
        copy_uri = destination if src.is_prefix else f"s3://{dest.bucket}/{copies[0].key}"
        return _artifact(artifact.name, copy_uri, _parse(copy_uri), copies)

    def fetch(self, artifact: ResolvedArtifact, path: str, into: BinaryIO, max_bytes: int) -> None:
        """GET one pinned object version (by VersionId, else If-Match on its ETag), streamed."""
        loc = _parse(artifact.resolved)
        key = loc.key + path if loc.is_prefix else loc.key
        obj = next((o for o in self._objects_of(artifact) if o.key == key), None)
        if obj is None:
            raise AdapterError(f"s3 source: {artifact.resolved}: no object {path} in the pin")
        if obj.size > max_bytes:
            raise AdapterError(f"s3 source: s3://{loc.bucket}/{key}: over {max_bytes} bytes")
        with self._translated(f"s3://{loc.bucket}/{key}", loc):
            kwargs: dict[str, str] = {"Bucket": loc.bucket, "Key": key}
            kwargs.update(_version_arg(obj.version_id) or {"IfMatch": f'"{obj.etag}"'})
            body = self._s3().get_object(**kwargs)["Body"]
            for chunk in body.iter_chunks(1 << 20):
                into.write(chunk)

    # --- S3 calls -----------------------------------------------------------------------------

    def _head(self, loc: _Location) -> _Object:
        kwargs: dict[str, str] = {"Bucket": loc.bucket, "Key": loc.key}
        kwargs.update(_version_arg(loc.version_id))
        if loc.etag:
            kwargs["IfMatch"] = f'"{loc.etag}"'
        head = self._s3().head_object(**kwargs)
        return _Object(
            key=loc.key,
            version_id=head.get("VersionId") or _NULL_VERSION,
            etag=head["ETag"].strip('"'),
            size=head["ContentLength"],
        )

    def _list(self, loc: _Location) -> list[_Object]:
        """The latest version of every object under the prefix (deleted keys drop out)."""
        pages = (
            self._s3()
            .get_paginator("list_object_versions")
            .paginate(Bucket=loc.bucket, Prefix=loc.key)
        )
        objects = [
            _Object(v["Key"], v["VersionId"], v["ETag"].strip('"'), v["Size"])
            for page in pages
            for v in page.get("Versions", [])
            if v["IsLatest"] and not v["Key"].endswith("/")  # "folder" placeholders
        ]
        if not objects:
            raise AdapterError(f"s3 source: s3://{loc.bucket}/{loc.key}: no objects under prefix")
        return sorted(objects, key=lambda o: o.key)

    def _objects_of(self, artifact: ResolvedArtifact) -> list[_Object]:
        """The pinned versions: from meta when this source resolved it, else resolved again."""
        listed = artifact.meta.get("objects")
        if listed is None:
            listed = self.resolve(artifact.name, artifact.resolved).meta["objects"]
        return [_Object(**o) for o in listed]

    # --- errors -------------------------------------------------------------------------------

    def _translated(self, label: str, loc: _Location) -> AbstractContextManager[None]:
        """Whatever boto3 raises becomes one AdapterError line naming the URI and the cause."""
        return aws_errors(f"s3 source: {label}", lambda exc: self._cause(exc, loc))

    def _cause(self, exc: Exception, loc: _Location) -> str:
        """aws_cause, with what only S3 knows: which of bucket, key or version a bare 404 means,
        and the endpoint and read timeout it was given."""
        from botocore.exceptions import (
            ClientError,
            ConnectTimeoutError,
            EndpointConnectionError,
            ReadTimeoutError,
        )

        if isinstance(exc, ClientError) and exc.response.get("Error", {}).get("Code") in (
            "404",
            "NotFound",
        ):  # HEAD answers carry no error body
            return self._missing(loc)
        if isinstance(exc, EndpointConnectionError | ConnectTimeoutError):
            return f"endpoint {self._s3.endpoint()} unreachable"
        if isinstance(exc, ReadTimeoutError):
            return (
                f"endpoint {self._s3.endpoint()} did not answer within {self._s3.read_timeout:g}s"
            )
        return aws_cause(exc)

    def _missing(self, loc: _Location) -> str:
        """A HEAD 404 does not say what is missing; one more HEAD on the bucket does."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._s3().head_bucket(Bucket=loc.bucket)
        except BotoCoreError:
            pass  # the bucket check itself failed: say what the first answer said
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchBucket", "NotFound"):
                return "no such bucket"
        return "no such version" if loc.version_id else "no such key"


def _parse(uri: str) -> _Location:
    parts = urlsplit(uri)
    query = parse_qs(parts.query)
    if parts.scheme != "s3" or not parts.netloc or parts.fragment or query.keys() - _QUERY_KEYS:
        raise AdapterError(
            f"s3 source: {uri}: expected s3://bucket/key[?versionId=V] or s3://bucket/prefix/"
        )
    loc = _Location(
        bucket=parts.netloc,
        key=parts.path.removeprefix("/"),
        version_id=query.get("versionId", [None])[0],
        etag=query.get("etag", [None])[0],
        sha256=query.get("sha256", [None])[0],
    )
    if loc.is_prefix and (loc.version_id or loc.etag):
        raise AdapterError(f"s3 source: {uri}: versionId and etag pin one object, not a prefix")
    if not loc.is_prefix and loc.sha256:
        raise AdapterError(f"s3 source: {uri}: sha256 pins a prefix, not one object")
    return loc


def _digest(objects: list[_Object]) -> str:
    h = hashlib.sha256()
    for obj in sorted(objects, key=lambda o: o.key):
        h.update(f"{obj.key}\0{obj.etag}\0{obj.version_id}\n".encode())
    return h.hexdigest()


def _dirname(key: str) -> str:
    return key[: key.rfind("/") + 1]


def _version_arg(version_id: str | None) -> dict[str, str]:
    return {"VersionId": version_id} if version_id and version_id != _NULL_VERSION else {}


def _artifact(name: str, uri: str, loc: _Location, objects: list[_Object]) -> ResolvedArtifact:
    """Files are named relative to the prefix (or by the object's base name), so two versions of
    a model directory compare path by path wherever each one lives."""
    digest = _digest(objects)
    if loc.is_prefix:
        base = f"s3://{loc.bucket}/{loc.key}"
        resolved = f"{base}?{urlencode({'sha256': digest})}"
        files = tuple(ArtifactFile(o.key.removeprefix(loc.key), o.size, o.etag) for o in objects)
    else:
        obj = objects[0]
        pin = (
            {"versionId": obj.version_id} if obj.version_id != _NULL_VERSION else {"etag": obj.etag}
        )
        resolved = f"s3://{loc.bucket}/{loc.key}?{urlencode(pin)}"
        files = (ArtifactFile(loc.key.removeprefix(_dirname(loc.key)), obj.size, obj.etag),)
    return ResolvedArtifact(
        name=name,
        uri=uri,
        resolved=resolved,
        digest=digest,
        files=files,
        meta={"bucket": loc.bucket, "objects": [asdict(o) for o in objects]},
    )
