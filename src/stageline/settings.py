"""Every setting of a Stageline installation, read from `STAGELINE_*` environment variables.

CLI flags override the environment; `Settings.model_copy(update=...)` is how they do it.
"""

import os
import re
import secrets
from datetime import UTC, timedelta, timezone, tzinfo
from functools import cached_property
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from stageline.files import PRIVATE_FILE, narrow, private_dir

_OFFSET = re.compile(r"^(?:UTC|GMT)?([+-])(\d{1,2}):?(\d{2})?$")


def parse_timezone(name: str) -> tzinfo:
    """`UTC+08:00`, `+08:00`, `+8`, `UTC` or an IANA name such as `Asia/Shanghai`."""
    if name.upper() in {"UTC", "GMT", "Z"}:
        return UTC
    match = _OFFSET.match(name.strip())
    if match:
        sign, hours, minutes = match.groups()
        offset = timedelta(hours=int(hours), minutes=int(minutes or 0))
        if offset >= timedelta(hours=24):
            raise ValueError(f"time zone offset out of range: {name!r}")
        return timezone(-offset if sign == "-" else offset)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone: {name!r}") from None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="STAGELINE_", frozen=True, extra="ignore")

    data_dir: Path = Path(".stageline")
    """Where the embedded database, the secret key and step workspaces live by default."""
    database_url: str = ""
    """SQLAlchemy URL; empty means SQLite at `<data_dir>/stageline.db`."""
    host: str = "127.0.0.1"
    port: int = 8080
    public_base_url: str = ""
    """Base of `modify_url`/`detail_url`; empty means `http://<host>:<port>`."""
    display_timezone: str = "UTC+08:00"
    """Zone of stage times in batch status; the default reproduces the CodeArts examples."""
    batch_max_ids: int = 100
    token_ttl_seconds: int = 24 * 3600
    account_name: str = "stageline"
    """The IAM account (domain) name this installation answers to in POST /v3/auth/tokens."""
    secret_key: str = ""
    """Master secret from which access-key SKs are derived; empty means `<data_dir>/secret.key`."""
    executor_slots: int = 4
    """How many jobs the built-in agent (started by `stageline serve`) runs at once."""
    agent_lease_seconds: float = 60.0
    """How long a job's claim lives without a heartbeat before the job is redispatched."""
    agent_max_redispatch: int = 2
    """How often a job is taken from a lost agent and queued again before it fails."""
    agent_seen_seconds: float = 60.0
    """An agent that claimed or heartbeated this recently counts as connected; longer than an
    agent's claim long poll (20 s), so that a waiting agent never drops out between polls."""
    queue_timeout_seconds: int = 3600
    """How long a job without a `timeout` of its own may wait for an agent when no connected
    agent can take it, before it fails."""
    artifact_max_bytes: int = 1024 * 1024 * 1024
    """The largest artifact a step may upload."""
    log_max_lines_per_step: int = 100_000
    """Log lines kept per step; past them one line says the rest was dropped."""
    log_max_line_bytes: int = 65_536
    """Bytes kept of one log line; a longer line is cut and says so."""
    header_timeout_seconds: float = 10.0
    """How long a client may take to send a request's headers before the connection is closed
    (slow clients must not hold connections open)."""
    keep_alive_seconds: float = 5.0
    """How long an idle kept-alive connection stays open."""
    max_header_bytes: int = 32 * 1024
    """Most bytes of a request's line and headers together; more is a 431."""
    max_header_count: int = 100
    """Most header fields in one request; more is a 431."""
    auth_cache_seconds: float = 10.0
    """How long a server trusts a checked token, access key or role before asking the database
    again (revocations take up to this long to apply; 0 turns the cache off)."""
    signature_failure_limit: int = 5
    """Failed AK/SK signatures from one client address with one access key before that address
    must wait (429) to try that key again; the key's other users are never held up."""
    login_failure_limit: int = 20
    """Failed password logins from one client address, or for one user name from anywhere,
    before the failing address must wait (429); a client that has not been failing still logs
    in."""
    auth_backoff_max_seconds: int = 300
    """The longest wait (Retry-After) a failing client is given; waits double up to it."""
    change_log_retention_days: int = 30
    """How long the change log keeps a status change (run history, live feeds)."""
    access_log: bool = False
    """Log a line per request (uvicorn's access log). Off by default: formatting and writing the
    line cost a third of a small request's CPU, and a proxy in front usually logs them anyway."""
    git_timeout_seconds: float = 20.0
    """How long the server waits for a repository when it fixes a new run's commit (`git
    ls-remote`, reading the commit's message); past it the run starts with no commit and its
    jobs' checkout says why."""
    metrics_token: str = ""
    """When set, GET /metrics answers only requests with `Authorization: Bearer <token>`, from
    anywhere; when empty, only clients on loopback (a Prometheus on the same host, or one whose
    scrapes a trusted proxy on loopback forwards from loopback)."""
    bench_routes: bool = False
    """Serve the benchmark's limit route (`make bench` turns it on; never in production)."""

    @field_validator("display_timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        parse_timezone(value)
        return value

    @field_validator(
        "batch_max_ids",
        "change_log_retention_days",
        "log_max_lines_per_step",
        "log_max_line_bytes",
        "max_header_bytes",
        "max_header_count",
        "signature_failure_limit",
        "login_failure_limit",
        "auth_backoff_max_seconds",
    )
    @classmethod
    def _positive(cls, value: int) -> int:
        if value < 1:
            raise ValueError("must be at least 1")
        return value

    @field_validator(
        "agent_seen_seconds",
        "queue_timeout_seconds",
        "header_timeout_seconds",
        "keep_alive_seconds",
        "git_timeout_seconds",
    )
    @classmethod
    def _positive_seconds(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("must be more than 0")
        return value

    @cached_property
    def display_tz(self) -> tzinfo:
        return parse_timezone(self.display_timezone)

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'stageline.db'}"

    @property
    def effective_public_base_url(self) -> str:
        return (self.public_base_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def workspace_dir(self) -> Path:
        return self.data_dir / "workspaces"

    @property
    def artifact_dir(self) -> Path:
        return self.data_dir / "artifacts"

    @property
    def git_scratch_dir(self) -> Path:
        """Where the server makes (and removes) the small repositories that read a commit."""
        return self.data_dir / "git"

    def master_secret(self) -> bytes:
        """The configured secret, or the one kept in `<data_dir>/secret.key` (created 0600 in a
        0700 data directory)."""
        if self.secret_key:
            return self.secret_key.encode()
        path = private_dir(self.data_dir) / "secret.key"
        try:  # O_EXCL: of two processes starting at once, exactly one writes the key
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
        except FileExistsError:
            narrow(path)
        else:
            with os.fdopen(fd, "w") as file:
                file.write(secrets.token_hex(32))
        return path.read_text().strip().encode()
