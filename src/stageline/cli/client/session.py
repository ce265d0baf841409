"""What every client command shares: the options --server, --project, --profile and --json
(with their STAGELINE_* variables), the connection a profile gives, and failures turned into
one line on stderr and an exit code (never a traceback).

The commands are in `account` (login, logout), `views` (status, pipelines, runs) and `actions`
(run, logs, stop, retry, approve, refuse) and `pipeline_files` (pipeline apply, export), all
registered on `app`.
"""

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from stageline.cli.client import outcomes
from stageline.cli.client.config import (
    DEFAULT_PROFILE,
    PROFILE_ENV,
    PROJECT_ENV,
    SERVER_ENV,
    load,
)
from stageline.cli.client.errors import ClientError, NotLoggedIn, Unreachable

if TYPE_CHECKING:  # httpx, rich and the wire schemas load when a command runs, not at start-up
    from stageline.cli.client.api_client import ApiClient

app = typer.Typer()

JSON_HELP = "Print JSON for scripts (may also come before the command: `stageline --json …`)."
PASSWORD_RULE = "Passwords have at least 8 characters."
ServerOption = Annotated[
    str | None,
    typer.Option(
        "--server",
        envvar=SERVER_ENV,
        help="Base URL of the server (default: the profile's; its credentials go to no other).",
    ),
]
ProjectOption = Annotated[
    str | None,
    typer.Option("--project", envvar=PROJECT_ENV, help="Project ID (default: the profile's)."),
]
ProfileOption = Annotated[
    str,
    typer.Option("--profile", envvar=PROFILE_ENV, help="Profile of the config file to use."),
]
JsonOption = Annotated[bool, typer.Option("--json", help=JSON_HELP)]
RunArgument = Annotated[
    str,
    typer.Argument(
        metavar="RUN",
        help="PIPELINE#NUMBER, PIPELINE#RUN_ID, a run ID, or a pipeline (its latest run);"
        " PIPELINE is a name or an ID.",
    ),
]
FollowOption = Annotated[
    bool, typer.Option("--follow", "-f", help="Show progress and logs until the run ends.")
]
ReviewsOption = Annotated[
    bool,
    typer.Option(
        "--through-reviews",
        help="Keep following while the run waits on a manual review instead of exiting 5.",
    ),
]


class _Invocation:
    """What the options before the command said; one invocation per process."""

    json = False


def json_before_command(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON for scripts (before or after the command).")
    ] = False,
) -> None:
    """The callback of the program (and of `admin`) that takes `--json` before the command."""
    if as_json:
        _Invocation.json = True


def wants_json(flag: bool) -> bool:
    """`--json` after the command, or before it."""
    return flag or _Invocation.json


def die(message: str, code: int) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=code)


@contextmanager
def handled() -> Iterator[None]:
    """Failures as one line on stderr and an exit code, never a traceback."""
    try:
        yield
    except NotLoggedIn as error:
        die(str(error), outcomes.NOT_LOGGED_IN)
    except Unreachable as error:
        die(str(error), outcomes.UNREACHABLE)
    except ClientError as error:  # ApiError, ConfigError, …
        die(str(error), outcomes.ERROR)
    except (KeyError, TypeError, ValueError) as error:  # an answer not shaped as the API's
        die(f"unexpected answer from the server ({type(error).__name__}: {error})", outcomes.ERROR)


def connect(server: str | None, project: str | None, profile_name: str) -> "ApiClient":
    from stageline.cli.client.api_client import ApiClient, Credentials

    config = load()
    profile = config.profiles.get(profile_name)
    if profile is None or not profile.logged_in:
        hint = "" if profile_name == DEFAULT_PROFILE else f" --profile {profile_name}"
        raise NotLoggedIn(f"not logged in ({config.path}): run `stageline login{hint}`")
    if profile.token_expired(datetime.now(UTC)):
        raise NotLoggedIn(
            f"your login expired at {profile.token_expires_at}: run `stageline login` again"
        )
    base = (server or profile.server).rstrip("/")
    if not base:
        raise NotLoggedIn("no server: run `stageline login --server URL`")
    if profile.server and base != profile.server.rstrip("/"):
        # A token or a signature is only ever sent to the server that issued the credentials.
        raise NotLoggedIn(
            f"profile {profile_name} is logged in to {profile.server}, not {base}:"
            f" run `stageline login --server {base}` (with --profile NAME to keep both)"
        )
    credentials = Credentials(token=profile.token, ak=profile.ak, sk=profile.sk)
    return ApiClient(base, credentials, project_id=project or profile.project)


def now_ms() -> int:
    return int(time.time() * 1000)


def print_json(value: Any) -> None:
    typer.echo(json.dumps(value, ensure_ascii=False))
