"""Finding and loading a workspace: the folder whose shipdeck.toml is the release policy."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

# tomli is the standard library's tomllib (its upstream: the same parser, the same errors),
# compiled: a thousand-app shipdeck.toml parses in a third of the time (bench/status_json.py).
import tomli

from shipdeck.core.domain.config import ENV_REF, WorkspaceConfig, parse_config
from shipdeck.core.domain.config_values import MAX_DEPTH, deep_nesting_at
from shipdeck.core.errors import ConfigError, UsageError
from shipdeck.core.storage.files import permission_problem, reachable

CONFIG_NAME = "shipdeck.toml"
STATE_DIR = ".shipdeck"


def find_workspace(explicit: str | Path | None = None, cwd: Path | None = None) -> Path:
    """--workspace, else SHIPDECK_WORKSPACE, else the nearest folder upward with shipdeck.toml."""
    given = explicit or os.environ.get("SHIPDECK_WORKSPACE")
    if given:
        if "\x00" in str(given):
            source = "--workspace" if explicit else "SHIPDECK_WORKSPACE"
            raise UsageError(f"{source}: the path contains a NUL character")
        path = Path(given).expanduser().resolve()
        if not (path / CONFIG_NAME).is_file():
            source = "--workspace" if explicit else "SHIPDECK_WORKSPACE"
            raise UsageError(
                f"{source} {given}: no {CONFIG_NAME} there (run 'shipdeck init {given}')"
            )
        return path
    here = (cwd or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / CONFIG_NAME).is_file():
            return folder
    raise UsageError(f"no {CONFIG_NAME} in {here} or any folder above it (run 'shipdeck init')")


def load_config(path: Path) -> WorkspaceConfig:
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
        raw = tomli.loads(text)
    except RecursionError:
        raise ConfigError(_too_deep(name, text)) from None
    except FileNotFoundError:
        raise ConfigError(f"{name}: no such file") from None
    except PermissionError:  # a shared workspace's policy is for its group only
        raise permission_problem(reachable(path), write=False) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{name}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except tomli.TOMLDecodeError as exc:
        raise ConfigError(f"{name}: TOML syntax error: {exc}") from None
    return parse_config(raw, name)


def _too_deep(name: str, text: str) -> str:
    """The parser refuses deep nesting (RecursionError); say where the file nests too deep."""
    where = deep_nesting_at(text)
    if where is None:
        return f"{name}: values nested too deeply to parse"
    line, key = where
    return f"{name}: {key}: nested more than {MAX_DEPTH} levels deep (line {line})"


@dataclass(frozen=True)
class ConfigStamp:
    """What shipdeck.toml looked like when read: cheap facts first, the content hash to be sure
    (an editor may rewrite the file with the same bytes, or keep its mtime)."""

    mtime_ns: int
    size: int
    sha256: str


def config_stamp(path: Path, previous: ConfigStamp | None = None) -> ConfigStamp:
    """The file's stamp; when mtime and size match `previous`, its hash is not recomputed."""
    import hashlib

    st = path.stat()
    if previous is not None and (st.st_mtime_ns, st.st_size) == (
        previous.mtime_ns,
        previous.size,
    ):
        return previous
    return ConfigStamp(st.st_mtime_ns, st.st_size, hashlib.sha256(path.read_bytes()).hexdigest())


@dataclass(frozen=True)
class Workspace:
    root: Path
    config: WorkspaceConfig

    @property
    def config_path(self) -> Path:
        return self.root / CONFIG_NAME

    @property
    def state_dir(self) -> Path:
        return self.root / STATE_DIR

    @property
    def database_configured(self) -> bool:
        """A database named in the environment or in shipdeck.toml is the only one: shipdeck then
        never falls back to (or creates) a SQLite file beside it."""
        return bool(os.environ.get("SHIPDECK_DATABASE_URL") or self.config.database)

    def database_url(self) -> str:
        """SHIPDECK_DATABASE_URL, else [workspace] database (with ${ENV} expanded), else SQLite
        in .shipdeck/."""
        url = os.environ.get("SHIPDECK_DATABASE_URL")
        if url:
            return url
        if self.config.database:
            return expand_env(self.config.database, f"{self.config_path}: workspace.database")
        return f"sqlite:///{self.state_dir / 'state.db'}"


def expand_env(value: str, where: str) -> str:
    """Replace ${NAME} with the environment's value, so a password stays out of shipdeck.toml; a
    variable that is not set is an error naming it (exit 4), never an empty password."""

    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in os.environ:
            raise ConfigError(f"{where}: ${{{name}}} is not set in the environment")
        return os.environ[name]

    return ENV_REF.sub(sub, value)


def open_workspace(explicit: str | Path | None = None) -> Workspace:
    root = find_workspace(explicit)
    return Workspace(root, load_config(root / CONFIG_NAME))
