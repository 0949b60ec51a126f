"""`audit checkpoint --to s3://...` and `audit verify --checkpoints s3://...` through the real CLI
against moto's S3 server: a truncated tail is caught from the checkpoints kept in the bucket."""

from __future__ import annotations

import json
import subprocess
import sys

from sqlalchemy import text

from shipdeck.core.services.releases import create_release
from tests.support.moto_server import free_port
from tests.support.workspace import WorkspaceFixture


def test_checkpoints_in_s3_catch_a_truncated_tail(ws: WorkspaceFixture, moto_endpoint: str) -> None:
    import boto3

    bucket = f"audit-{free_port()}"
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    env = {**ws.env("alice"), "AWS_ENDPOINT_URL": moto_endpoint, "AWS_DEFAULT_REGION": "us-east-1"}
    uri = f"s3://{bucket}/shipdeck/checkpoints.jsonl"

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "shipdeck.tui.cli", "-o", "json", *args],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )

    alice = ws.as_user("alice")
    for n in range(3):
        create_release(alice, "web", f"1.{n}.0", commit=ws.shas["web"][n])
    first = cli("audit", "checkpoint", "--to", uri)
    assert first.returncode == 0, first.stderr
    create_release(alice, "web", "2.0.0")
    second = cli("audit", "checkpoint", "--to", uri)
    assert second.returncode == 0, second.stderr
    head = json.loads(second.stdout)["checkpoint"]["seq"]
    versions = s3.list_object_versions(Bucket=bucket, Prefix="shipdeck/")["Versions"]
    assert len(versions) == 2  # each checkpoint is a new object version

    ok = cli("audit", "verify", "--checkpoints", uri)
    assert ok.returncode == 0 and json.loads(ok.stdout)["checkpoints"] == 2

    with ws.base.db.write() as conn:  # truncate the tail and make the head agree
        conn.execute(text("DELETE FROM audit_event WHERE seq >= :s"), {"s": head - 1})
        last = conn.execute(
            text("SELECT seq, hash FROM audit_event ORDER BY seq DESC LIMIT 1")
        ).one()
        conn.execute(
            text("UPDATE audit_head SET seq = :s, hash = :h"), {"s": last.seq, "h": last.hash}
        )
    bad = cli("audit", "verify", "--checkpoints", uri)
    assert bad.returncode == 7
    doc = json.loads(bad.stdout)
    assert doc["ok"] is False and doc["first_bad_seq"] == head - 1
    assert "truncated" in doc["reason"]
