"""Model gates end to end through the CLI: a pickle that imports os.system, built here and never
loaded, is served by the loopback Hub, by S3 on moto's server and from a file:// directory; prod
(`scan = "block"`) refuses to run it and says why, staging (`scan = "warn"`) warns and ships it,
and a safetensors-only release ships to prod."""

from __future__ import annotations

import json
import os
import pickle
import struct
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.cli import Ran, shipdeck
from tests.support.fake_hub import FakeHub
from tests.support.workspace import WorkspaceFixture

CARD = "---\nlicense: apache-2.0\ntags: [chat]\n---\n\n# Model\n\nA small model.\n"
BLOCKED = "model-server 1.0.0: model.bin imports os.system: blocked in prod"
WARNED = 'model-server 1.0.0: model.bin imports os.system: allowed in staging (scan = "warn")'


class _Exploit:
    """Unpickling this would run `echo`: it is only ever pickled (dumps), never loaded."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("echo",))


def malicious_pickle() -> bytes:
    return pickle.dumps(_Exploit())


def safetensors(seed: int) -> bytes:
    """A valid safetensors file: an 8-byte header length, the JSON header, one F32 tensor."""
    header = json.dumps(
        {"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "__metadata__": {}}
    ).encode()
    return struct.pack("<Q", len(header)) + header + struct.pack("<2f", seed, seed + 1)


BAD = {"README.md": CARD.encode(), "config.json": b"{}", "model.bin": malicious_pickle()}
GOOD = {"README.md": CARD.encode(), "config.json": b"{}", "model.safetensors": safetensors(1)}


def toml(root: Path, hub: str, s3: str) -> str:
    targets = ""
    for env in ("staging", "prod"):
        state = root / "switch" / env
        state.mkdir(parents=True)
        for color in ("blue", "green"):
            (state / color).write_text(color)
        (state / "live").write_text("")
        targets += (
            f"\n[apps.model-server.targets.{env}]\n"
            'adapter = "command"\nstage = ["true"]\nhealth = ["true"]\n'
            f'switch = ["cp", "{state}/{{color}}", "{state}/live"]\n'
            f'live_color = ["cat", "{state}/live"]\n'
        )
    return f"""
[workspace]
name = "gates"
model_scan_limit_mib = 1

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

[environments.staging.models]
scan = "warn"

[environments.prod.models]
require_safe_weights = true
scan = "block"
licenses = ["apache-2.0", "mit"]

