"""The per-user client configuration: named profiles, each a server, a default project and the
credentials `stageline login` stored (a token or an AK/SK pair).

The file is TOML, at `$STAGELINE_CONFIG`, else `$XDG_CONFIG_HOME/stageline/config.toml`, else
`~/.config/stageline/config.toml`. It holds secrets, so it is written 0600 (in a 0700 directory
when that is created) through a temporary file renamed over the old one: a reader never sees
half a file, and the mode never depends on the umask.
"""

import os
import tomllib
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path

import tomli_w

from stageline.cli.client.errors import ConfigError
from stageline.files import PRIVATE_FILE, private_dir

DEFAULT_PROFILE = "default"
CONFIG_ENV = "STAGELINE_CONFIG"
PROFILE_ENV = "STAGELINE_PROFILE"
SERVER_ENV = "STAGELINE_SERVER"
PROJECT_ENV = "STAGELINE_PROJECT"
# None of these names is a field of stageline.settings.Settings (which reads STAGELINE_* too and
# ignores names it does not know), so a shell set up for the client does not change a server.


@dataclass
class Profile:
    server: str = ""
    project: str = ""
    user: str = ""
    token: str = ""
    token_expires_at: str = ""
    """ISO-8601 UTC, as the server's token body gives it."""
    ak: str = ""
    sk: str = ""

    def token_expired(self, now: datetime) -> bool:
        if not self.token or not self.token_expires_at:
            return False
        try:
            expires = datetime.fromisoformat(self.token_expires_at.replace("Z", "+00:00"))
        except ValueError:
            return False
        return (expires if expires.tzinfo else expires.replace(tzinfo=UTC)) <= now

    @property
    def logged_in(self) -> bool:
        return bool(self.token or (self.ak and self.sk))


@dataclass
class Config:
    path: Path
    profiles: dict[str, Profile] = field(default_factory=dict)


def config_path(environ: dict[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    if env.get(CONFIG_ENV):
        return Path(env[CONFIG_ENV]).expanduser()
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "stageline" / "config.toml"


def load(path: Path | None = None) -> Config:
    path = path or config_path()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return Config(path)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"cannot read {path}: {error}") from None
    known = {f.name for f in fields(Profile)}
    profiles = {}
    for name, values in (data.get("profiles") or {}).items():
        if isinstance(values, dict):
            profiles[name] = Profile(
                **{k: str(v) for k, v in values.items() if k in known and isinstance(v, str)}
            )
    return Config(path, profiles)


def _dump(config: Config) -> str:
    profiles = {
        name: {key: value for key, value in asdict(profile).items() if value}
        for name, profile in sorted(config.profiles.items())
    }
    header = "# Written by `stageline login`; holds credentials: keep it private (mode 0600).\n\n"
    return header + tomli_w.dumps({"profiles": profiles})


def save(config: Config) -> None:
    path = config.path
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        if not path.parent.exists():
            private_dir(path.parent)
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            os.fchmod(file.fileno(), PRIVATE_FILE)  # a leftover temporary file kept its mode
            file.write(_dump(config))
        os.replace(temporary, path)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise ConfigError(f"cannot write {path}: {error}") from None
