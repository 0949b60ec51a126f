"""Model gates: what a release's model files are, what scanning them found, and what an
environment's policy makes of that.

Pure: the classifier, the licence readers and the verdict take data and return data. Scanning
happens once, at release time (core.services.model_scan), and its report lives in the manifest, so
the release digest covers it and a plan's blockers are computed from recorded facts only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, Literal

from shipdeck.core.errors import Blocker

WeightClass = Literal["safetensors", "pickle", "onnx", "gguf", "other"]
ScanMode = Literal["block", "warn"]

_SUFFIX_CLASS: dict[str, WeightClass] = {
    ".safetensors": "safetensors",
    ".bin": "pickle",  # PyTorch's legacy weights (pytorch_model.bin) are pickles
    ".pt": "pickle",
    ".pth": "pickle",
    ".pkl": "pickle",
    ".pickle": "pickle",
    ".ckpt": "pickle",
    ".joblib": "pickle",
    ".onnx": "onnx",
    ".gguf": "gguf",
}
_BY_NAME: dict[str, WeightClass] = {c: c for c in _SUFFIX_CLASS.values()}
WEIGHT_CLASSES = frozenset(_BY_NAME)
# How `os.system` pickles where the module is implemented natively: named as people know it.
_MODULE_ALIASES = {"posix": "os", "nt": "os", "__builtin__": "builtins"}


def classify(path: str) -> WeightClass:
    """The weight format a file name says (case-insensitive suffix); "other" for the rest."""
    return _SUFFIX_CLASS.get(PurePosixPath(path).suffix.lower(), "other")


@dataclass(frozen=True)
class ModelPolicy:
    """An environment's `[environments.E.models]` table. The default asks for nothing, so a
    workspace without it ships as before; findings still show as warnings."""

    require_safe_weights: bool = False
    scan: ScanMode = "warn"
    licenses: tuple[str, ...] = ()  # empty: no allow-list

    @property
    def configured(self) -> bool:
        return self != ModelPolicy()

    def as_dict(self) -> dict[str, Any]:
        return {
            "require_safe_weights": self.require_safe_weights,
            "scan": self.scan,
            "licenses": sorted(self.licenses),
        }


@dataclass(frozen=True)
class Finding:
    """One thing a scan found in one file: a dangerous import, a file left unscanned, or an
    issue the Hub's own scan reports."""

    path: str
    kind: Literal["import", "unscanned", "hub"]
    detail: str  # "posix.system", "over the 1 MiB scan limit", "unsafe"

    @property
    def sentence(self) -> str:
        if self.kind == "import":
            module, _, name = self.detail.rpartition(".")
            return f"{self.path} imports {_MODULE_ALIASES.get(module, module)}.{name}"
        if self.kind == "unscanned":
            return f"{self.path} was not scanned ({self.detail})"
        return f"{self.path} is flagged {self.detail} by the Hub's scan"

    def as_list(self) -> list[str]:
        return [self.path, self.kind, self.detail]


