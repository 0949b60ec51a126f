"""The workspace policy (shipdeck.toml) as typed, validated data.

Validation collects every problem with the file name and a key path
(`apps.chat-api.depends_on[0]: unknown app 'modle-server'`) instead of stopping at the first, so
one `shipdeck config check` run shows all there is to fix.

Where things live: model.py (the dataclasses every service reads), parse.py (parse_config, the
entry point), collector.py (typed reads that record problems), one module per top-level table
(identity.py for [identity] and [roles], windows.py for [windows] and [freezes], environments.py,
sources.py, apps.py, notifications.py) and schemas.py (the settings each adapter accepts).
Callers import from the package: `from shipdeck.core.domain.config import WorkspaceConfig`.
"""

from shipdeck.core.domain.config.identity import name_problem
from shipdeck.core.domain.config.model import (
    ENV_REF,
    IDENTITY_SOURCES,
    NOTIFY_EVENTS,
    PERMISSIONS,
    AdapterConfig,
    App,
    ApprovalPolicy,
    ArtifactConfig,
    ChecklistItem,
    Environment,
    IdentityConfig,
    Notification,
    Role,
    Source,
    TargetConfig,
    WorkspaceConfig,
)
from shipdeck.core.domain.config.parse import parse_config
from shipdeck.core.domain.config.schemas import (
    LOG_ADAPTERS,
    SOURCE_KINDS,
    TARGET_ADAPTERS,
    TOKEN_LIMIT_ADAPTERS,
)

__all__ = [
    "ENV_REF",
    "IDENTITY_SOURCES",
    "LOG_ADAPTERS",
    "NOTIFY_EVENTS",
    "PERMISSIONS",
    "SOURCE_KINDS",
    "TARGET_ADAPTERS",
    "TOKEN_LIMIT_ADAPTERS",
    "AdapterConfig",
    "App",
    "ApprovalPolicy",
    "ArtifactConfig",
    "ChecklistItem",
    "Environment",
    "IdentityConfig",
    "Notification",
    "Role",
    "Source",
    "TargetConfig",
    "WorkspaceConfig",
    "name_problem",
    "parse_config",
]
