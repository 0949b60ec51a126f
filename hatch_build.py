"""Build hook: the wheel maps the repository's core/, tui/ and adapters/ into the `shipdeck` package.

The folders stay at the repository root, where people look for them; shipdeck/ links them in for
editable installs and the tests. Wheels and sdists copy the real folders instead of following the
links (hatchling's walk visits each directory once, so followed links would drop whichever of the
two paths it reached second).
"""

from __future__ import annotations

from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

LAYERS = ("core", "tui", "adapters")


class LayersIntoPackage(BuildHookInterface):  # type: ignore[misc]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if version == "editable":
            return  # the links in shipdeck/ serve the editable install
        into = "shipdeck/" if self.target_name == "wheel" else ""
        for layer in LAYERS:
            build_data["force_include"][layer] = f"{into}{layer}"
