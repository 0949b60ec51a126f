"""Token limit stores: a real LiteLLM config file and a loopback HTTP gateway."""

from __future__ import annotations

import json
import os
import stat
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from shipdeck.adapters.token_limits import HttpGatewayLimits, LiteLLMFileLimits
from shipdeck.core.errors import AdapterError
from shipdeck.core.ports import TokenLimits
from tests.support.http import QuietHandler, serving
from tests.support.moto_server import free_port

CONFIG = """\
# LiteLLM proxy config - maintained by the platform team
model_list:
  - model_name: gpt-4o   # the main chat model
    litellm_params:
      model: azure/gpt-4o-eu
      api_key: "os.environ/AZURE_API_KEY"
      tpm: 100000   # tokens per minute
      rpm: 600
  - model_name: gpt-4o
    litellm_params:
      model: azure/gpt-4o-us
      api_key: "os.environ/AZURE_API_KEY"
      tpm: '100000'
      rpm: !!int 600
  - model_name: embedder
    litellm_params: {model: openai/text-embedding-3-small}
  - model_name: tiny
    litellm_params: {}

router_settings:
  routing_strategy: usage-based-routing   # keep
litellm_settings: {drop_params: true}
"""


@pytest.fixture()
def config(tmp_path: Path) -> Path:
    path = tmp_path / "litellm.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    path.chmod(0o600)
    return path


def test_read_and_write_keep_the_rest_of_the_file(config: Path) -> None:
    # '100000' is a string, not a limit: make the two deployments agree first.
    config.write_text(CONFIG.replace("tpm: '100000'", "tpm: 100000"), encoding="utf-8")
    store = LiteLLMFileLimits(config, "gpt-4o")
    assert store.read() == TokenLimits(tpm=100000, rpm=600)
    store.write(TokenLimits(tpm=250000, rpm=None))
    assert store.read() == TokenLimits(tpm=250000, rpm=600)
    text = config.read_text(encoding="utf-8")
    expected = CONFIG.replace("tpm: '100000'", "tpm: 100000").replace("tpm: 100000", "tpm: 250000")
    assert text == expected  # comments, quoting and other models untouched, byte for byte
    assert stat.S_IMODE(config.stat().st_mode) == 0o600


def test_missing_keys_are_added_in_block_and_flow_mappings(config: Path) -> None:
    LiteLLMFileLimits(config, "embedder").write(TokenLimits(tpm=5000, rpm=50))
    LiteLLMFileLimits(config, "tiny").write(TokenLimits(tpm=10, rpm=None))
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    by_name = {e["model_name"]: e["litellm_params"] for e in data["model_list"]}
    assert by_name["embedder"] == {"model": "openai/text-embedding-3-small", "tpm": 5000, "rpm": 50}
    assert by_name["tiny"] == {"tpm": 10}
    assert LiteLLMFileLimits(config, "embedder").read() == TokenLimits(5000, 50)
    assert data["router_settings"] == {"routing_strategy": "usage-based-routing"}


