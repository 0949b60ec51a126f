"""Audit checkpoints kept in S3, out of reach of whoever can rewrite the database.

Each append writes a new version of one object, so earlier checkpoints survive an overwrite; a
bucket without versioning is refused, since there an overwrite would erase them. Reading takes
*every* version, oldest first, and returns each line once: whoever can rewrite the object can add
a forged head, but cannot take back the true one, and two heads for one sequence are then an
integrity failure in `verify`. Where the bucket has Object Lock enabled, every version is put
with a checksum (which Object Lock requires) under the bucket's default retention.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from shipdeck.adapters.aws import AwsClient, aws_errors
from shipdeck.core.errors import ConfigError, UsageError


class S3Checkpoints:
    def __init__(
        self,
        location: str,
        endpoint_url: str | None = None,
        profile: str | None = None,
        region: str | None = None,
    ) -> None:
        parts = urlsplit(location)
        if parts.scheme != "s3" or not parts.netloc or not parts.path.strip("/"):
            raise UsageError(f"checkpoints {location}: expected s3://bucket/key")
        self.location = location
        self.bucket = parts.netloc
        self.key = parts.path.lstrip("/")
        self.label = f"s3 checkpoints {location}"
        self._s3 = AwsClient(
            "s3", self.label, region=region, endpoint_url=endpoint_url, profile=profile
        )

    def _check_bucket(self, client: Any) -> bool:
        """Refuse an unversioned bucket; True when it has Object Lock enabled."""
        status = client.get_bucket_versioning(Bucket=self.bucket).get("Status")
        if status != "Enabled":
            raise ConfigError(
                f"{self.label}: bucket {self.bucket} has no versioning ({status or 'never enabled'}): "
                "an overwrite would erase earlier checkpoints; enable versioning on it"
            )
        try:
            lock = client.get_object_lock_configuration(Bucket=self.bucket)
        except client.exceptions.ClientError:
            return False  # no Object Lock configuration on this bucket
        return bool(lock.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled") == "Enabled")

    def _version_ids(self, client: Any) -> list[str]:
        """Every version of the object, oldest first (delete markers hold no lines)."""
        found: list[tuple[Any, str]] = []
        pages = client.get_paginator("list_object_versions").paginate(
            Bucket=self.bucket, Prefix=self.key
        )
        for page in pages:
            for v in page.get("Versions", []):
                if v["Key"] == self.key:
                    found.append((v["LastModified"], v["VersionId"]))
        found.reverse()  # listed newest first: reversed, a stable sort keeps ties in order
        return [vid for _, vid in sorted(found, key=lambda f: f[0])]

    def read(self) -> str:
        """Every line any version of the object ever held, once each, in first-seen order."""
        lines: dict[str, None] = {}
        with aws_errors(self.label):
            client = self._s3()
            self._check_bucket(client)
            for vid in self._version_ids(client):
                body = client.get_object(Bucket=self.bucket, Key=self.key, VersionId=vid)["Body"]
                for line in body.read().decode("utf-8").splitlines():
                    lines.setdefault(line, None)
        return "".join(line + "\n" for line in lines)

    def _latest(self, client: Any) -> str:
        try:
            body = client.get_object(Bucket=self.bucket, Key=self.key)["Body"].read()
        except client.exceptions.NoSuchKey:
            return ""
        return str(body.decode("utf-8"))

    def append(self, line: str) -> None:
        with aws_errors(self.label):
            client = self._s3()
            locked = self._check_bucket(client)
            text = self._latest(client) + line + "\n"
            client.put_object(
                Bucket=self.bucket,
                Key=self.key,
                Body=text.encode("utf-8"),
                ContentType="application/x-ndjson",
                **({"ChecksumAlgorithm": "SHA256"} if locked else {}),
            )
