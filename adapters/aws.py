"""The one way adapters reach AWS (ELB, CloudWatch Logs, S3): a boto3 client with short timeouts
and few retries, and every SDK failure turned into one AdapterError line.

A console that waits a minute per call on an unreachable endpoint is worse than a clear error,
and a botocore traceback says less to an operator than "no such bucket".
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from shipdeck.core.domain.redact import one_line
from shipdeck.core.errors import AdapterError

# Error codes whose meaning is plainer in words; S3 answers HEAD requests with bare statuses.
_CAUSES = {
    "NoSuchBucket": "no such bucket",
    "NoSuchKey": "no such key",
    "NoSuchVersion": "no such version",
    "AccessDenied": "access denied (403)",
    "403": "access denied (403)",
    "PreconditionFailed": "object changed since it was pinned (ETag no longer matches)",
    "412": "object changed since it was pinned (ETag no longer matches)",
}


def aws_cause(exc: Exception) -> str:
    """Why an SDK call failed, in one line that names no credential."""
    from botocore.exceptions import ClientError, NoCredentialsError, ProfileNotFound

    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "error"))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in _CAUSES:
            return _CAUSES[code]
        if status == 403:
            return f"access denied (403 {code})"
        return one_line(f"{code}: {error.get('Message', '')}").rstrip(": ")
    if isinstance(exc, NoCredentialsError):
        return "no AWS credentials found (AWS_PROFILE, AWS_ACCESS_KEY_ID or the profile setting)"
    if isinstance(exc, ProfileNotFound):
        return f"AWS profile {exc.kwargs.get('profile')} not found"
    return one_line(str(exc)) or type(exc).__name__


@contextmanager
def aws_errors(label: str, cause: Callable[[Exception], str] = aws_cause) -> Iterator[None]:
    """Turn any boto3/botocore failure inside the block into "{label}: {cause}"; `cause` lets an
    adapter say more where it knows more (which of bucket, key or version a 404 means)."""
    from boto3.exceptions import Boto3Error
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except (ClientError, BotoCoreError, Boto3Error) as exc:
        raise AdapterError(f"{label}: {cause(exc)}") from exc


class AwsClient:
    """A boto3 client for one service, made on first use (so a misconfigured adapter that is never
    called costs nothing) and shared by threads. Call it inside `aws_errors`."""

    def __init__(
        self,
        service: str,
        label: str,
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
        profile: str | None = None,
        max_attempts: int = 3,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
    ) -> None:
        self.service = service
        self.label = label
        self.region = region
        self.endpoint_url = endpoint_url
        self.profile = profile
        self.max_attempts = max_attempts
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self._client: Any = None
        self._lock = threading.Lock()

    def __call__(self) -> Any:
        with self._lock:
            if self._client is None:
                import boto3
                from botocore.config import Config

                config = Config(
                    connect_timeout=self.connect_timeout,
                    read_timeout=self.read_timeout,
                    retries={"max_attempts": self.max_attempts, "mode": "standard"},
                )
                with aws_errors(self.label):
                    session = boto3.session.Session(
                        profile_name=self.profile, region_name=self.region
                    )
                    make: Any = session.client  # a runtime service name, not a stub literal
                    self._client = make(self.service, endpoint_url=self.endpoint_url, config=config)
            return self._client

    def endpoint(self) -> str:
        """Where calls go: the configured endpoint, else the one boto3 chose ('' before use)."""
        if self.endpoint_url:
            return self.endpoint_url
        return str(self._client.meta.endpoint_url) if self._client is not None else ""

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
