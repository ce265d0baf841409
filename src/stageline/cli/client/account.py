"""`stageline login` and `logout`: the credentials of a profile in the config file."""

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from stageline.cli.client import outcomes
from stageline.cli.client.config import DEFAULT_PROFILE, PROJECT_ENV, Profile, load, save
from stageline.cli.client.errors import ClientError
from stageline.cli.client.session import (
    PASSWORD_RULE,
    JsonOption,
    ProfileOption,
    ServerOption,
    app,
    die,
    handled,
    print_json,
    wants_json,
)

if TYPE_CHECKING:
    from stageline.schemas.responses.service import AuthProject


@app.command(
    help=f"""Log in and remember the server, project and credentials in a profile.

Asks for the user name (or --user) and the password, which is read from the terminal without
echo or, when stdin is not a terminal, as the first line of stdin. {PASSWORD_RULE} The token the
server gives (valid a day) is stored, never the password. With --ak/--sk the access key pair is
stored instead and every request is signed with it. The project the other commands act on is
--project, by ID or name; given none, the profile's (if still the user's), else the only one
the user belongs to. The config file (STAGELINE_CONFIG, else
$XDG_CONFIG_HOME/stageline/config.toml) is written with mode 0600."""
)
def login(
    server: ServerOption = None,
    project: Annotated[
        str | None,
        typer.Option(
            "--project",
            envvar=PROJECT_ENV,
            help="Project ID or name (default: the profile's, else the user's only one).",
        ),
    ] = None,
    profile: ProfileOption = DEFAULT_PROFILE,
    user: Annotated[str | None, typer.Option("--user", "-u", help="User name.")] = None,
    ak: Annotated[str | None, typer.Option("--ak", help="Access key (instead of a user).")] = None,
    sk: Annotated[
        str | None,
        typer.Option("--sk", envvar="STAGELINE_SK", help="Secret key (better: STAGELINE_SK)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    from stageline.cli.client.api_client import ApiClient, Credentials

    with handled():
        config = load()
        stored = config.profiles.get(profile) or Profile()
        base = (server or stored.server or "").rstrip("/")
        if not base:
            die("give --server URL (or STAGELINE_SERVER) the first time", outcomes.USAGE)
        if bool(ak) != bool(sk):
            die("--ak and --sk go together", outcomes.USAGE)
        if ak and sk:
            updated = Profile(server=base, ak=ak, sk=sk)
            who = ak
        else:
            name = user or _ask("User name", hide=False)
            password = _ask("Password", hide=True)
            with ApiClient(base, Credentials()) as anonymous:
                token, expires_at = anonymous.issue_token(name, password)
            updated = Profile(server=base, user=name, token=token, token_expires_at=expires_at)
            who = name
        # the credentials and the project are checked now, not at the next command
        with ApiClient(base, Credentials(updated.token, updated.ak, updated.sk)) as client:
            projects = client.auth_projects()
        if not project and any(p["id"] == stored.project for p in projects):
            project = stored.project  # the profile's, if these credentials may act in it
        chosen = _project(projects, project, who)
        updated.project = chosen["id"] if chosen else ""
        config.profiles[profile] = updated
        save(config)
    result = {
        "profile": profile,
        "server": base,
        "project": updated.project,
        "project_name": chosen["name"] if chosen else "",
        "user": who,
    }
    if wants_json(as_json):
        print_json(result)
    else:
        where = f", project {chosen['name']} {chosen['id']}" if chosen else ""
        typer.echo(f"logged in to {base} as {who} (profile {profile}{where})")


def _project(projects: list["AuthProject"], wanted: str | None, who: str) -> "AuthProject | None":
    """The project `wanted` names (its ID or its name) among those `who` may act in; given
    none, the only one there is. None, with a note on stderr, when there is no telling."""
    names = ", ".join(p["name"] for p in projects) or "none"
    if wanted:
        found = [p for p in projects if p["id"] == wanted] or [
            p for p in projects if p["name"] == wanted
        ]
        if len(found) != 1:
            raise ClientError(f"{who} may act in no project {wanted!r} (projects: {names})")
        return found[0]
    if len(projects) == 1:
        return projects[0]
    hint = "ask an admin to add you to one" if not projects else "choose one with --project NAME"
    typer.echo(f"note: no project chosen ({who}'s projects: {names}): {hint}", err=True)
    return None


def _ask(prompt: str, *, hide: bool) -> str:
    if sys.stdin.isatty():
        value: str = typer.prompt(prompt, hide_input=hide)
        return value
    if not hide:
        die(f"{prompt.lower()}: give it as an option when stdin is not a terminal", outcomes.USAGE)
    line = sys.stdin.readline().rstrip("\r\n")
    if not line:
        die("no password on stdin", outcomes.USAGE)
    return line


@app.command()
def logout(profile: ProfileOption = DEFAULT_PROFILE, as_json: JsonOption = False) -> None:
    """Forget the profile's token or keys.

    The profile keeps its server and project. The server itself keeps a token valid until it
    expires."""
    with handled():
        config = load()
        stored = config.profiles.get(profile)
        known = stored is not None and stored.logged_in
        if stored is not None:
            config.profiles[profile] = Profile(server=stored.server, project=stored.project)
            save(config)
    if wants_json(as_json):
        print_json({"profile": profile, "logged_out": known})
    else:
        typer.echo(
            f"logged out (profile {profile})" if known else f"profile {profile}: not logged in"
        )
