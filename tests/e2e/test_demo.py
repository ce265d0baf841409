"""`stageline serve --demo` (what `make run` starts): demo data that builds a real commit.

A new user's first look: the demo pipelines run at start-up with the built-in agent, check out
the demo repository under the data directory and show its commit in batch status.
"""

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from huaweicloudsdkcodeartspipeline.v2 import BatchShowPipelinesLatestStatusRequest

from .conftest import (
    POLL_INTERVAL,
    POLL_TIMEOUT,
    _server_env,
    _stop,
    _wait_until_healthy,
    free_port,
    sdk_client,
)
from .processes import wait_until

COMMIT = re.compile(r"^[0-9a-f]{40}$")
REPOSITORY = Path(__file__).parent.parent.parent


@pytest.fixture
def demo_server(tmp_path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """A server on SQLite in a fresh data directory, started as `make run` starts it: from the
    directory that holds the data directory, named by its default relative path."""
    with demo_process(tmp_path) as (_, base_url, demo):
        yield base_url, demo


@contextlib.contextmanager
def demo_process(
    tmp_path: Path,
) -> Iterator[tuple["subprocess.Popen[bytes]", str, dict[str, Any]]]:
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    data_dir = tmp_path / ".stageline"
    env = _server_env(Path(".stageline"), base_url)
    log_path = tmp_path / "server.log"
    command = [sys.executable, "-m", "stageline", "serve", "--demo", "--port", str(port)]
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            command,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
            start_new_session=True,
        )
    try:
        _wait_until_healthy(process, base_url, log_path)
        demo: dict[str, Any] = json.loads((data_dir / "demo.json").read_text())
        yield process, base_url, demo
    finally:
        _stop(process)
        # The demo's two-minute job may outlast the server's graceful stop: take its built-in
        # agent (and that job) down with it.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


@pytest.mark.slow
def test_the_demo_pipelines_build_the_demo_repository(
    demo_server: tuple[str, dict[str, Any]],
) -> None:
    base_url, demo = demo_server
    client = sdk_client(base_url, demo["ak"], demo["sk"])
    pipelines = demo["pipelines"]
    expected = {"hello-world": "COMPLETED", "broken-tests": "FAILED"}
    deadline = time.monotonic() + POLL_TIMEOUT
    while True:
        response = client.batch_show_pipelines_latest_status(
            BatchShowPipelinesLatestStatusRequest(
                project_id=demo["project_id"], body=[pipelines[name] for name in expected]
            )
        )
        statuses = {item.pipeline_id: item for item in response.body or []}
        seen = {
            name: statuses[pipelines[name]].status
            for name in expected
            if pipelines[name] in statuses
        }
        if seen == expected:
            break
        assert time.monotonic() < deadline, f"demo runs never got there: {seen}"
        time.sleep(POLL_INTERVAL)
    hello = statuses[pipelines["hello-world"]]
    assert COMMIT.match(hello.build_params.commit_id)
    assert hello.build_params.target_branch == "main"
    assert hello.build_params.message == "hello-world: first commit"


@pytest.mark.slow
def test_sigterm_stops_the_server_and_its_built_in_agent_with_it(tmp_path: Path) -> None:
    """As `kill`, systemd or `docker stop` ends it, while the demo's two-minute job runs: the
    built-in agent cancels it and ends with the server instead of outliving it."""
    with demo_process(tmp_path) as (process, _, _):
        children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
        (agent,) = [int(pid) for pid in children]
        assert b"agent" in Path(f"/proc/{agent}/cmdline").read_bytes()
        workspaces = tmp_path / ".stageline" / "workspaces"
        wait_until(lambda: any(workspaces.glob("*/.stageline/*.sh")), "a demo step running")
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        wait_until(lambda: not Path(f"/proc/{agent}").exists(), "the agent gone", timeout=5)


@pytest.mark.slow
def test_every_snippet_the_banner_prints_works_as_printed(
    demo_server: tuple[str, dict[str, Any]], tmp_path: Path
) -> None:
    """The commands under the banner's table, pasted into bash as they are."""
    _, demo = demo_server
    banner = _banner_text(demo_server_log(tmp_path))
    script = banner.split(" pipelines ", 1)[1].split("\n", 1)[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("STAGELINE_")}
    env["STAGELINE_CONFIG"] = str(tmp_path / "cli-config.toml")
    result = subprocess.run(
        ["bash", "-e", "-o", "pipefail"],
        input=script,
        env=env,
        capture_output=True,
        text=True,
        timeout=POLL_TIMEOUT * 2,
        check=False,
    )
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}\n---\n{script}"
    lines = result.stdout.splitlines()
    hello = demo["pipelines"]["hello-world"]
    assert lines[0].startswith("logged in to "), lines[0]
    assert "hello-world#2 COMPLETED" in lines  # `run --follow` followed it to its end
    assert "approved release-approval#1" in lines
    curl = [line for line in lines if line.startswith('[{"pipeline_id"')]
    assert len(curl) == 1
    assert f'"pipeline_id":"{hello}"' in curl[0]
    sdk = [line for line in lines if line.startswith("{") and hello in line]
    assert len(sdk) == 1, lines[-3:]


def demo_server_log(tmp_path: Path) -> str:
    """The server's output once it printed the banner (after its demo runs were started)."""
    log_path = tmp_path / "server.log"
    deadline = time.monotonic() + POLL_TIMEOUT
    while "================ Stageline demo" not in log_path.read_text(errors="replace"):
        assert time.monotonic() < deadline, "no banner"
        time.sleep(POLL_INTERVAL)
    time.sleep(0.5)  # the rest of the banner
    return log_path.read_text(errors="replace")


def _banner_text(log: str) -> str:
    start = log.index("================ Stageline demo")
    end = log.index("=================================================", start + 50)
    return log[start:end]


@pytest.mark.slow
def test_the_readme_five_commands_reach_a_green_run(
    demo_server: tuple[str, dict[str, Any]], tmp_path: Path
) -> None:
    """The README's "from zero" block, against the demo server `make run` started (its first
    command): the other four pasted into one shell as they are (only the port is this
    server's), with the password typed in when the login asks for it."""
    base_url, demo = demo_server
    readme = (REPOSITORY / "README.md").read_text()
    section = readme.split("## From zero to a green run in five commands", 1)[1]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    commands = block.splitlines()
    assert commands[0].startswith("make run")
    assert len(commands) == 5
    script = "\n".join(commands[1:]).replace("http://127.0.0.1:8080", base_url)
    assert "<" not in script  # nothing to fill in
    env = {k: v for k, v in os.environ.items() if not k.startswith("STAGELINE_")}
    env["HOME"] = str(tmp_path / "home")  # a new user's: no config file yet
    result = subprocess.run(
        ["bash", "-e", "-c", script],
        input=demo["password"] + "\n",
        cwd=REPOSITORY,
        env=env,
        capture_output=True,
        text=True,
        timeout=POLL_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, f"{script}\n{result.stdout}\n{result.stderr}"
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"logged in to {base_url} as admin (profile default, project demo")
    assert lines[1].startswith("created pipeline hello-yaml")
    assert "hello-yaml#1 COMPLETED" in lines
    [row] = [line.split() for line in lines if line.startswith("hello-yaml ")]
    assert row[1:4] == ["#1", "COMPLETED", "✓✓"]
    assert (tmp_path / "home" / ".config" / "stageline" / "config.toml").exists()
