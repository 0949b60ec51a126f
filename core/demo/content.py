"""The demo's apps (with their dependencies and commit subjects) and the artifacts their releases
carry, written as real file:// directories."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class DemoApp:
    name: str
    depends_on: tuple[str, ...]
    owner: str
    subjects: tuple[str, ...]


APPS = (
    DemoApp(
        "model-server",
        (),
        "ml-platform",
        (
            "Serve quantized weights by default",
            "Add /health readiness probe",
            "Batch requests up to 16 prompts",
            "Pin tokenizer to model revision",
            "Expose tokens-per-minute metric",
            "Fix warm-up on cold start",
            "Stream responses over SSE",
            "Cap context window at 8k tokens",
            "Retry Hub downloads with backoff",
            "Log model revision at start",
        ),
    ),
    DemoApp(
        "chat-api",
        ("model-server",),
        "assistant",
        (
            "Add conversation history endpoint",
            "Validate max_tokens per tenant",
            "Switch to model-server streaming",
            "Rate-limit by API key",
            "Add moderation pre-check",
            "Return usage in every response",
            "Fix timeout on long prompts",
            "Cache system prompts",
            "Add /version endpoint",
            "Tenant-level token limits",
            "Structured error bodies",
            "Drop legacy v0 routes",
        ),
    ),
    DemoApp(
        "web",
        ("chat-api",),
        "frontend",
        (
            "New chat layout",
            "Show token usage per message",
            "Dark mode",
            "Keyboard shortcuts for send and stop",
            "Render markdown safely",
            "Retry failed sends",
            "Accessibility: focus order",
            "Copy code button",
        ),
    ),
    DemoApp(
        "embedder",
        ("model-server",),
        "ml-platform",
        (
            "Batch embeddings endpoint",
            "Normalize vectors",
            "Add dimension check",
            "Warm cache on deploy",
            "Expose queue depth",
        ),
    ),
)


# Artifacts the demo's releases carry, as real file:// directories it writes (app -> name, kind).
ARTIFACTS = {
    "model-server": ("model", "models"),
    "embedder": ("model", "models"),
    "chat-api": ("eval-data", "data"),
}


def _blob(seed: str, size: int) -> bytes:
    """`size` bytes that depend on `seed`: different weights per version, built in microseconds."""
    block = hashlib.sha256(seed.encode()).digest()
    return (block * (size // len(block) + 1))[:size]


def write_artifact(root: Path, app: str, version: str, n: int) -> dict[str, str]:
    """The artifact directory of `app` `version` (the n-th release), as --artifact pairs.

    Models grow by a few KB a release and change their tokenizer every other release; the eval
    data set gains rows. Small, so the demo builds in seconds, yet every diff has something to say.
    """
    if app not in ARTIFACTS:
        return {}
    name, kind = ARTIFACTS[app]
    folder = Path(kind) / app / version
    path = root / folder
    path.mkdir(parents=True, exist_ok=True)
    if kind == "models":
        config = {"model_type": app, "hidden_size": 256 * (1 + n // 2), "revision": version}
        (path / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        (path / "model.safetensors").write_bytes(_blob(f"{app}@{version}", 4000 + 1500 * n))
        (path / "tokenizer.json").write_bytes(_blob(f"{app}-tok-{n // 2}", 1200 + 100 * (n // 2)))
        # the model card: its licence is what prod's model gate allows (or not)
        card = f"---\nlicense: apache-2.0\n---\n# {app} {version}\n"
        (path / "README.md").write_text(card)
    else:
        rows = [
            {"id": i, "prompt": f"question {i}", "expected": f"answer {i}"} for i in range(20 * n)
        ]
        (path / "eval.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        (path / "README.md").write_text(f"# {app} evaluation set {version}\n")
    return {name: f"file://{folder.as_posix()}"}
