"""`shipdeck demo`: a self-contained workspace with real git history, built through the services.

Everything goes through the same services a person would use (with the demo users as actors and
a clock walked through the past weeks), so the audit log it leaves verifies like any other.

Where things live: build.py (build_demo), history.py (the replayed weeks), users.py (the people),
content.py (apps, commit subjects, artifacts), repos.py (git), files.py (shipdeck.toml, gateway
configs, the demo marker) and stop.py (`demo stop`: what is still running and ending it).
"""

from shipdeck.core.demo.build import build_demo
from shipdeck.core.demo.content import APPS, ARTIFACTS, DemoApp, write_artifact
from shipdeck.core.demo.files import GATEWAY_YAML, MARKER, demo_toml, free_ports
from shipdeck.core.demo.history import as_user
from shipdeck.core.demo.repos import make_repo
from shipdeck.core.demo.stop import (
    DemoProcess,
    demo_root,
    running_processes,
    still_running_notice,
    stop_demo,
)
from shipdeck.core.demo.users import DEMO_USERS, ROLE_DUTIES, DemoUser, demo_users

__all__ = [
    "APPS",
    "ARTIFACTS",
    "DEMO_USERS",
    "GATEWAY_YAML",
    "MARKER",
    "ROLE_DUTIES",
    "DemoApp",
    "DemoProcess",
    "DemoUser",
    "as_user",
    "build_demo",
    "demo_root",
    "demo_toml",
    "demo_users",
    "free_ports",
    "make_repo",
    "running_processes",
    "still_running_notice",
    "stop_demo",
    "write_artifact",
]
