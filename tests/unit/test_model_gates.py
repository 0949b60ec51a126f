"""The pure model-gate rules: classifying files, reading licences, and each environment's verdict."""

from __future__ import annotations

import pytest

from shipdeck.core.domain.config import Environment
from shipdeck.core.domain.model_gates import (
    Finding,
    ModelFact,
    ModelPolicy,
    ModelReport,
    classify,
    gates,
    is_model,
    license_from_card,
    license_from_text,
)
from shipdeck.core.domain.plan import policy_snapshot
from shipdeck.core.domain.policy import PlanFacts, model_blockers, model_warnings


@pytest.mark.parametrize(
    ("path", "cls"),
    [
        ("model.safetensors", "safetensors"),
        ("shards/model-00001-of-00002.SafeTensors", "safetensors"),
        ("pytorch_model.bin", "pickle"),
        ("ckpt/last.ckpt", "pickle"),
        ("weights.pt", "pickle"),
        ("weights.pth", "pickle"),
        ("scaler.pkl", "pickle"),
        ("model.onnx", "onnx"),
        ("llama-q4_k_m.gguf", "gguf"),
        ("config.json", "other"),
        ("README.md", "other"),
        ("bin", "other"),
        ("model.bin.md", "other"),
    ],
)
def test_classify_by_suffix(path: str, cls: str) -> None:
    assert classify(path) == cls


def test_an_artifact_is_a_model_when_any_file_is_weights() -> None:
    assert is_model([("config.json", "other"), ("model.onnx", "onnx")])
    assert not is_model([("eval.jsonl", "other"), ("README.md", "other")])


def test_licence_from_card_front_matter() -> None:
    assert license_from_card("---\nlicense: Apache-2.0\n---\n# x\n") == "apache-2.0"
    assert license_from_card("---\nlicense:\n  - mit\n  - other\n---\n") == "mit"
    assert license_from_card("# no front matter\nlicense: mit\n") is None
    assert license_from_card("---\nlicense: [unclosed\n---\n") is None
    assert license_from_card("---\ntags: [a]\n---\n") is None


def test_licence_from_text() -> None:
    assert license_from_text("                 Apache License\n   Version 2.0, January 2004") == (
        "apache-2.0"
    )
    assert license_from_text("MIT License\n\nCopyright (c) 2026") == "mit"
    assert license_from_text("All rights reserved.") is None


REPORT = ModelReport(
    classes=(("model.bin", "pickle"), ("model.safetensors", "safetensors")),
    findings=(Finding("model.bin", "import", "posix.system"),),
    license="llama2",
    license_source="README.md",
)
FACT = ModelFact("model-server", "1.2.0", "model", REPORT)


def test_block_mode_blocks_with_the_finding_in_one_sentence() -> None:
    policy = ModelPolicy(require_safe_weights=True, scan="block", licenses=("mit",))
    found = {b.kind: b.message for b in gates("prod", policy, [FACT])}
    assert found == {
        "unsafe_weights": "model-server 1.2.0: model.bin is pickle-based weights: blocked in prod "
        "(require_safe_weights: ship safetensors)",
        "scan_findings": "model-server 1.2.0: model.bin imports os.system: blocked in prod",
        "license_not_allowed": "model-server 1.2.0 artifact model: licence 'llama2' (README.md) "
        "is not allowed in prod (allowed: mit)",
    }


def test_warn_mode_and_the_default_policy_only_warn() -> None:
    for policy in (ModelPolicy(scan="warn"), ModelPolicy()):
        env = Environment("staging", 0, models=policy)
        plan = PlanFacts("p-1", "staging", "sha256:x", "alice", (), (), models=(FACT,))
        assert model_blockers(plan, env) == []
        assert [w.message for w in model_warnings(plan, env)] == [
            'model-server 1.2.0: model.bin imports os.system: allowed in staging (scan = "warn")'
        ]


def test_a_report_round_trips_through_the_manifest_form() -> None:
    assert ModelReport.from_dict(REPORT.as_dict()) == REPORT


def test_the_model_policy_is_signed_off_only_where_it_is_set() -> None:
    """Approvals bind to the policy snapshot: setting model gates changes it, while
    environments without them keep the digests they had."""
    plain = policy_snapshot(Environment("prod", 1))
    gated = policy_snapshot(Environment("prod", 1, models=ModelPolicy(scan="block")))
    assert "models" not in plain
    assert gated["models"] == {"require_safe_weights": False, "scan": "block", "licenses": []}