def test_block_insert_keeps_indentation(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("model_list:\n- model_name: m\n  litellm_params:\n    model: x/y\n")
    LiteLLMFileLimits(path, "m").write(TokenLimits(tpm=1, rpm=2))
    assert path.read_text() == (
        "model_list:\n- model_name: m\n  litellm_params:\n    tpm: 1\n    rpm: 2\n    model: x/y\n"
    )


def test_a_write_keeps_the_file_private(config: Path) -> None:
    """The file often holds API keys: its mode survives the write (made in place)."""
    config.chmod(0o640)
    LiteLLMFileLimits(config, "embedder").write(TokenLimits(tpm=5000, rpm=50))
    assert config.stat().st_mode & 0o777 == 0o640
    assert LiteLLMFileLimits(config, "embedder").read() == TokenLimits(5000, 50)
    assert not list(config.parent.glob("*.tmp"))  # no temporary file left behind


def test_disagreeing_or_non_numeric_values_are_reported(config: Path) -> None:
    with pytest.raises(AdapterError, match="tpm is '100000', not an integer"):
        LiteLLMFileLimits(config, "gpt-4o").read()
    config.write_text(CONFIG.replace("tpm: '100000'", "tpm: 5"), encoding="utf-8")
    with pytest.raises(AdapterError, match="deployments disagree on tpm: 100000, 5"):
        LiteLLMFileLimits(config, "gpt-4o").read()
    LiteLLMFileLimits(config, "gpt-4o").write(TokenLimits(tpm=7, rpm=None))
    assert LiteLLMFileLimits(config, "gpt-4o").read() == TokenLimits(7, 600)


@pytest.mark.parametrize("bad", [0, -5, 1.5, True, "100", float("nan")])
def test_values_that_are_not_positive_integers_are_refused(config: Path, bad: Any) -> None:
    before = config.read_bytes()
    with pytest.raises(ValueError, match="tpm must be a positive integer"):
        LiteLLMFileLimits(config, "embedder").write(TokenLimits(tpm=bad, rpm=1))
    with pytest.raises(ValueError, match="rpm must be a positive integer"):
        HttpGatewayLimits("http://127.0.0.1:9", "m", "NOPE").write(TokenLimits(tpm=1, rpm=bad))
    assert config.read_bytes() == before


def test_reload_runs_after_the_write_and_a_failure_restores(config: Path, tmp_path: Path) -> None:
    seen = tmp_path / "seen.yaml"
    copy = f"import shutil; shutil.copy({str(config)!r}, {str(seen)!r})"
    LiteLLMFileLimits(config, "embedder", reload=[sys.executable, "-c", copy]).write(
        TokenLimits(tpm=9, rpm=None)
    )
    assert "tpm: 9" in seen.read_text()  # the reload saw the new file

    before = config.read_bytes()
    failing = [sys.executable, "-c", "import sys; sys.exit('proxy: \\x1b[31mbad config\\x1b[0m')"]
    with pytest.raises(AdapterError) as info:
        LiteLLMFileLimits(config, "embedder", reload=failing).write(TokenLimits(tpm=11, rpm=None))
    assert str(info.value).endswith(
        "reload failed (exit 1: proxy: bad config); previous file restored"
    )
    assert config.read_bytes() == before
    with pytest.raises(AdapterError, match="previous file restored"):
        LiteLLMFileLimits(config, "embedder", reload=["/no/such/reload"]).write(TokenLimits(1, 1))
    assert config.read_bytes() == before


def test_unknown_model_missing_file_and_aliases(config: Path, tmp_path: Path) -> None:
    with pytest.raises(AdapterError, match="no model_list entry with model_name claude"):
        LiteLLMFileLimits(config, "claude").read()
    with pytest.raises(AdapterError, match="file not found"):
        LiteLLMFileLimits(tmp_path / "none.yaml", "m").read()
    shared = tmp_path / "alias.yaml"
    shared.write_text(
        "model_list:\n"
        "  - model_name: a\n    litellm_params: &p {model: x, tpm: 1}\n"
        "  - model_name: b\n    litellm_params: *p\n"
    )
    before = shared.read_bytes()
    with pytest.raises(AdapterError, match="cannot edit safely: litellm_params is an alias"):
        LiteLLMFileLimits(shared, "a").write(TokenLimits(tpm=2, rpm=None))
    assert shared.read_bytes() == before


# --- HTTP gateway ------------------------------------------------------------------------------

TOKEN = "s3cr3t-token-value"


@dataclass
class Gateway:
    url: str
    limits: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)
    fail_with: int | None = None
    redirect_to: str | None = None


