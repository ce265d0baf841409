"""The command line a person uses (`stageline login | status | run | logs | …`): the installed
`stageline` command, run against the session's real server as a user would run it.

Its output is not a terminal here, so it must be plain text: no colour or cursor codes.
Pipelines have no code sources (no git checkout is involved).
"""

import fcntl
import json
import os
import pty
import secrets
import select
import signal
import stat
import struct
import subprocess
import sys
import termios
import time
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from stageline.auth.secrets import mint_token, token_digest
from stageline.cli.client import outcomes
from stageline.engine.clock import system_clock
from stageline.settings import Settings
from stageline.store.database import Database
from stageline.store.queries import identity
from tests.factories import definition, shell_job, stage

from .conftest import CLI_TIMEOUT, Tenant, free_port

pytestmark = pytest.mark.slow

ESCAPE = "\x1b"
STAGELINE = str(Path(sys.executable).with_name("stageline"))
"""The `stageline` command the package installs beside the interpreter, as a user runs it."""


@dataclass
class Cli:
    """`stageline ARGS` with its own config file (STAGELINE_CONFIG)."""

    tenant: Tenant
    config: Path

    @property
    def env(self) -> dict[str, str]:
        return {**self.tenant.server.env, "STAGELINE_CONFIG": str(self.config)}

    def __call__(
        self, *args: str, stdin: str = "", env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [STAGELINE, *args],
            env={**self.env, **(env or {})},
            input=stdin,
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT,
            check=False,
        )
        assert "Traceback" not in result.stderr, result.stderr
        return result

    def ok(self, *args: str, stdin: str = "") -> str:
        result = self(*args, stdin=stdin)
        assert result.returncode == 0, (args, result.returncode, result.stdout, result.stderr)
        assert ESCAPE not in result.stdout
        return result.stdout

    def json(self, *args: str, stdin: str = "") -> Any:
        return json.loads(self.ok(*args, stdin=stdin))

    def login(self, role: str = "developer") -> subprocess.CompletedProcess[str]:
        account = self.tenant.accounts[role]
        return self(
            "login",
            "--server",
            self.tenant.base_url,
            "--project",
            self.tenant.project_id,
            "--user",
            account.name,
            stdin=account.password + "\n",
        )


@pytest.fixture
def fresh_cli(tenant: Tenant, tmp_path: Path) -> Cli:
    """Not logged in yet: a config file that does not exist."""
    return Cli(tenant, tmp_path / "config" / "stageline" / "config.toml")


@pytest.fixture(scope="module")
def cli(tenant: Tenant, tmp_path_factory: pytest.TempPathFactory) -> Cli:
    """Logged in as the developer, once per module (and database kind)."""
    logged_in = Cli(tenant, tmp_path_factory.mktemp("cli") / "config.toml")
    result = logged_in.login()
    assert result.returncode == 0, result.stderr
    return logged_in


def pipeline(tenant: Tenant, *stages: dict[str, Any]) -> str:
    """A new pipeline (no code source) of `stages`; returns its name."""
    name = f"cli-{secrets.token_hex(4)}"
    tenant.create_pipeline(definition(*stages), name=name)
    return name


def one_step(script: str) -> dict[str, Any]:
    return stage("BUILD", shell_job("COMPILE", script))


def review_stage(approver_id: str) -> dict[str, Any]:
    inputs = [
        {"key": "approvers", "value": [approver_id]},
        {"key": "check_strategy", "value": "any"},
    ]
    review = {
        "identifier": "APPROVE",
        "name": "APPROVE",
        "steps": [
            {
                "name": "review",
                "task": "official_devcloud_checkpoint",
                "identifier": "STEP_APPROVE",
                "inputs": inputs,
            }
        ],
    }
    return stage("REVIEW", review)


