"""shipdeck: a release console for AI-enabled apps.

The import package every installed module lives under. In the repository the three layers stay
visible at the root (core/, tui/, adapters/); this folder links them in, so the wheel, an editable
install and the tests all import the same names (`shipdeck.core`, ...) and the distribution claims
no generic top-level name such as `core` or `adapters`.
"""

__version__ = "0.2.0"
