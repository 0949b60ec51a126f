"""The commented starter workspace written by `shipdeck init`."""

STARTER_TOML = """\
# shipdeck.toml: the release policy of this workspace. Keep it in version control.
# Validate with `shipdeck config check`; every error names this file and the key path.

[workspace]
name = "my-team"
# The one database of this workspace. When set, shipdeck never creates another one beside it;
# ${NAME} is taken from the environment, so the password stays out of this file.
# database = "postgresql://shipdeck:${SHIPDECK_DB_PASSWORD}@db.internal/shipdeck"
# Default: SQLite in .shipdeck/state.db ('shipdeck init --shared GROUP' shares it on one host).

[identity]
# Who acts is the kernel's user (never USER/LOGNAME). SHIPDECK_ACTOR is delegation: honoured
# only for the OS users named in delegators (CI runners), refused (exit 4) for anyone else.
# Records keep both names.
allow_env_actor = false
# delegators = ["ci-runner"]
# default_actor = "alice"        # who a delegator acts as when SHIPDECK_ACTOR is unset
# source = "database"            # PostgreSQL: the actor is session_user (see 'shipdeck db roles')

# Roles name people and what they may do. Permissions: release.create, plan.create, plan.check,
# plan.approve, plan.run, plan.abort, deploy, rollback, override, reconcile, task.logs,
# task.restart, task.token-limit, audit.checkpoint, workspace.admin (db upgrade, db roles,
# init --shared, doctor --fix), or "*". A role with no permissions is read-only.
[roles.release-managers]
users = ["alice"]
permissions = ["*"]

[roles.approvers]
users = ["bob", "carol"]
permissions = ["plan.approve", "plan.check"]

[roles.auditors]
users = ["erin"]
permissions = []

# Windows: cron start + duration (elapsed) or end = "Mon 07:00" (local wall clock), in an IANA time
# zone. kind = "allow" (only then) or "deny" (never then). DST rules: docs/windows.md.
[windows.business-hours]
cron = "0 9 * * 1-5"
duration = "8h"
timezone = "Europe/Berlin"
kind = "allow"

# Freezes: one-off periods when nothing ships.
[freezes.year-end]
start = 2026-12-22T00:00:00+01:00
end = 2027-01-04T00:00:00+01:00
reason = "year-end freeze"

# Environments, in lifecycle order (the order of these tables).
[environments.staging]

[environments.prod]
requires_previous = true            # a release must have succeeded in staging first
approvals = { required = 2, roles = ["approvers"] }
checklist = [
  "Release notes reviewed",
  { id = "smoke", text = "Smoke test against the idle color", command = ["./scripts/smoke.sh"] },
]
windows = ["business-hours"]
freezes = ["year-end"]
override_roles = ["release-managers"]
protected = true
failure_policy = "rollback"         # or "halt"
warm = "10m"                        # keep the old color running this long after a switch

[apps.api]
repo = "../api"                     # git repository, relative to this folder
owner = "platform"
oncall = "#platform-oncall"
depends_on = []
# artifacts.model = "hf://org/model@main"
# config = { max_tokens = 4096 }

[apps.api.targets.staging]
adapter = "local"                   # local | nginx | aws-elb | command
port = 8601

[apps.api.targets.prod]
adapter = "local"
port = 8611
"""