class TestLogin:
    def test_a_password_on_stdin_stores_a_token_in_a_private_file(self, fresh_cli: Cli) -> None:
        result = fresh_cli.login()
        assert result.returncode == 0, result.stderr
        assert "logged in" in result.stdout
        mode = stat.S_IMODE(fresh_cli.config.stat().st_mode)
        assert mode == 0o600
        assert stat.S_IMODE(fresh_cli.config.parent.stat().st_mode) == 0o700
        stored = tomllib.loads(fresh_cli.config.read_text())["profiles"]["default"]
        assert stored["server"] == fresh_cli.tenant.base_url
        assert stored["project"] == fresh_cli.tenant.project_id
        assert stored["token"]
        password = fresh_cli.tenant.accounts["developer"].password
        assert password not in fresh_cli.config.read_text()

    def test_a_wrong_password_is_refused_and_nothing_is_stored(self, fresh_cli: Cli) -> None:
        account = fresh_cli.tenant.accounts["developer"]
        result = fresh_cli(
            "login", "--server", fresh_cli.tenant.base_url, "--user", account.name,
            stdin="wrong-password\n",
        )  # fmt: skip
        assert result.returncode == outcomes.NOT_LOGGED_IN
        assert "login refused" in result.stderr
        assert not fresh_cli.config.exists()

    def test_named_profiles_with_access_keys_and_logout(self, fresh_cli: Cli) -> None:
        tenant = fresh_cli.tenant
        account = tenant.accounts["viewer"]
        base = ("--server", tenant.base_url, "--project", tenant.project_id)
        result = fresh_cli(
            "login", *base, "--profile", "ci", "--ak", account.ak, "--sk", account.sk
        )
        assert result.returncode == 0, result.stderr
        name = pipeline(tenant, one_step("echo x"))
        listed = fresh_cli.json("pipelines", "--profile", "ci", "--json")
        assert name in {item["name"] for item in listed}
        # The default profile was never logged in; STAGELINE_PROFILE picks the other one.
        assert fresh_cli("pipelines").returncode == outcomes.NOT_LOGGED_IN
        assert fresh_cli("pipelines", env={"STAGELINE_PROFILE": "ci"}).returncode == 0

        assert "logged out" in fresh_cli.ok("logout", "--profile", "ci")
        result = fresh_cli("pipelines", "--profile", "ci")
        assert result.returncode == outcomes.NOT_LOGGED_IN
        assert "stageline login --profile ci" in result.stderr
        assert stat.S_IMODE(fresh_cli.config.stat().st_mode) == 0o600

    def test_the_project_is_found_by_name_or_as_the_only_one(self, fresh_cli: Cli) -> None:
        server = fresh_cli.tenant.server
        name, password = f"cli-projects-{secrets.token_hex(4)}", secrets.token_urlsafe(12)
        server.cli_json("create-user", name, "--password", password)
        login = ("login", "--server", fresh_cli.tenant.base_url, "--user", name)

        result = fresh_cli(*login, stdin=password + "\n")
        assert result.returncode == 0, result.stderr
        assert "note: no project chosen" in result.stderr  # a member of none yet
        assert "project" not in tomllib.loads(fresh_cli.config.read_text())["profiles"]["default"]

        server.cli_json("add-member", fresh_cli.tenant.project_id, name, "--role", "viewer")
        chosen = fresh_cli.json(*login, "--json", stdin=password + "\n")
        assert chosen["project"] == fresh_cli.tenant.project_id  # the only one
        stored = tomllib.loads(fresh_cli.config.read_text())["profiles"]["default"]
        assert stored["project"] == fresh_cli.tenant.project_id

        other_name = f"cli-other-{secrets.token_hex(4)}"
        other = server.cli_json("create-project", other_name)["project_id"]
        server.cli_json("add-member", other, name, "--role", "viewer")
        by_name = fresh_cli.json(*login, "--project", other_name, "--json", stdin=password + "\n")
        assert (by_name["project"], by_name["project_name"]) == (other, other_name)
        assert fresh_cli.json("pipelines", "--json") == []  # the other project has none

        result = fresh_cli(*login, "--project", "no-such-project", stdin=password + "\n")
        assert result.returncode == outcomes.ERROR
        assert f"{name} may act in no project 'no-such-project' (projects: " in result.stderr

        # logged in again with no --project: the profile's (the other one) is kept
        again = fresh_cli.json(*login, "--json", stdin=password + "\n")
        assert again["project"] == other

    def test_login_help_states_the_password_rule(self, fresh_cli: Cli) -> None:
        wide = {"COLUMNS": "400"}  # one line per paragraph: no rule cut by a line break
        for command in (["login"], ["admin", "create-user"]):
            result = fresh_cli(*command, "--help", env=wide)
            assert "at least 8 characters" in result.stdout.lower(), result.stdout