@pytest.fixture()
def gateway() -> Iterator[Gateway]:
    state = Gateway(url="")

    class Handler(QuietHandler):
        def _reply(self, code: int, doc: Any, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(doc).encode()
            self.send_response(code)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _handle(self) -> None:
            auth = self.headers.get("Authorization")
            state.requests.append((self.command, self.path, auth))
            if state.redirect_to:
                self._reply(307, {}, {"Location": state.redirect_to + self.path})
                return
            if state.fail_with:
                self._reply(state.fail_with, {"error": f"boom, you sent {auth}"})
                return
            if auth != f"Bearer {TOKEN}":
                self._reply(401, {"error": "bad token"})
                return
            model = self.path.split("/")[3]  # /v1/models/{model}/limits
            if self.command == "PUT":
                length = int(self.headers["Content-Length"])
                state.limits[model] = json.loads(self.rfile.read(length))
            self._reply(200, state.limits.get(model, {"tpm": None, "rpm": None}))

        do_GET = do_PUT = _handle

    with serving(Handler) as base:
        state.url = base + "/v1"
        yield state


@pytest.fixture()
def token(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("GATEWAY_TOKEN", TOKEN)
    return TOKEN


def test_gateway_read_and_write(gateway: Gateway, token: str) -> None:
    gateway.limits["openai%2Fgpt-4o"] = {"tpm": 1000, "rpm": 10}
    store = HttpGatewayLimits(gateway.url, "openai/gpt-4o", "GATEWAY_TOKEN")
    assert store.read() == TokenLimits(1000, 10)
    store.write(TokenLimits(tpm=None, rpm=20))
    assert gateway.limits["openai%2Fgpt-4o"] == {"tpm": 1000, "rpm": 20}
    assert store.read() == TokenLimits(1000, 20)
    methods = [(m, p) for m, p, _ in gateway.requests]
    assert ("PUT", "/v1/models/openai%2Fgpt-4o/limits") in methods
    assert all(auth == f"Bearer {token}" for _, _, auth in gateway.requests)


def test_gateway_errors_never_show_the_token(gateway: Gateway, token: str) -> None:
    store = HttpGatewayLimits(gateway.url, "m", "GATEWAY_TOKEN")
    gateway.fail_with = 500
    with pytest.raises(AdapterError) as info:
        store.read()
    message = str(info.value)
    assert message.startswith("gateway limits m at 127.0.0.1:") and "HTTP 500" in message
    assert token not in message and "***" in message


def test_gateway_does_not_follow_redirects_with_the_token(gateway: Gateway, token: str) -> None:
    gateway.redirect_to = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(AdapterError, match="HTTP 307"):
        HttpGatewayLimits(gateway.url, "m", "GATEWAY_TOKEN").read()
    assert len(gateway.requests) == 1


def test_gateway_wrong_token_missing_env_and_unreachable(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GATEWAY_TOKEN", "wrong")
    with pytest.raises(AdapterError, match=r"HTTP 401: .*bad token"):
        HttpGatewayLimits(gateway.url, "m", "GATEWAY_TOKEN").read()
    monkeypatch.delenv("GATEWAY_TOKEN")
    with pytest.raises(AdapterError, match="environment variable GATEWAY_TOKEN is not set"):
        HttpGatewayLimits(gateway.url, "m", "GATEWAY_TOKEN").read()
    monkeypatch.setenv("GATEWAY_TOKEN", TOKEN)
    dead = HttpGatewayLimits(f"http://127.0.0.1:{free_port()}", "m", "GATEWAY_TOKEN")
    with pytest.raises(AdapterError, match=r"cannot reach: .*[Cc]onnection refused"):
        dead.read()
    assert os.environ["GATEWAY_TOKEN"] == TOKEN


def litellm_load(path: Path) -> Any:
    """What LiteLLM's proxy does to read its config (litellm 1.110.2, proxy_server.py,
    ProxyConfig._get_config_from_file): open in text mode, yaml.safe_load. litellm itself is not
    installed here (a 43 MB wheel and its proxy's ~100 dependencies for one function)."""
    with open(path) as fh:
        return yaml.safe_load(fh)


def test_a_symlinked_config_is_edited_in_place_at_its_real_path(tmp_path: Path) -> None:
    real = tmp_path / "gateway-deploy" / "litellm.yaml"
    real.parent.mkdir()
    real.write_bytes(CONFIG.replace("\n", "\r\n").encode())
    real.chmod(0o640)
    mounted = tmp_path / "container-view.yaml"  # a bind mount sees the inode, as a hard link does
    os.link(real, mounted)
    link = tmp_path / "ws" / "gateway.yaml"
    link.parent.mkdir()
    link.symlink_to(real)
    inode = real.stat().st_ino

    LiteLLMFileLimits(link, "embedder").write(TokenLimits(tpm=5000, rpm=50))

    assert link.is_symlink() and link.readlink() == real  # the link is still the link
    assert real.stat().st_ino == inode and stat.S_IMODE(real.stat().st_mode) == 0o640
    raw = mounted.read_bytes()
    assert b"\n" not in raw.replace(b"\r\n", b"")  # every line still ends in CRLF
    assert b"# LiteLLM proxy config - maintained by the platform team\r\n" in raw
    by_name = {e["model_name"]: e["litellm_params"] for e in litellm_load(mounted)["model_list"]}
    assert by_name["embedder"] == {"model": "openai/text-embedding-3-small", "tpm": 5000, "rpm": 50}
    assert LiteLLMFileLimits(link, "embedder").read() == TokenLimits(5000, 50)
    assert not list(real.parent.glob(".*tmp")) and not list(link.parent.glob(".*tmp"))


def test_a_failed_reload_restores_the_text_in_the_same_file(tmp_path: Path) -> None:
    real = tmp_path / "litellm.yaml"
    real.write_text(CONFIG)
    link = tmp_path / "gateway.yaml"
    link.symlink_to(real)
    inode = real.stat().st_ino
    fail = [sys.executable, "-c", "import sys; sys.exit('reload refused')"]
    with pytest.raises(AdapterError, match=r"reload failed .*previous file restored"):
        LiteLLMFileLimits(link, "gpt-4o", fail).write(TokenLimits(tpm=1, rpm=None))
    assert real.read_text() == CONFIG and real.stat().st_ino == inode and link.is_symlink()
