"""`stageline serve | agent | migrate | admin …` for the server, and `login | status | run | …`
for the people using it (cli/client) — each command imports what it needs when it runs."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from stageline.cli.client import commands as client_commands
from stageline.cli.client.commands import PASSWORD_RULE, json_before_command, wants_json
from stageline.settings import Settings

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="Stageline: a CI/CD server speaking the CodeArts Pipeline v5 API, and its command line.",
)
admin = typer.Typer(
    no_args_is_help=True,
    help="Projects, users, members, access keys, feed tokens and secrets at rest.",
)
app.add_typer(admin, name="admin")
app.add_typer(client_commands.app)

app.callback()(json_before_command)
admin.callback()(json_before_command)

DatabaseUrl = Annotated[
    str | None, typer.Option("--database-url", help="SQLAlchemy URL (default: embedded SQLite).")
]
GRACEFUL_SHUTDOWN_SECONDS = 3
"""Requests still open this long after a stop is asked for (agents' long polls) are ended."""
AGENT_STOP_SECONDS = 20.0
"""How long `serve` waits for its built-in agent to cancel its jobs and exit."""
JsonFlag = Annotated[
    bool, typer.Option("--json", help="Print the result as JSON (also before the command).")
]


def _settings(database_url: str | None = None, **overrides: Any) -> Settings:
    """Settings from STAGELINE_* variables, with the flags given on the command line on top."""
    from pydantic import ValidationError

    values = {k: v for k, v in overrides.items() if v is not None}
    if database_url:
        values["database_url"] = database_url
    try:
        return Settings(**values)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()
        )
        typer.echo(f"error: invalid setting: {problems}", err=True)
        raise typer.Exit(code=2) from None


def _database(settings: Settings) -> Any:
    from stageline.store import migrate
    from stageline.store.database import Database

    db = Database(settings.effective_database_url)
    migrate.upgrade(db.engine)
    return db


def _report(result: dict[str, Any], as_json: bool, text: str) -> None:
    typer.echo(json.dumps(result) if wants_json(as_json) else text)