def _write_token_profile(cli: Cli, token: str, *, expires_at: str | None = None) -> None:
    """A config file whose default profile holds `token` for the CLI's tenant, as login would
    have written it."""
    expiry = f'token_expires_at = "{expires_at}"\n' if expires_at else ""
    cli.config.parent.mkdir(parents=True)
    cli.config.write_text(
        f'[profiles.default]\nserver = "{cli.tenant.base_url}"\n'
        f'project = "{cli.tenant.project_id}"\ntoken = "{token}"\n{expiry}'
    )


class TestFailures:
    def test_an_invalid_token_says_to_log_in_again(self, fresh_cli: Cli) -> None:
        _write_token_profile(fresh_cli, "not-a-token")
        result = fresh_cli("status")
        assert result.returncode == outcomes.NOT_LOGGED_IN
        assert result.stdout == ""
        assert "APIGW.0301" in result.stderr
        assert "stageline login" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1

    def test_an_expired_token_says_to_log_in_again(self, cli: Cli, tmp_path: Path) -> None:
        expired = tmp_path / "expired.toml"
        text = cli.config.read_text()
        stored = tomllib.loads(text)["profiles"]["default"]
        expired.write_text(text.replace(stored["token_expires_at"], "2000-01-01T00:00:00Z"))
        result = cli("status", env={"STAGELINE_CONFIG": str(expired)})
        assert result.returncode == outcomes.NOT_LOGGED_IN
        assert "expired" in result.stderr
        assert "stageline login" in result.stderr

    def test_a_token_the_server_finds_expired_says_to_log_in_again(self, fresh_cli: Cli) -> None:
        """The config file thinks the token still good (a clock off, a shorter TTL on the
        server): the server's refusal is the message."""
        tenant = fresh_cli.tenant
        token = mint_token()
        db = Database(tenant.server.database_url)
        try:
            with db.writer() as session:
                identity.insert_token(
                    session,
                    digest=token_digest(token),
                    user_id=tenant.accounts["developer"].user_id,
                    project_id=None,
                    issued_at=1,
                    expires_at=system_clock() - 1000,
                )
        finally:
            db.dispose()
        _write_token_profile(fresh_cli, token, expires_at="2999-01-01T00:00:00Z")
        result = fresh_cli("status")
        assert result.returncode == outcomes.NOT_LOGGED_IN
        assert result.stdout == ""
        [line] = result.stderr.splitlines()
        assert line.startswith("error: the server refused your token (APIGW.0301: ")
        assert "token expires, expires_at: " in line
        assert line.endswith("run `stageline login` again")

    def test_a_server_that_does_not_answer_is_one_line(self, fresh_cli: Cli) -> None:
        nowhere = f"http://127.0.0.1:{free_port()}"
        result = fresh_cli("login", "--server", nowhere, "--user", "someone", stdin="password\n")
        assert result.returncode == outcomes.UNREACHABLE
        assert result.stderr.startswith(f"error: cannot reach the server at {nowhere}")
        assert len(result.stderr.strip().splitlines()) == 1

    def test_an_unknown_status_filter_is_a_usage_error(self, cli: Cli) -> None:
        result = cli("status", "--status", "GREEN")
        assert result.returncode == outcomes.USAGE
        assert result.stderr == "error: --status: unknown GREEN\n"

    def test_credentials_go_to_no_other_server(self, cli: Cli) -> None:
        other = f"http://127.0.0.1:{free_port()}"
        result = cli("status", "--server", other)
        assert result.returncode == outcomes.NOT_LOGGED_IN
        assert f"logged in to {cli.tenant.base_url}, not {other}" in result.stderr
        assert cli("status", "--server", cli.tenant.base_url + "/").returncode == 0

    def test_the_server_error_code_and_message_are_shown(self, cli: Cli) -> None:
        name = pipeline(cli.tenant, one_step("echo x"))
        result = cli("run", name, "--var", "UNKNOWN=1")
        assert result.returncode == outcomes.ERROR
        assert result.stderr == (
            "error: DEVCP.00021400: variables[0].name: unknown variable 'UNKNOWN'\n"
        )
        result = cli("runs", "no-such-pipeline")
        assert result.returncode == outcomes.ERROR
        assert "no pipeline named 'no-such-pipeline'" in result.stderr
        other_project = secrets.token_hex(16)
        result = cli("pipelines", "--project", other_project)
        assert result.returncode == outcomes.ERROR
        assert "DEVPIPE." in result.stderr or "DEVCP." in result.stderr, result.stderr