@dataclass(frozen=True)
class ModelReport:
    """What release time learnt about one artifact: each file's class, what the scan found,
    the licence the card or LICENSE names, and the Hub's own scan status when it gave one."""

    classes: tuple[tuple[str, WeightClass], ...]
    findings: tuple[Finding, ...] = ()
    license: str | None = None
    license_source: str | None = None
    hub_scan: Mapping[str, Any] | None = None

    def weights(self, cls: WeightClass) -> list[str]:
        return [p for p, c in self.classes if c == cls]

    def as_dict(self) -> dict[str, Any]:
        return {
            "classes": [list(c) for c in self.classes],
            "findings": [f.as_list() for f in self.findings],
            "license": self.license,
            "license_source": self.license_source,
            "hub_scan": dict(self.hub_scan) if self.hub_scan is not None else None,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ModelReport:
        return cls(
            tuple((str(p), _weight_class(c)) for p, c in d.get("classes", [])),
            tuple(Finding(str(p), k, str(x)) for p, k, x in d.get("findings", [])),
            d.get("license"),
            d.get("license_source"),
            d.get("hub_scan"),
        )

    def view(self) -> dict[str, Any]:
        """The JSON front ends show: classes by file, findings as sentences."""
        return {
            "files": [{"path": p, "class": c} for p, c in self.classes],
            "findings": [
                {"path": f.path, "kind": f.kind, "detail": f.detail, "message": f.sentence}
                for f in self.findings
            ],
            "license": self.license,
            "license_source": self.license_source,
            "hub_scan": dict(self.hub_scan) if self.hub_scan is not None else None,
        }


def _weight_class(text: Any) -> WeightClass:
    return _BY_NAME.get(str(text), "other")


def is_model(classes: Sequence[tuple[str, WeightClass]]) -> bool:
    """An artifact is a model when at least one of its files is weights."""
    return any(c in WEIGHT_CLASSES for _, c in classes)


# --- licences --------------------------------------------------------------------------------

_FRONT_MATTER = re.compile(r"\A---\r?\n(.*?)\r?\n---\r?\n", re.DOTALL)
# First lines of the licence texts teams ship most, as (pattern, SPDX-style id the Hub uses).
_LICENSE_TEXTS = (
    (re.compile(r"apache license\s+version 2\.0", re.I), "apache-2.0"),
    (re.compile(r"\bmit license\b|permission is hereby granted, free of charge", re.I), "mit"),
    (re.compile(r"bsd 3-clause", re.I), "bsd-3-clause"),
    (re.compile(r"gnu general public license\s+version 3", re.I), "gpl-3.0"),
    (re.compile(r"creative commons attribution 4\.0", re.I), "cc-by-4.0"),
)


def license_from_card(text: str) -> str | None:
    """`license:` from a model card's YAML front matter (a string, or the first of a list)."""
    import yaml

    match = _FRONT_MATTER.match(text)
    if match is None:
        return None
    try:
        meta = yaml.safe_load(match.group(1))
    except yaml.YAMLError:
        return None
    value = meta.get("license") if isinstance(meta, dict) else None
    if isinstance(value, list) and value:
        value = value[0]
    return str(value).strip().lower() if isinstance(value, str | int | float) and value else None


def license_from_text(text: str) -> str | None:
    """Which well-known licence a LICENSE file holds, from its opening lines."""
    head = " ".join(text[:2000].split())
    return next((spdx for pattern, spdx in _LICENSE_TEXTS if pattern.search(head)), None)


# --- the verdict -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelFact:
    """One model artifact of a release in a plan."""

    app: str
    version: str
    artifact: str
    report: ModelReport


def gates(env: str, policy: ModelPolicy, facts: Sequence[ModelFact]) -> list[Blocker]:
    """Every model gate `facts` meet in `env`, blocking ones as `unsafe_weights`,
    `scan_findings` and `license_not_allowed`, and findings the policy only warns about as
    `scan_warning` (callers split them with `is_warning`)."""
    out: list[Blocker] = []
    for f in facts:
        where = {"app": f.app, "version": f.version, "artifact": f.artifact}
        who = f"{f.app} {f.version}"
        pickles = f.report.weights("pickle")
        if policy.require_safe_weights and pickles:
            out.append(
                Blocker(
                    "unsafe_weights",
                    f"{who}: {', '.join(pickles)} {'is' if len(pickles) == 1 else 'are'} "
                    f"pickle-based weights: blocked in {env} (require_safe_weights: ship "
                    "safetensors)",
                    {**where, "files": pickles},
                )
            )
        for finding in f.report.findings:
            detail = {
                **where,
                "path": finding.path,
                "finding": finding.kind,
                "what": finding.detail,
            }
            if policy.scan == "block":
                out.append(
                    Blocker("scan_findings", f"{who}: {finding.sentence}: blocked in {env}", detail)
                )
            else:
                out.append(
                    Blocker(
                        "scan_warning",
                        f'{who}: {finding.sentence}: allowed in {env} (scan = "warn")',
                        detail,
                    )
                )
        if policy.licenses and f.report.license not in policy.licenses:
            allowed = ", ".join(sorted(policy.licenses))
            said = (
                f"licence '{f.report.license}' ({f.report.license_source})"
                if f.report.license
                else "no licence found (no license: in the README.md front matter, no LICENSE)"
            )
            out.append(
                Blocker(
                    "license_not_allowed",
                    f"{who} artifact {f.artifact}: {said} is not allowed in {env} "
                    f"(allowed: {allowed})",
                    {**where, "license": f.report.license, "allowed": sorted(policy.licenses)},
                )
            )
    return out


def is_warning(blocker: Blocker) -> bool:
    return blocker.kind == "scan_warning"