def _fail(error: Exception) -> None:
    typer.echo(f"error: {getattr(error, 'message', error)}", err=True)
    raise typer.Exit(code=1)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    database_url: DatabaseUrl = None,
    public_base_url: Annotated[
        str | None, typer.Option(help="Base of modify_url/detail_url links.")
    ] = None,
    display_timezone: Annotated[
        str | None, typer.Option(help="Zone of stage times, e.g. UTC+08:00 or Europe/Berlin.")
    ] = None,
    batch_max_ids: Annotated[
        int | None, typer.Option(help="Most pipeline IDs one batch-status call may ask for.")
    ] = None,
    workers: Annotated[int, typer.Option(min=1, help="API worker processes.")] = 1,
    no_agent: Annotated[
        bool, typer.Option("--no-agent", help="Do not start the built-in build agent.")
    ] = False,
    access_log: Annotated[
        bool | None,
        typer.Option(
            "--access-log/--no-access-log",
            help="Log a line per request (default: off, or STAGELINE_ACCESS_LOG).",
        ),
    ] = None,
    bench_routes: Annotated[
        bool, typer.Option("--bench-routes", help="Add the benchmark's limit route.", hidden=True)
    ] = False,
    demo: Annotated[
        bool, typer.Option(help="Create demo data and run each demo pipeline.")
    ] = False,
) -> None:
    """Migrate the database and serve the API, with a built-in build agent beside it."""
    import uvicorn

    from stageline.api.scrape import share_between_workers
    from stageline.cli.http_server import uvicorn_options
    from stageline.files import private_dir
    from stageline.web.app import create_app

    overrides = {
        "host": host,
        "port": port,
        "public_base_url": public_base_url,
        "display_timezone": display_timezone,
        "batch_max_ids": batch_max_ids,
        "access_log": access_log,
        "bench_routes": bench_routes or None,
    }
    settings = _settings(database_url, **overrides)
    private_dir(settings.data_dir)  # 0700 before anything (agent workspaces too) is made in it
    db = _database(settings)
    settings.master_secret()  # create the key file once, before any worker reads it
    if demo and workers > 1:
        _fail(ValueError("--demo runs in a single process; drop --workers"))
    agent = None if no_agent else _start_builtin_agent(settings, db)
    # uvicorn stops on SIGTERM, then raises the signal again: with its default action that
    # would end this process before the `finally` below stops the built-in agent, which then
    # lingered for its whole delivery bound (ten minutes) trying to reach a server long gone.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        if workers > 1:
            db.dispose()
            # Worker processes read their settings from the environment: hand the flags down.
            for name, value in {**overrides, "database_url": database_url}.items():
                if value is not None:
                    os.environ[f"STAGELINE_{name.upper()}"] = str(value)
            # Metrics of all workers are added up from files, in a directory of this server's.
            share_between_workers(settings.data_dir / "metrics" / str(settings.port))
            uvicorn.run(
                "stageline.web.app:worker_app",
                factory=True,
                host=settings.host,
                port=settings.port,
                workers=workers,
                log_level="info",
                access_log=settings.access_log,
                timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
                **uvicorn_options(settings, workers=workers),
            )
            return
        app_ = create_app(settings, db=db)
        if demo:
            from stageline.cli.demo import install_demo

            install_demo(app_, settings, db)
        uvicorn.run(
            app_,
            host=settings.host,
            port=settings.port,
            log_level="info",
            access_log=settings.access_log,
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
            **uvicorn_options(settings),
        )
    finally:
        if agent is not None:  # its jobs are cancelled; a server started later redispatches
            agent.send_signal(signal.SIGINT)  # those whose end it could not report in time
            try:
                agent.wait(timeout=AGENT_STOP_SECONDS)
            except subprocess.TimeoutExpired:
                agent.kill()


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def _start_builtin_agent(settings: Settings, db: Any) -> "subprocess.Popen[bytes]":
    """`stageline agent` as a child process, under the installation's built-in agent identity.
    Its SK travels in the environment, never on a command line."""
    from stageline.auth import accounts
    from stageline.engine.clock import system_clock

    key = accounts.builtin_agent_key(db, settings, now=system_clock())
    host = "127.0.0.1" if settings.host in {"0.0.0.0", "::", ""} else settings.host
    command = [sys.executable, "-m", "stageline", "agent", "--builtin"]
    command += ["--server", f"http://{host}:{settings.port}"]
    command += ["--workdir", str(settings.workspace_dir.resolve())]
    command += ["--concurrency", str(settings.executor_slots)]
    env = {**os.environ, "STAGELINE_AGENT_AK": key.ak, "STAGELINE_AGENT_SK": key.sk}
    return subprocess.Popen(command, env=env)