class TestRunFollow:
    def test_a_completed_run_streams_its_logs_and_exits_0(self, cli: Cli) -> None:
        name = pipeline(cli.tenant, one_step("echo hello-from-step; echo second-line"))
        result = cli("run", name, "--follow")
        assert result.returncode == 0, (result.stdout, result.stderr)
        assert ESCAPE not in result.stdout
        lines = result.stdout.splitlines()
        assert f"started {name}#1" in lines[0]
        assert "[COMPILE] hello-from-step" in lines
        assert "[COMPILE] second-line" in lines
        assert lines.index("[COMPILE] hello-from-step") < lines.index("[COMPILE] second-line")
        # a job's lines, then its end, then its stage's, then the run's
        endings = ["== BUILD/COMPILE COMPLETED", "== BUILD COMPLETED", f"== {name}#1 COMPLETED"]
        assert lines[-4:] == [*endings, f"{name}#1 COMPLETED"]

    def test_a_failed_run_exits_with_the_failed_code(self, cli: Cli) -> None:
        name = pipeline(cli.tenant, one_step("echo about-to-fail; exit 3"))
        result = cli("run", name, "--follow")
        assert result.returncode == outcomes.RUN_FAILED, (result.stdout, result.stderr)
        assert "[COMPILE] about-to-fail" in result.stdout.splitlines()
        assert result.stdout.splitlines()[-1] == f"{name}#1 FAILED"

        # Retrying only the failed job runs it again in the same run, and it fails again.
        retried = cli("--json", "retry", f"{name}#1", "--failed", "--follow")
        assert retried.returncode == outcomes.RUN_FAILED
        summary = json.loads(retried.stdout)
        assert summary["run"] == f"{name}#1"
        assert summary["status"] == "FAILED"

    def test_json_prints_one_summary_and_progress_goes_to_stderr(self, cli: Cli) -> None:
        name = pipeline(cli.tenant, one_step("echo quiet"))
        result = cli("run", name, "--follow", "--json")
        assert result.returncode == 0, result.stderr
        summary = json.loads(result.stdout)
        assert summary["pipeline_name"] == name
        assert summary["run_number"] == 1
        assert summary["status"] == "COMPLETED"
        assert "[COMPILE] quiet" in result.stderr

    def test_chosen_stages_and_refs_without_a_code_source(self, cli: Cli) -> None:
        name = pipeline(
            cli.tenant, one_step("echo built"), stage("TEST", shell_job("UNIT", "true"))
        )
        result = cli("run", name, "--stages", "TEST", "-f")
        assert result.returncode == 0, (result.stdout, result.stderr)
        assert "[UNIT]" not in result.stdout  # `true` prints nothing; BUILD was not chosen
        assert "[COMPILE] built" not in result.stdout
        assert cli.json("status", name, "--json")[0]["latest_run"]["stage_status_list"][0][
            "status"
        ] in {"UNSELECTED", "SKIPPED"}

        result = cli("run", name, "--stages", "NOPE")
        assert result.returncode == outcomes.ERROR
        assert "no stage 'NOPE'" in result.stderr
        result = cli("run", name, "--branch", "main")
        assert result.returncode == outcomes.ERROR
        assert "has no code source" in result.stderr

    def test_a_stopped_run_ends_canceled(self, cli: Cli) -> None:
        name = pipeline(cli.tenant, one_step("echo sleeping; sleep 60"))
        started = cli.json("run", name, "--json")
        run_id = started["pipeline_run_id"]
        # Once the step runs (its first line is there), stop it by its bare run ID.
        cli.tenant.wait_latest(
            started["pipeline_id"], lambda item: item.stage_status_list[0].status == "RUNNING"
        )
        assert cli.ok("stop", run_id).strip() == f"stopping {name}#1"
        result = cli("logs", f"{name}#1", "-f")
        assert result.returncode == outcomes.RUN_CANCELED, (result.stdout, result.stderr)