[apps.model-server]
repo = "repos/model-server"
{targets}"""


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeHub]:
    from huggingface_hub import constants

    for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-hf-token"))
    with FakeHub() as h:
        yield h


@pytest.fixture
def gates(ws: WorkspaceFixture, hub: FakeHub, moto_endpoint: str) -> WorkspaceFixture:
    ws.write_config(toml(ws.root, hub.endpoint, moto_endpoint))
    return ws


Publish = Callable[[str, dict[str, bytes]], str]


def publish_file(ws: WorkspaceFixture) -> Publish:
    def put(name: str, files: dict[str, bytes]) -> str:
        folder = ws.root / "models" / name
        folder.mkdir(parents=True)
        for path, content in files.items():
            (folder / path).write_bytes(content)
        return f"file://models/{name}"

    return put


def publish_hub(hub: FakeHub) -> Publish:
    def put(name: str, files: dict[str, bytes]) -> str:
        repo = hub.add_repo(f"acme/{name}")
        repo.commit(files)
        if "model.bin" in files:
            repo.scan = {"model.bin": "unsafe", "README.md": "safe"}
        return f"hf://acme/{name}@main"

    return put


def publish_s3(endpoint: str, bucket: str) -> Publish:
    import boto3

    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})

    def put(name: str, files: dict[str, bytes]) -> str:
        for path, content in files.items():
            s3.put_object(Bucket=bucket, Key=f"{name}/{path}", Body=content)
        return f"s3://{bucket}/{name}/"

    return put


def publisher(kind: str, ws: WorkspaceFixture, hub: FakeHub, moto: str) -> Publish:
    if kind == "file":
        return publish_file(ws)
    if kind == "hub":
        return publish_hub(hub)
    return publish_s3(moto, f"gates-{os.urandom(4).hex()}")


def run(ws: WorkspaceFixture, *args: str) -> Ran:
    return shipdeck(*args, env=ws.env("alice"))


def plan(ws: WorkspaceFixture, env: str, item: str) -> dict[str, object]:
    made = run(ws, "plan", "create", "--env", env, item, "-o", "json")
    assert made.code == 0, made.err
    doc: dict[str, object] = made.json()["plan"]
    return doc


@pytest.mark.parametrize("kind", ["file", "hub", "s3"])
def test_malicious_pickle_is_blocked_in_prod_warned_in_staging_and_safetensors_pass(
    kind: str, gates: WorkspaceFixture, hub: FakeHub, moto_endpoint: str
) -> None:
    put = publisher(kind, gates, hub, moto_endpoint)
    bad_uri = put("bad", BAD)

    created = run(gates, "release", "create", "model-server", "1.0.0", "--artifact",
                  f"model={bad_uri}", "-o", "json")  # fmt: skip
    assert created.code == 0, created.err
    model = created.json()["release"]["artifacts"][0]["model"]
    assert {"path": "model.bin", "class": "pickle"} in model["files"]
    assert {
        "path": "model.bin",
        "kind": "import",
        "detail": "posix.system",
        "message": "model.bin imports os.system",
    } in model["findings"]
    assert (model["license"], model["license_source"]) == ("apache-2.0", "README.md")
    if kind == "hub":  # the Hub's own scan is recorded as it reported it
        assert model["hub_scan"] == {
            "scansDone": True,
            "filesWithIssues": [{"path": "model.bin", "level": "unsafe"}],
        }
        assert "model.bin is flagged unsafe by the Hub's scan" in [
            f["message"] for f in model["findings"]
        ]

    shown = run(gates, "release", "show", "model-server", "1.0.0")
    assert "    finding  model.bin imports os.system" in shown.out.splitlines()

    prod = plan(gates, "prod", "model-server@1.0.0")
    blockers = {(b["kind"], b["message"]) for b in prod["blockers"]}  # type: ignore[attr-defined]
    assert ("scan_findings", BLOCKED) in blockers
    assert any(k == "unsafe_weights" for k, _ in blockers)
    table = run(gates, "plan", "show", str(prod["id"]))
    assert f"    - [scan_findings] {BLOCKED}" in table.out.splitlines()
    refused = run(gates, "plan", "run", str(prod["id"]), "-o", "json")
    assert refused.code == 3
    assert BLOCKED in [b["message"] for b in refused.json()["error"]["blockers"]]

    staging = plan(gates, "staging", "model-server@1.0.0")
    assert staging["blockers"] == []
    assert WARNED in [w["message"] for w in staging["warnings"]]  # type: ignore[attr-defined]
    shipped = run(gates, "plan", "run", str(staging["id"]), "--wait")
    assert shipped.code == 0, shipped.err
    assert f"warning: {WARNED}" in shipped.err_lines

    good_uri = put("good", GOOD)
    assert run(gates, "release", "create", "model-server", "2.0.0", "--artifact",
               f"model={good_uri}").code == 0  # fmt: skip
    clean = plan(gates, "prod", "model-server@2.0.0")
    assert clean["blockers"] == [] and clean["warnings"] == []
    done = run(gates, "plan", "run", str(clean["id"]), "--wait")
    assert done.code == 0, done.err


def test_unscanned_and_unlicensed_weights_block_and_say_why(gates: WorkspaceFixture) -> None:
    """Over the scan limit (1 MiB here) a pickle is recorded unscanned, which blocks where scan
    is "block"; a licence outside the allow-list blocks naming it; a LICENSE text counts."""
    put = publish_file(gates)
    big = {"weights.pt": pickle.dumps(b"\0" * (1 << 20)), "model.safetensors": safetensors(2)}
    big_uri = put("big", {**big, "README.md": b"---\nlicense: llama2\n---\n"})
    created = run(gates, "release", "create", "model-server", "1.0.0", "--artifact",
                  f"model={big_uri}")  # fmt: skip
    assert created.code == 0, created.err
    assert any(
        line.startswith("artifact model: weights.pt was not scanned (1 MB, over the 1 MiB")
        and line.endswith("(recorded in the manifest)")
        for line in created.err_lines
    ), created.err
    blockers = {
        b["kind"]: b["message"] for b in plan(gates, "prod", "model-server@1.0.0")["blockers"]
    }  # type: ignore[attr-defined]
    assert blockers["scan_findings"] == (
        "model-server 1.0.0: weights.pt was not scanned (1 MB, over the 1 MiB scan limit: raise "
        "workspace.model_scan_limit_mib to scan it): blocked in prod"
    )
    assert blockers["license_not_allowed"] == (
        "model-server 1.0.0 artifact model: licence 'llama2' (README.md) is not allowed in prod "
        "(allowed: apache-2.0, mit)"
    )

    mit = "MIT License\n\nCopyright (c) 2026 Acme\n\nPermission is hereby granted, free of charge"
    ok_uri = put("mit", {"model.safetensors": safetensors(3), "LICENSE": mit.encode()})
    assert run(gates, "release", "create", "model-server", "2.0.0", "--artifact",
               f"model={ok_uri}").code == 0  # fmt: skip
    assert plan(gates, "prod", "model-server@2.0.0")["blockers"] == []


def test_a_bad_model_policy_is_a_config_error_naming_its_key(gates: WorkspaceFixture) -> None:
    text = (gates.root / "shipdeck.toml").read_text()
    gates.write_config(text.replace('scan = "block"', 'scan = "blok"'))
    checked = run(gates, "config", "check")
    assert checked.code == 4
    assert (
        "shipdeck.toml: environments.prod.models.scan: must be 'block' or 'warn', not 'blok'"
        in checked.err
    )
