"""Settings each adapter accepts, and the check of one adapter table against them.

Kept in the domain, not in the adapters, so `config check` validates a workspace without importing
any SDK.
"""

from __future__ import annotations

from collections.abc import Container, Mapping
from typing import Any

from shipdeck.core.domain.config.collector import Collector, join
from shipdeck.core.domain.config.model import AdapterConfig

# key -> (type, required)
Schema = Mapping[str, tuple[type | tuple[type, ...], bool]]
_ANY_LIST = list
TARGET_ADAPTERS: dict[str, Schema] = {
    "local": {
        "port": (int, True),
        "blue_port": (int, False),
        "green_port": (int, False),
        "command": (_ANY_LIST, False),
        "health_path": (str, False),
        "health_timeout": ((int, float), False),
    },
    "nginx": {
        "include_file": (str, True),
        "upstream": (str, True),
        "blue_port": (int, True),
        "green_port": (int, True),
        "nginx_conf": (str, False),
        "nginx": (str, False),
        "nginx_args": (_ANY_LIST, False),
        "test": (_ANY_LIST, False),
        "reload": (_ANY_LIST, False),
        "pid_file": (str, False),
        "command": (_ANY_LIST, False),
        "url": (str, False),
        "health_path": (str, False),
        "version_path": (str, False),
        "timeout": ((int, float), False),
        "health_timeout": ((int, float), False),
        "start_timeout": ((int, float), False),
        "switch_timeout": ((int, float), False),
    },
    "aws-elb": {
        "listener_arn": (str, True),
        "blue_target_group_arn": (str, True),
        "green_target_group_arn": (str, True),
        "rule_arn": (str, False),
        "region": (str, False),
        "endpoint_url": (str, False),
        "profile": (str, False),
        "url": (str, False),
        "max_attempts": (int, False),
    },
    "command": {
        "stage": (_ANY_LIST, True),
        "health": (_ANY_LIST, True),
        "switch": (_ANY_LIST, True),
        "live_color": (_ANY_LIST, True),
        "stop_idle": (_ANY_LIST, False),
        "restart": (_ANY_LIST, False),
        "weight": (_ANY_LIST, False),
        "weight_read": (_ANY_LIST, False),
        "timeout": ((int, float), False),
        "endpoint": (str, False),
        "cwd": (str, False),
    },
}
LOG_ADAPTERS: dict[str, Schema] = {
    "file": {"path": (str, True)},
    "command": {"argv": (_ANY_LIST, True)},
    "cloudwatch": {
        "group": (str, True),
        "stream": (str, False),
        "region": (str, False),
        "endpoint_url": (str, False),
        "profile": (str, False),
    },
}
TOKEN_LIMIT_ADAPTERS: dict[str, Schema] = {
    "litellm-file": {"path": (str, True), "model": (str, True), "reload": (_ANY_LIST, False)},
    "http": {"url": (str, True), "model": (str, True), "token_env": (str, True)},
}
SOURCE_KINDS: dict[str, Schema] = {
    "hf": {"endpoint": (str, False), "token_env": (str, False), "token_file": (str, False)},
    "s3": {"endpoint_url": (str, False), "profile": (str, False), "region": (str, False)},
    "file": {},
}


def adapter_settings(
    c: Collector,
    raw: Mapping[str, Any],
    path: str,
    schemas: Mapping[str, Schema],
    what: str,
    extra: Container[str] = (),
) -> AdapterConfig | None:
    """`adapter = "..."` and the keys that adapter's schema allows; keys in `extra` are nested
    tables the caller checks itself."""
    adapter = c.get(raw, path, "adapter", str, required=True)
    if adapter is None:
        return None
    if adapter not in schemas:
        c.unknown(f"{path}.adapter", what, adapter, list(schemas))
        return None
    schema = schemas[adapter]
    c.keys({k: v for k, v in raw.items() if k not in extra}, path, {"adapter", *schema})
    settings: dict[str, Any] = {}
    for key, (kind, required) in schema.items():
        value = c.get(raw, path, key, kind, required=required)
        if value is not None:
            if isinstance(value, list) and not all(isinstance(x, str) for x in value):
                c.err(join(path, key), "must be an array of strings (an argv)")
            settings[key] = value
    return AdapterConfig(adapter, settings)