class TestInterrupt:
    """Ctrl-C while following: on a terminal it asks whether to stop the run, elsewhere it
    leaves the run going and exits 130."""

    def test_without_a_terminal_the_run_goes_on(self, cli: Cli) -> None:
        name = pipeline(cli.tenant, one_step("echo sleeping; sleep 60"))
        command = [STAGELINE, "run", name, "-f"]
        follow = subprocess.Popen(
            command, env=cli.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        assert follow.stdout is not None
        with ended(follow):
            for line in follow.stdout:
                if line.strip() == "[COMPILE] sleeping":
                    follow.send_signal(signal.SIGINT)
                    break
            _, stderr = follow.communicate(timeout=CLI_TIMEOUT)
        assert follow.returncode == outcomes.INTERRUPTED
        assert f"{name}#1 goes on" in stderr
        assert cli.json("status", name, "--json")[0]["latest_run"]["status"] == "RUNNING"
        cli.ok("stop", f"{name}#1")

    def test_on_a_terminal_it_asks_and_stops_the_run(self, cli: Cli) -> None:
        name = pipeline(cli.tenant, one_step("echo sleeping; sleep 60"))
        with Terminal(cli.env, "run", name, "-f") as terminal:
            terminal.read_until(lambda screen: "sleeping" in screen)
            terminal.process.send_signal(signal.SIGINT)
            terminal.read_until(lambda screen: f"Stop {name}#1?" in screen)
            terminal.type(b"y\n")
            terminal.read_until(lambda screen: f"{name}#1 CANCELED" in screen)
            assert terminal.process.wait(timeout=CLI_TIMEOUT) == outcomes.RUN_CANCELED


@contextmanager
def ended(process: "subprocess.Popen[Any]") -> Iterator[None]:
    """Kill `process` on the way out if it still runs (a failed test must leave none behind)."""
    try:
        yield
    finally:
        kill_if_running(process)


def kill_if_running(process: "subprocess.Popen[Any]") -> None:
    if process.poll() is None:
        process.kill()


class Terminal:
    """`stageline ARGS` on a pseudo-terminal of 160 columns, as a person runs it."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.primary, secondary = pty.openpty()
        fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 160, 0, 0))
        self.process = subprocess.Popen(
            [STAGELINE, *args], env=env, stdin=secondary, stdout=secondary, stderr=secondary
        )
        os.close(secondary)
        self.seen = b""

    @property
    def screen(self) -> str:
        return self.seen.decode(errors="replace")

    def read_until(self, wanted: Callable[[str], bool]) -> None:
        """Read until what the screen got so far is `wanted`, or the terminal closes (the
        process is gone); a screen that stays unwanted for CLI_TIMEOUT fails the test."""
        deadline = time.monotonic() + CLI_TIMEOUT
        while not wanted(self.screen):
            assert time.monotonic() < deadline, self.screen
            if not select.select([self.primary], [], [], 0.5)[0]:
                continue
            try:
                chunk = os.read(self.primary, 65536)
            except OSError:  # the terminal closed: the process is gone
                return
            if not chunk:
                return
            self.seen += chunk

    def type(self, keys: bytes) -> None:
        os.write(self.primary, keys)

    def __enter__(self) -> "Terminal":
        return self

    def __exit__(self, *_: object) -> None:
        os.close(self.primary)
        kill_if_running(self.process)


def on_a_terminal(cli: Cli, *args: str, interrupt_when: Callable[[str], bool] | None = None) -> str:
    """What `stageline ARGS` writes to a terminal (a pseudo-terminal of 160 columns); with
    `interrupt_when`, it is asked after each read what the screen got so far, and once it
    answers True the command gets SIGINT, as Ctrl-C sends it."""
    env = {**cli.env, "TERM": "xterm-256color", "COLUMNS": "160"}
    env.pop("NO_COLOR", None)
    with Terminal(env, *args) as terminal:
        if interrupt_when is not None:
            terminal.read_until(interrupt_when)
            terminal.process.send_signal(signal.SIGINT)
        terminal.read_until(lambda _: False)  # until it ends
        assert terminal.process.wait(timeout=CLI_TIMEOUT) == 0, terminal.screen
    return terminal.screen


class TestStatus:
    def test_a_plain_table_and_json_with_filters(self, cli: Cli) -> None:
        tenant = cli.tenant
        passing = pipeline(tenant, one_step("echo ok"), stage("TEST", shell_job("UNIT", "true")))
        failing = pipeline(tenant, one_step("exit 1"))
        never = pipeline(tenant, one_step("echo never"))
        assert cli("run", passing, "-f").returncode == 0
        assert cli("run", failing, "-f").returncode == outcomes.RUN_FAILED

        table = cli.ok("status", passing, failing, never)
        assert ESCAPE not in table
        rows = {line.split()[0]: line.split() for line in table.splitlines()[1:]}
        assert table.splitlines()[0].split()[:4] == ["PIPELINE", "RUN", "STATUS", "STAGES"]
        assert rows[passing][1:5] == ["#1", "COMPLETED", "✓✓", "Manual"]
        assert rows[passing][6] == "ago"  # no branch; AGE is "12s ago", then the DURATION
        assert rows[failing][1:5] == ["#1", "FAILED", "✗", "Manual"]
        assert rows[never][1:3] == ["never", "run"]

        shown = cli.json("--json", "status", passing, failing, never)
        assert [item["name"] for item in shown] == [passing, failing, never]
        assert [(item["latest_run"] or {}).get("status") for item in shown] == [
            "COMPLETED",
            "FAILED",
            None,
        ]
        failed_only = cli.json("status", passing, failing, "--status", "failed", "--json")
        assert [item["name"] for item in failed_only] == [failing]
        assert cli.json("status", passing, "--branch", "no-such-branch", "--json") == []

        everything = cli.json("status", "--json")  # no names: every pipeline of the project
        assert {passing, failing, never} <= {item["name"] for item in everything}

    def test_on_a_terminal_statuses_are_coloured(self, cli: Cli) -> None:
        passing = pipeline(cli.tenant, one_step("echo ok"))
        failing = pipeline(cli.tenant, one_step("exit 1"))
        assert cli("run", passing, "-f").returncode == 0
        assert cli("run", failing, "-f").returncode == outcomes.RUN_FAILED
        screen = on_a_terminal(cli, "status", passing, failing)
        assert "\x1b[32mCOMPLETED" in screen  # green
        assert "\x1b[1;31mFAILED" in screen  # bold red
        assert "\x1b[32m✓" in screen  # the stage dots too
        assert "\x1b[1;31m✗" in screen
        assert "Manual" in screen

    def test_watch_redraws_until_interrupted(self, cli: Cli) -> None:
        name = pipeline(cli.tenant, one_step("echo watched"))
        assert cli("run", name, "-f").returncode == 0
        command = [STAGELINE, "status", name, "--watch"]
        watch = subprocess.Popen(
            [*command, "--interval", "0.2"], env=cli.env, stdout=subprocess.PIPE, text=True
        )
        assert watch.stdout is not None
        headers = 0
        with ended(watch):
            for line in watch.stdout:
                headers += line.startswith("PIPELINE")
                if headers == 2:  # drawn twice: interrupt it, as Ctrl-C would
                    watch.send_signal(signal.SIGINT)
                    break
            remaining, _ = watch.communicate(timeout=CLI_TIMEOUT)
        assert watch.returncode == 0
        assert ESCAPE not in remaining

    def test_watch_on_a_terminal_redraws_in_place_and_gives_the_cursor_back_at_ctrl_c(
        self, cli: Cli, tmp_path: Path
    ) -> None:
        gate = tmp_path / "gate"
        name = pipeline(cli.tenant, one_step(f"until [ -e '{gate}' ]; do sleep 0.05; done"))
        cli.ok("run", name)

        def watched(screen: str) -> bool:
            if "RUNNING" in screen:
                gate.touch()  # the run may end once the watch has shown it running
            return "COMPLETED" in screen

        command = ("status", name, "--watch", "--interval", "0.2")
        screen = on_a_terminal(cli, *command, interrupt_when=watched)
        assert screen.index("RUNNING") < screen.index("COMPLETED")
        assert screen.count("PIPELINE") >= 2  # drawn again and again ...
        assert "\x1b[1A" in screen  # ... over itself (the cursor goes back up)
        assert screen.index("\x1b[?25l") < screen.index("PIPELINE")  # cursor hidden while live
        assert screen.rindex("\x1b[?25h") > screen.rindex("COMPLETED")  # and shown again
        assert "Traceback" not in screen

    def test_runs_and_pipelines_tables(self, cli: Cli) -> None:
        name = pipeline(cli.tenant, one_step("echo again"))
        assert cli("run", name, "-f").returncode == 0
        assert cli("run", name, "-f").returncode == 0
        runs = cli.ok("runs", name)
        assert [line.split()[:2] for line in runs.splitlines()[1:]] == [
            ["#2", "COMPLETED"],
            ["#1", "COMPLETED"],
        ]
        listed = cli.ok("pipelines")
        [row] = [line.split() for line in listed.splitlines() if line.startswith(name + " ")]
        assert row[2:4] == ["#2", "COMPLETED"]


class TestReviewsAndLogs:
    def test_approve_a_manual_review_then_read_the_logs(self, cli: Cli) -> None:
        developer = cli.tenant.accounts["developer"]
        name = pipeline(
            cli.tenant,
            review_stage(developer.user_id),
            stage("SHIP", shell_job("SHIP_IT", "echo shipped-it")),
        )
        paused = cli("run", name, "--follow")
        assert paused.returncode == outcomes.RUN_PAUSED, (paused.stdout, paused.stderr)
        assert f"stageline approve {name}#1" in paused.stdout

        assert cli.ok("approve", f"{name}#1", "--comment", "looks good").strip() == (
            f"approved {name}#1"
        )
        [shown] = cli.json("status", name, "--json")  # a pipeline by its ID, too
        assert cli.json("status", shown["pipeline_id"], "--json") == [shown]
        run = shown["latest_run"]
        detail = cli.tenant.raw(
            "GET",
            f"/v5/{cli.tenant.project_id}/api/pipelines/{shown['pipeline_id']}"
            f"/pipeline-runs/detail?pipeline_run_id={run['pipeline_run_id']}",
        ).json()
        [review] = detail["stages"][0]["jobs"][0]["steps"]
        assert review["message"] == f"passed by {developer.name}: looks good"
        followed = cli("logs", name, "-f")  # a pipeline alone: its latest run
        assert followed.returncode == 0, (followed.stdout, followed.stderr)
        assert "[SHIP_IT] shipped-it" in followed.stdout.splitlines()

        assert cli.ok("logs", f"{name}#1", "--job", "SHIP_IT").splitlines() == [
            "[SHIP_IT] shipped-it"
        ]
        logs = cli.json("logs", f"{name}#1", "--json")
        assert [(s["job"], s["log"]) for s in logs["steps"]] == [
            ("APPROVE", ""),
            ("SHIP_IT", "shipped-it\n"),
        ]
        result = cli("approve", f"{name}#1")
        assert result.returncode == outcomes.ERROR
        assert "waits on no manual review" in result.stderr

    def test_refuse_a_manual_review(self, cli: Cli) -> None:
        developer = cli.tenant.accounts["developer"]
        name = pipeline(cli.tenant, review_stage(developer.user_id))
        assert cli("run", name, "-f").returncode == outcomes.RUN_PAUSED
        refused = cli.json("refuse", name, "--comment", "no", "--json")
        assert refused == {
            "run": f"{name}#1",
            "pipeline_run_id": refused["pipeline_run_id"],
            "success": True,
            "review": "REVIEW/APPROVE",
        }
        by_id = cli.json("logs", f"{name}#{refused['pipeline_run_id']}", "--json")
        assert by_id["run"] == f"{name}#1"
        followed = cli("logs", name, "-f", "--json")
        assert followed.returncode == outcomes.RUN_FAILED
        assert json.loads(followed.stdout)["status"] == "FAILED"


def test_json_before_an_admin_command(tenant: Tenant) -> None:
    server = tenant.server
    command = [STAGELINE, "--json", "admin", "create-project"]
    command += [f"cli-json-{secrets.token_hex(4)}", "--database-url", server.database_url]
    result = subprocess.run(
        command, env=server.env, capture_output=True, text=True, timeout=CLI_TIMEOUT, check=False
    )
    assert result.returncode == 0, result.stderr
    assert set(json.loads(result.stdout)) == {"project_id"}


def test_the_client_variables_are_no_server_settings() -> None:
    """The server reads STAGELINE_* too: a shell set up for the client must not change it."""
    settings = {f"STAGELINE_{name.upper()}" for name in Settings.model_fields}
    client = {"STAGELINE_SERVER", "STAGELINE_PROJECT", "STAGELINE_PROFILE", "STAGELINE_CONFIG"}
    assert not settings & (client | {"STAGELINE_SK"})
