"""A release pinning a Hub model and S3 objects ships to prod through a real nginx switch, and
status and release diff say what changed in the model and the objects.

Real parts throughout: git repositories, the Hub's API shapes on loopback, moto's S3 server over
HTTP, nginx with its graceful reload, demo-app processes, SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from shipdeck.core.services.context import SystemClock
from shipdeck.core.services.releases import create_release, diff_releases
from shipdeck.core.services.runs import deploy
from shipdeck.core.services.status import status
from tests.support.fake_hub import FakeHub
from tests.support.moto_server import free_port
from tests.support.nginx import nginx_front, require_nginx
from tests.support.workspace import WorkspaceFixture

TOML = """
[workspace]
name = "models"

[identity]
allow_env_actor = true
delegators = ["*"]

[sources.hub]
kind = "hf"
endpoint = "{hub}"

[sources.objects]
kind = "s3"
endpoint_url = "{s3}"
region = "us-east-1"

[environments.prod]

[apps.chat-api]
repo = "repos/chat-api"

[apps.chat-api.artifacts.model]
uri = "hf://acme/chat-model@main"
source = "hub"

[apps.chat-api.artifacts.prompts]
uri = "s3://{bucket}/chat/"
source = "objects"

[apps.chat-api.targets.prod]
adapter = "nginx"
include_file = "{include}"
upstream = "{upstream}"
blue_port = {blue}
green_port = {green}
nginx = "{nginx}"
nginx_conf = "{conf}"
nginx_args = ["-p", "{prefix}", "-e", "stderr"]
url = "{url}"
"""


def front_version(url: str) -> str:
    with urllib.request.urlopen(url + "/version", timeout=5) as resp:
        return str(resp.read().decode())


@pytest.fixture()
def world(ws: WorkspaceFixture, moto_endpoint: str, tmp_path: Path) -> Iterator[dict[str, object]]:
    import boto3

    binary = require_nginx()
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    bucket = f"prompts-{free_port()}"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=bucket, Key="chat/system.txt", Body=b"You are helpful.")
    blue, green = free_port(), free_port()
    with FakeHub() as hub, nginx_front(binary, tmp_path / "nginx", free_port(), blue) as front:
        repo = hub.add_repo("acme/chat-model")
        repo.commit({"config.json": "{}", "model.safetensors": b"w" * 1_000_000}, message="v1")
        ws.write_config(
            TOML.format(
                hub=hub.endpoint,
                s3=moto_endpoint,
                bucket=bucket,
                include=front.include,
                upstream=front.upstream,
                blue=blue,
                green=green,
                nginx=binary,
                conf=front.conf,
                prefix=front.prefix,
                url=front.url,
            )
        )
        ctx = replace(ws.as_user("alice"), clock=SystemClock())
        try:
            yield {"ctx": ctx, "hub": repo, "s3": s3, "bucket": bucket, "url": front.url}
        finally:
            from shipdeck.adapters.nginx import NginxTarget

            t = ctx.config.apps["chat-api"].targets["prod"]
            NginxTarget(
                "chat-api", "prod", t.settings, ws.root / ".shipdeck/targets/chat-api/prod"
            ).teardown()


def test_model_and_objects_ship_through_nginx_and_show_in_status_and_diff(
    ws: WorkspaceFixture, world: dict[str, object]
) -> None:
    ctx = world["ctx"]
    hub, s3, bucket = world["hub"], world["s3"], world["bucket"]
    first = create_release(ctx, "chat-api", "1.0.0", commit=ws.shas["chat-api"][3]).release  # type: ignore[arg-type]
    pinned = {a.name: a for a in first.manifest.artifacts}
    assert pinned["model"].resolved == f"hf://acme/chat-model@{hub.branches['main']}"  # type: ignore[attr-defined]
    assert "?sha256=" in (pinned["prompts"].resolved or "")

    result = deploy(ctx, "chat-api", "1.0.0", "prod")  # type: ignore[arg-type]
    assert result.ok, result.as_dict()
    assert front_version(world["url"]) == "1.0.0"  # type: ignore[arg-type]

    # The model gains a tokenizer and new weights; the prompts change and gain a file.
    hub.commit({"model.safetensors": b"w" * 1_200_000, "tokenizer.json": b"t" * 500}, message="v2")  # type: ignore[attr-defined]
    s3.put_object(Bucket=bucket, Key="chat/system.txt", Body=b"You are concise.")  # type: ignore[attr-defined]
    s3.put_object(Bucket=bucket, Key="chat/safety.txt", Body=b"Refuse harm.")  # type: ignore[attr-defined]
    create_release(ctx, "chat-api", "1.1.0")  # type: ignore[arg-type]

    cell = status(ctx, env="prod")[0].cells[0]  # type: ignore[arg-type]
    changes = {a.name: a for a in cell.artifacts}
    assert changes["model"].summary == "model changed: 2 files (1 added, 1 changed), +200 kB"
    assert changes["prompts"].summary.startswith("prompts changed: 2 files (1 added, 1 changed)")
    diff = diff_releases(ctx, "chat-api", "1.0.0", "1.1.0")  # type: ignore[arg-type]
    assert [a.name for a in diff.artifacts] == ["model", "prompts"]
    assert diff.artifacts[0].diff.added == ("tokenizer.json",)
    assert len(diff.commits) == len(ws.shas["chat-api"]) - 4

    # The CLI shows the same, as JSON a script can read.
    env = {**ws.env("alice"), "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    out = subprocess.run(
        [sys.executable, "-m", "shipdeck.tui.cli", "-o", "json", "status", "--env", "prod"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    doc = json.loads(out)["apps"][0]["environments"][0]
    assert doc["deployed"]["version"] == "1.0.0" and doc["latest"]["version"] == "1.1.0"
    assert {a["name"] for a in doc["artifact_changes"]} == {"model", "prompts"}

    assert deploy(ctx, "chat-api", "1.1.0", "prod").ok  # type: ignore[arg-type]
    assert front_version(world["url"]) == "1.1.0"  # type: ignore[arg-type]
    after = status(ctx, env="prod")[0].cells[0]  # type: ignore[arg-type]
    assert after.deployed is not None and after.deployed.version == "1.1.0" and not after.artifacts