@app.command()
def agent(
    server: Annotated[str, typer.Option(help="Base URL of the Stageline server.")],
    ak: Annotated[str, typer.Option(envvar="STAGELINE_AGENT_AK", help="The agent's access key.")],
    sk: Annotated[
        str,
        typer.Option(
            envvar="STAGELINE_AGENT_SK", help="Its secret key (better: STAGELINE_AGENT_SK)."
        ),
    ],
    pool: Annotated[str, typer.Option(help="Take jobs of this pool.")] = "default",
    labels: Annotated[str, typer.Option(help="Comma-separated labels this host has.")] = "",
    workdir: Annotated[Path, typer.Option(help="Where job workspaces are made.")] = Path(
        ".stageline/agent"
    ),
    concurrency: Annotated[int, typer.Option(min=1, help="Jobs run at once.")] = 1,
    heartbeat: Annotated[float, typer.Option(min=0.1, help="Seconds between heartbeats.")] = 2.0,
    builtin: Annotated[bool, typer.Option(hidden=True)] = False,
) -> None:
    """Run a build agent: claim jobs from the server, run them here, report back.

    SIGTERM: stop claiming, finish running jobs and deliver their reports, then exit. SIGINT
    (Ctrl-C): also cancel running jobs. The built-in agent that `serve` starts also drains
    when its server process goes away.
    """
    import logging
    import threading

    from stageline.agent.loop import Agent, AgentConfig
    from stageline.agent.transport import HttpJobSource

    logging.basicConfig(level=logging.INFO, format="%(asctime)s agent %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per request
    config = AgentConfig(
        workdir=workdir.resolve(),
        pool=pool,
        labels=tuple(sorted({label.strip() for label in labels.split(",") if label.strip()})),
        concurrency=concurrency,
        heartbeat_seconds=heartbeat,
    )
    source = HttpJobSource(server, access_key=ak, secret_key=sk)
    runner = Agent(source, config)
    stop = threading.Event()
    cancel = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def interrupt(*_: object) -> None:
        cancel.set()
        stop.set()

    signal.signal(signal.SIGINT, interrupt)
    parent = os.getppid()
    runner.start()
    typer.echo(f"agent {config.name} serving pool '{pool}' of {server}", err=True)
    while not stop.wait(1.0):
        if builtin and os.getppid() != parent:
            break  # orphaned: the server it belonged to is gone
    delivered = runner.shutdown() if cancel.is_set() else runner.drain()
    source.close()
    raise typer.Exit(code=0 if delivered else 1)


@app.command("migrate")
def migrate_command(database_url: DatabaseUrl = None) -> None:
    """Bring the database schema up to date."""
    _database(_settings(database_url))
    typer.echo("database is up to date")


@admin.command("create-project")
def create_project(name: str, database_url: DatabaseUrl = None, as_json: JsonFlag = False) -> None:
    from stageline.auth import accounts
    from stageline.domain.errors import DomainError
    from stageline.engine.clock import system_clock

    db = _database(_settings(database_url))
    try:
        project_id = accounts.create_project(db, name=name, now=system_clock())
    except DomainError as error:
        _fail(error)
    _report({"project_id": project_id}, as_json, project_id)


@admin.command("create-user", help=f"Create a user who logs in with a password. {PASSWORD_RULE}")
def create_user(
    name: str,
    password: Annotated[str, typer.Option(help="At least 8 characters.")],
    display_name: Annotated[str | None, typer.Option(help="Shown as executor_name.")] = None,
    database_url: DatabaseUrl = None,
    as_json: JsonFlag = False,
) -> None:
    from stageline.auth import accounts
    from stageline.domain.errors import DomainError
    from stageline.engine.clock import system_clock

    db = _database(_settings(database_url))
    try:
        user_id = accounts.create_user(
            db, name=name, password=password, display_name=display_name, now=system_clock()
        )
    except DomainError as error:
        _fail(error)
    _report({"user_id": user_id, "name": name}, as_json, user_id)


@admin.command("add-member")
def add_member(
    project_id: str,
    user_name: str,
    role: Annotated[str, typer.Option(help="viewer, developer or admin.")],
    database_url: DatabaseUrl = None,
    as_json: JsonFlag = False,
) -> None:
    from stageline.auth import accounts
    from stageline.auth.roles import Role
    from stageline.domain.errors import DomainError

    try:
        parsed = Role.parse(role)
    except ValueError as error:
        _fail(error)
    db = _database(_settings(database_url))
    try:
        accounts.add_member(db, project_id=project_id, user_name=user_name, role=parsed)
    except DomainError as error:
        _fail(error)
    result = {"project_id": project_id, "user_name": user_name, "role": parsed.label}
    _report(result, as_json, f"{user_name} is now a {parsed.label} of {project_id}")


@admin.command("create-agent")
def create_agent(name: str, database_url: DatabaseUrl = None, as_json: JsonFlag = False) -> None:
    """A build agent identity and its AK/SK (shown once): it may claim and report jobs only."""
    from stageline.auth import accounts
    from stageline.domain.errors import DomainError
    from stageline.engine.clock import system_clock

    settings = _settings(database_url)
    db = _database(settings)
    try:
        pair = accounts.create_agent(db, settings, name=name, now=system_clock())
    except DomainError as error:
        _fail(error)
    _report({"ak": pair.ak, "sk": pair.sk}, as_json, f"AK: {pair.ak}\nSK: {pair.sk}")


@admin.command("create-access-key")
def create_access_key(
    user_name: str, database_url: DatabaseUrl = None, as_json: JsonFlag = False
) -> None:
    """Print a new AK/SK pair. The SK is shown once and cannot be read back."""
    from stageline.auth import accounts
    from stageline.domain.errors import DomainError
    from stageline.engine.clock import system_clock

    settings = _settings(database_url)
    db = _database(settings)
    try:
        pair = accounts.create_access_key(db, settings, user_name=user_name, now=system_clock())
    except DomainError as error:
        _fail(error)
    _report({"ak": pair.ak, "sk": pair.sk}, as_json, f"AK: {pair.ak}\nSK: {pair.sk}")


@admin.command("create-feed-token")
def create_feed_token(
    project_id: str,
    note: Annotated[str, typer.Option(help="What it is for, shown by list-feed-tokens.")] = "",
    database_url: DatabaseUrl = None,
    as_json: JsonFlag = False,
) -> None:
    """Print a new read-only feed token of the project (shown once): it reads the project's
    status feed, cc.xml and badges, passed as ?token=, and nothing else."""
    from stageline.auth import feed_tokens
    from stageline.domain.errors import DomainError
    from stageline.engine.clock import system_clock

    db = _database(_settings(database_url))
    try:
        made = feed_tokens.create_feed_token(
            db, project_id=project_id, note=note, now=system_clock()
        )
    except DomainError as error:
        _fail(error)
    _report({"token": made.token, "token_id": made.token_id}, as_json, made.token)


@admin.command("list-feed-tokens")
def list_feed_tokens(
    project_id: Annotated[str | None, typer.Argument(help="Only this project's.")] = None,
    database_url: DatabaseUrl = None,
    as_json: JsonFlag = False,
) -> None:
    """The feed tokens (their IDs, never the tokens), oldest first."""
    from stageline.auth import feed_tokens

    db = _database(_settings(database_url))
    tokens = feed_tokens.list_feed_tokens(db, project_id=project_id)
    rows = [
        {
            "token_id": t.token_id,
            "project_id": t.project_id,
            "note": t.note,
            "created_at": t.created_at,
        }
        for t in tokens
    ]
    lines = [f"{t.token_id}  {t.project_id}  {t.note}".rstrip() for t in tokens]
    typer.echo(json.dumps({"feed_tokens": rows}) if wants_json(as_json) else "\n".join(lines))


@admin.command("revoke-feed-token")
def revoke_feed_token(
    token_id: str, database_url: DatabaseUrl = None, as_json: JsonFlag = False
) -> None:
    """Delete a feed token by its ID (list-feed-tokens); servers refuse it within
    STAGELINE_AUTH_CACHE_SECONDS."""
    from stageline.auth import feed_tokens
    from stageline.domain.errors import DomainError

    db = _database(_settings(database_url))
    try:
        feed_tokens.revoke_feed_token(db, token_id=token_id)
    except DomainError as error:
        _fail(error)
    _report({"token_id": token_id, "revoked": True}, as_json, f"revoked {token_id}")


@admin.command("rotate-secrets")
def rotate_secrets(
    old_key: Annotated[
        str | None,
        typer.Option(
            envvar="STAGELINE_OLD_SECRET_KEY",
            help="The previous master secret (better: STAGELINE_OLD_SECRET_KEY).",
        ),
    ] = None,
    old_key_file: Annotated[
        Path | None, typer.Option(help="A file holding it, such as the previous secret.key.")
    ] = None,
    database_url: DatabaseUrl = None,
    as_json: JsonFlag = False,
) -> None:
    """Seal every secret variable value and webhook secret under the current master secret:
    those stored in clear by earlier versions and, given the previous master secret, those
    sealed under it."""
    from stageline.auth.rotation import rotate_secrets as rotate
    from stageline.auth.vault import Vault

    settings = _settings(database_url)
    db = _database(settings)
    previous = [old_key.encode()] if old_key else []
    if old_key_file is not None:
        try:
            previous.append(old_key_file.read_text().strip().encode())
        except OSError as error:
            _fail(error)
    rotation = rotate(db, Vault(settings.master_secret(), previous=previous))
    pipelines, runs = rotation.rewritten["pipeline"], rotation.rewritten["run"]
    triggers = rotation.triggers_rewritten
    result = {
        "pipelines": pipelines,
        "runs": runs,
        "pipeline_triggers": triggers,
        "unreadable": rotation.unreadable,
    }
    _report(
        result,
        as_json,
        f"sealed anew: {pipelines} pipeline(s), {runs} run(s),"
        f" the webhook secrets of {triggers} pipeline(s)",
    )
    if rotation.unreadable:
        typer.echo(
            "error: no key opens these values (give the master secret they were sealed under"
            " with --old-key or --old-key-file):\n  " + "\n  ".join(rotation.unreadable),
            err=True,
        )
        raise typer.Exit(code=1)


def main() -> None:
    if Path(sys.argv[0]).name == "__main__.py":
        sys.argv[0] = "stageline"
    app()
