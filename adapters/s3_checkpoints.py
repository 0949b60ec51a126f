"""Audit checkpoints kept in S3, out of reach of whoever can rewrite the database.

Each append writes a new version of one object (the bucket should be versioned), so earlier
checkpoints survive an overwrite; where the bucket has Object Lock enabled, every version is put
under the bucket's default retention as well.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from shipdeck.adapters.aws import AwsClient, aws_errors
from shipdeck.core.errors import UsageError


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

    def read(self) -> str:
        with aws_errors(self.label):
            client = self._s3()
            try:
                body = client.get_object(Bucket=self.bucket, Key=self.key)["Body"].read()
            except client.exceptions.NoSuchKey:
                return ""
        return str(body.decode("utf-8"))

    def append(self, line: str) -> None:
        text = self.read() + line + "\n"
        with aws_errors(self.label):
            self._s3().put_object(
                Bucket=self.bucket,
                Key=self.key,
                Body=text.encode("utf-8"),
                ContentType="application/x-ndjson",
            )
