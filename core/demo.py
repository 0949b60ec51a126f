"""`shipdeck demo`: a self-contained workspace with real git history, built through the services.

Everything here goes through the same services a person would use (with the demo users as actors
and a clock walked through the past weeks), so the audit log it leaves verifies like any other.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from shipdeck.core.domain.config import WorkspaceConfig
from shipdeck.core.errors import PermissionDenied, UsageError
from shipdeck.core.ports import MachineProcesses
from shipdeck.core.services.context import Context, resolve_actor

DEMO_USERS = {
    "alice": "Alice Moreau",
    "bob": "Bob Lindqvist",
    "carol": "Carol Okafor",
    "dave": "Dave Ng",
    "erin": "Erin Walsh",
    "frank": "Frank Osei",
}


# What each demo role is for, in the words the demo's welcome text and the README use.
ROLE_DUTIES = {
    "release-managers": "ships releases and plans (every permission)",
    "developers": "cuts releases, drafts plans, deploys",
    "approvers": "approve prod plans (two needed), tick checklists",
    "auditors": "read-only: status, plans, audit log, metrics",
    "on-call": "rollback, reconcile, logs, restart, token limits",
}
# The file that marks a folder as built by `shipdeck demo`: `demo stop` ends processes only there.
MARKER = Path(".shipdeck") / "demo"


@dataclass(frozen=True)
class DemoUser:
    user: str
    name: str
    roles: tuple[str, ...]
    duties: str


def demo_users(config: WorkspaceConfig) -> list[DemoUser]:
    """The people of the demo and what they may do, read from its shipdeck.toml."""
    prod = config.environments.get("prod")
    users = []
    for user, name in DEMO_USERS.items():
        roles = tuple(config.roles_of(user))
        duties = [ROLE_DUTIES.get(r, r) for r in roles]
        if prod is not None and set(roles) & set(prod.override_roles):
            duties.append("break-glass overrides in prod")
        users.append(DemoUser(user, name, roles, "; ".join(duties)))
    return users


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


def free_ports(n: int) -> list[int]:
    """n distinct free loopback ports (the demo's targets must not collide with anything)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def _git(repo: Path, *args: str, when: datetime | None = None, author: str = "alice") -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": DEMO_USERS.get(author, author),
        "GIT_AUTHOR_EMAIL": f"{author}@example.com",
        "GIT_COMMITTER_NAME": DEMO_USERS.get(author, author),
        "GIT_COMMITTER_EMAIL": f"{author}@example.com",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    if when is not None:
        stamp = when.strftime("%Y-%m-%dT%H:%M:%S+0000")
        env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = stamp
    done = subprocess.run(
        ["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


def make_repo(path: Path, subjects: tuple[str, ...], start: datetime, step: timedelta) -> list[str]:
    """A real repository whose commits carry `subjects`, dated from `start`; returns their shas."""
    path.mkdir(parents=True, exist_ok=True)
    _git(path, "init", "-q", "-b", "main")
    authors = ["alice", "dave", "carol", "frank"]
    shas = []
    for i, subject in enumerate(subjects):
        (path / "CHANGELOG.md").open("a").write(f"- {subject}\n")
        (path / f"src_{i % 3}.txt").write_text(f"{subject}\n")
        _git(path, "add", "-A")
        _git(
            path,
            "commit",
            "-q",
            "-m",
            subject,
            when=start + step * i,
            author=authors[i % len(authors)],
        )
        shas.append(_git(path, "rev-parse", "HEAD"))
    return shas


def demo_toml(ports: list[int]) -> str:
    lines = [
        "# The shipdeck demo workspace (built by `shipdeck demo`).",
        "[workspace]",
        'name = "demo"',
        "",
        "[identity]",
        "# Whoever runs the demo acts as alice, or as SHIPDECK_ACTOR (bob, carol, ...): one",
        "# person plays every role. A team workspace names its CI runners here instead.",
        "allow_env_actor = true",
        'delegators = ["*"]',
        'default_actor = "alice"',
        "",
        "[roles.release-managers]",
        'users = ["alice"]',
        'permissions = ["*"]',
        "",
        "[roles.developers]",
        'users = ["dave"]',
        'permissions = ["release.create", "plan.create", "plan.check", "deploy", "task.logs"]',
        "",
        "[roles.approvers]",
        'users = ["bob", "carol"]',
        'permissions = ["plan.approve", "plan.check"]',
        "",
        "[roles.auditors]",
        'users = ["erin"]',
        "permissions = []",
        "",
        "[roles.on-call]",
        'users = ["frank"]',
        'permissions = ["rollback", "reconcile", "task.logs", "task.restart", "task.token-limit"]',
        "",
        "# No deploys during the monthly database maintenance.",
        "[windows.db-maintenance]",
        'cron = "0 2 1 * *"',
        'duration = "2h"',
        'timezone = "Europe/Berlin"',
        'kind = "deny"',
        "",
        "[freezes.new-year]",
        "start = 2026-12-31T12:00:00+00:00",
        "end = 2027-01-02T08:00:00+00:00",
        'reason = "New year freeze"',
        "",
        "[environments.staging]",
        'warm = "30s"',
        "",
        "[environments.prod]",
        "requires_previous = true",
        'approvals = { required = 2, roles = ["approvers"] }',
        "checklist = [",
        '  "Release notes reviewed",',
        '  "On-call informed",',
        "]",
        'windows = ["db-maintenance"]',
        'freezes = ["new-year"]',
        'override_roles = ["release-managers"]',
        'task_roles = ["on-call", "release-managers"]',
        "protected = true",
        'warm = "2m"',
        "",
    ]
    port = iter(ports)
    for app in APPS:
        deps = ", ".join(f'"{d}"' for d in app.depends_on)
        lines += [
            f"[apps.{app.name}]",
            f'repo = "repos/{app.name}"',
            f'owner = "{app.owner}"',
            f'oncall = "#{app.owner}-oncall"',
            f"depends_on = [{deps}]",
        ]
        if app.name == "chat-api":
            lines.append("config = { max_tokens = 4096, temperature = 0.2 }")
        lines.append("")
        for env in ("staging", "prod"):
            front = next(port)
            lines += [
                f"[apps.{app.name}.targets.{env}]",
                'adapter = "local"',
                f"port = {front}",
                f"blue_port = {next(port)}",
                f"green_port = {next(port)}",
                "",
            ]
            if app.name == "chat-api":
                lines += [
                    f"[apps.chat-api.targets.{env}.token_limits]",
                    'adapter = "litellm-file"',
                    f'path = "gateway/{env}.yaml"',
                    'model = "chat-api"',
                    "",
                ]
    return "\n".join(lines)


GATEWAY_YAML = """\
# LiteLLM proxy config: the gateway in front of the chat models (token limits per model).
model_list:
  - model_name: chat-api
    litellm_params:
      model: openai/demo-chat
      tpm: {tpm}
      rpm: {rpm}
  - model_name: embedder
    litellm_params:
      model: openai/demo-embed
      tpm: 1000000
      rpm: 3000
"""


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
    else:
        rows = [
            {"id": i, "prompt": f"question {i}", "expected": f"answer {i}"} for i in range(20 * n)
        ]
        (path / "eval.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        (path / "README.md").write_text(f"# {app} evaluation set {version}\n")
    return {name: f"file://{folder.as_posix()}"}


class _Clock:
    """The demo walks this clock through the past so its history has believable dates; while a
    plan runs it ticks, so its steps take believable time too."""

    def __init__(self, at: datetime) -> None:
        self.at = at
        self.tick = timedelta(0)

    def now(self) -> datetime:
        at = self.at
        self.at += self.tick
        return at

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)  # the demo's targets are real processes: their waits are real


def as_user(ctx: Context, user: str, clock: _Clock) -> Context:
    actor = resolve_actor(ctx.config, {**os.environ, "SHIPDECK_ACTOR": user})
    return replace(ctx, actor=actor, clock=clock)


def build_demo(
    directory: Path | None = None,
    *,
    progress: Callable[[str], None] = lambda _: None,
    now: datetime | None = None,
) -> Path:
    from shipdeck.core.bootstrap import build_context
    from shipdeck.core.services.releases import create_release
    from shipdeck.core.storage.db import Database
    from shipdeck.core.workspace import Workspace, load_config

    root = (directory or Path(tempfile.mkdtemp(prefix="shipdeck-demo-"))).resolve()
    if (root / "shipdeck.toml").exists():
        from shipdeck.core.errors import UsageError

        raise UsageError(f"--dir {root}: already holds a shipdeck.toml (pick an empty folder)")
    root.mkdir(parents=True, exist_ok=True)
    now = now or datetime.now(UTC).replace(microsecond=0)
    start = now - timedelta(days=30)
    progress(f"building demo workspace in {root}")

    shas: dict[str, list[str]] = {}
    for app in APPS:
        shas[app.name] = make_repo(
            root / "repos" / app.name, app.subjects, start, timedelta(hours=61)
        )
    (root / "shipdeck.toml").write_text(demo_toml(free_ports(len(APPS) * 6)), encoding="utf-8")
    (root / MARKER).parent.mkdir(exist_ok=True)
    (root / MARKER).write_text(
        "built by `shipdeck demo`; `shipdeck demo stop` ends its processes\n"
    )
    (root / "gateway").mkdir()
    for env, (tpm, rpm) in {"staging": (20_000, 100), "prod": (120_000, 600)}.items():
        (root / "gateway" / f"{env}.yaml").write_text(GATEWAY_YAML.format(tpm=tpm, rpm=rpm))

    ws = Workspace(root, load_config(root / "shipdeck.toml"))
    db = Database(ws.database_url())
    db.upgrade()
    db.dispose()
    base = build_context(ws)
    # History is replayed in seconds: no warm delays (they are not part of what approvers sign).
    envs = {n: replace(e, warm_seconds=0.0) for n, e in base.config.environments.items()}
    base = replace(base, config=replace(base.config, environments=envs))
    clock = _Clock(start)

    def user(name: str) -> Context:
        return as_user(base, name, clock)

    # Releases cut every few commits (by the release manager or a developer) and plans shipping
    # them, replayed in time order through the services. chat-api 1.3.0 fails its health check
    # in staging and is rolled back; 1.3.1 fixes it. Prod ends one release behind, with a plan
    # for the latest releases waiting for its second approval.
    events: list[tuple[datetime, int, Callable[[], None]]] = []
    hour = timedelta(hours=61)
    cut_so_far: dict[str, list[str]] = {}

    def release_at(
        at: datetime,
        app: str,
        version: str,
        commit: str,
        notes: str,
        by: str,
        config: dict[str, object] | None = None,
    ) -> None:
        def cut() -> None:
            clock.at = at
            artifacts = write_artifact(root, app, version, len(cut_so_far.setdefault(app, [])))
            cut_so_far[app].append(version)
            create_release(
                user(by), app, version, commit=commit, notes=notes, config=config,
                artifacts=artifacts,
            )  # fmt: skip

        events.append((at, 0, cut))

    for app in APPS:
        commits = shas[app.name]
        n = 0
        for n, idx in enumerate(range(2, len(commits), 3), start=1):
            broken = app.name == "chat-api" and n == 3
            release_at(
                start + hour * idx + timedelta(hours=2), app.name, f"1.{n}.0", commits[idx],
                f"{app.subjects[idx]} and more" + (" (health check regression)" if broken else ""),
                "alice" if n % 2 else "dave", {"demo_health": "fail"} if broken else None,
            )  # fmt: skip
            if broken:
                release_at(
                    start + hour * (idx + 1) + timedelta(hours=2), app.name, "1.3.1",
                    commits[idx + 1], "Fix health check regression", "alice",
                )  # fmt: skip
        if (len(commits) - 1) % 3 != 2:
            release_at(
                start + hour * (len(commits) - 1) + timedelta(hours=3), app.name, f"1.{n + 1}.0",
                commits[-1], "latest", "alice",
            )  # fmt: skip
    for day, env in (
        (6, "staging"),
        (7, "prod"),
        (13.5, "staging"),
        (14.5, "prod"),
        (21, "staging"),
        (23.5, "staging"),
        (24.5, "prod"),
        (29, "staging"),
    ):
        events.append((start + timedelta(days=day), 1, lambda env=env: ship(env)))  # type: ignore[misc]
    events.append((start + timedelta(days=29.5), 1, lambda: ship("prod", run=False)))
    # New weights on the same code, not shipped anywhere yet: status shows "model changed".
    release_at(
        start + timedelta(days=29.7), "model-server", "1.5.0", shas["model-server"][-1],
        "Retrained weights (same code)", "alice",
    )  # fmt: skip

    def ship(env: str, run: bool = True) -> None:
        """Plan what the previous env runs (or the latest releases), approve, tick, run."""
        from shipdeck.core.services.plans import approve, check_item, create_plan, get_plan
        from shipdeck.core.services.runs import run_plan
        from shipdeck.core.services.status import status

        alice = user("alice")
        items: list[str] = []
        previous = alice.config.previous_env(env)
        if previous is not None:
            for a in status(alice):
                cells = {c.env: c for c in a.cells}
                want, have = cells[previous].deployed, cells[env].deployed
                if want is not None and (have is None or have.version != want.version):
                    items.append(f"{a.app}@{want.version}")
        plan = create_plan(alice, env, items)
        for approver in ("bob", "carol")[: plan.approvals_required]:
            clock.at += timedelta(minutes=20)
            if not run and approver == "carol":
                break
            approve(user(approver), plan.id, "reviewed the diff")
        for item in plan.checklist[: len(plan.checklist) if run else 1]:
            check_item(alice, plan.id, item.item)
        if not run:
            progress(f"  {env}: plan {plan.id} waits for a second approval")
            return
        for _ in range(8):  # step past a deny window or freeze, as a release manager would
            if not any(
                b.kind in ("window_closed", "frozen") for b in get_plan(alice, plan.id).blockers
            ):
                break
            clock.at += timedelta(hours=3)
        clock.tick = timedelta(seconds=1)
        result = run_plan(alice, plan.id)
        clock.tick = timedelta(0)
        progress(f"  {env}: {result.state.replace('_', ' ')}: {result.result}")

    for at, _, event in sorted(events, key=lambda e: (e[0], e[1])):
        clock.at = at
        event()
    progress(f"demo workspace ready: {root}")
    base.db.dispose()
    return root


# --- stopping what the demo started -----------------------------------------------------------


@dataclass(frozen=True)
class DemoProcess:
    what: str  # "chat-api/prod proxy", "runner of plan P-3"
    pid: int


def demo_root(directory: str | Path | None) -> Path:
    """The demo workspace named (or found like any workspace); refused unless `demo` built it."""
    from shipdeck.core.workspace import find_workspace

    if directory is not None and not (Path(directory) / "shipdeck.toml").is_file():
        raise UsageError(f"{directory}: no shipdeck.toml there (not a demo workspace)")
    root = find_workspace(directory)
    if not (root / MARKER).is_file():
        raise UsageError(f"{root}: not a demo workspace (no {MARKER}); only `shipdeck demo` ones")
    return root


def running_processes(root: Path) -> list[DemoProcess]:
    """The target processes (proxies and colors) of the workspace's local targets running now."""
    from shipdeck.core.bootstrap import machine_targets
    from shipdeck.core.workspace import open_workspace

    return _processes(machine_targets(open_workspace(root)))


def still_running_notice(root: Path) -> str | None:
    """What to tell someone leaving the TUI: target processes outlive it, and how to end them."""
    running = running_processes(root)
    if not running:
        return None
    how = (
        f"stop them with: shipdeck demo stop {root}"
        if (root / MARKER).is_file()
        else "they keep serving until a plan or a person stops them"
    )
    return f"{len(running)} local target process(es) keep running; {how}"


def _processes(targets: list[tuple[str, str, MachineProcesses]]) -> list[DemoProcess]:
    return [
        DemoProcess(f"{app}/{env} {name}", pid)
        for app, env, target in targets
        for name, pid in sorted(target.processes().items())
    ]


def _live_runners(ctx: Context) -> list[DemoProcess]:
    """Detached runners still holding a lease, identified by pid and start time (a pid alone may
    have been reused by now)."""
    from sqlalchemy import select

    from shipdeck.core.services.plans import runner_id
    from shipdeck.core.storage.tables import LEASES

    with ctx.db.read() as conn:
        rows = conn.execute(
            select(LEASES.c.plan_id, LEASES.c.runner).where(LEASES.c.runner.is_not(None))
        ).all()
    found = []
    for plan_id, runner in rows:
        pid = int(runner.split("|")[2]) if runner.count("|") == 3 else 0
        if pid > 0 and pid != os.getpid() and runner_id(pid) == runner:
            found.append(DemoProcess(f"runner of plan {plan_id}", pid))
    return found


def _end(process: DemoProcess, grace: float = 5.0) -> None:
    """SIGTERM a runner (and SIGCONT, so a stopped one sees it), SIGKILL it if it is still
    there after `grace` seconds."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(process.pid, sig)
            os.kill(process.pid, signal.SIGCONT)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if _gone(process.pid):
                return
            time.sleep(0.02)


def _gone(pid: int) -> bool:
    """No such process, or only its zombie (exited, waiting for its parent to reap it)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state in (b"Z", b"X")


def stop_demo(directory: str | Path | None, *, read_only: bool = False) -> list[DemoProcess]:
    """End the demo's runners, then its target processes; return what was running. Idempotent.

    Runners go first: a runner left alive would start target processes again. An intent event
    naming every process is committed before the first signal, and the outcome after.
    """
    from shipdeck.core.bootstrap import build_context, machine_targets
    from shipdeck.core.workspace import open_workspace

    ws = open_workspace(demo_root(directory))
    ctx = build_context(ws, read_only=read_only)
    try:
        if ctx.read_only:
            raise PermissionDenied("demo stop: this session is read-only")
        targets = machine_targets(ws)
        runners = _live_runners(ctx)
        planned = [*runners, *_processes(targets)]
        if not planned:
            return []
        listed = [{"what": p.what, "pid": p.pid} for p in planned]
        with ctx.db.write() as conn:
            ctx.audit(conn, "demo.stop", {"processes": listed})
        for runner in runners:
            _end(runner)
        for _, _, target in targets:
            target.teardown()
        with ctx.db.write() as conn:
            ctx.audit(conn, "demo.stopped", {"processes": listed})
        return planned
    finally:
        ctx.db.dispose()
