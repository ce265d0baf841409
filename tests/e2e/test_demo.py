"""`stageline serve --demo` (what `make run` starts): demo data that builds a real commit.

A new user's first look: the demo pipelines run at start-up with the built-in agent, check out
the demo repository under the data directory and show its commit in batch status.
"""

import json
import re
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

COMMIT = re.compile(r"^[0-9a-f]{40}$")


@pytest.fixture
def demo_server(tmp_path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """A server on SQLite in a fresh data directory, started as `make run` starts it."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    data_dir = tmp_path / "data"
    env = _server_env(data_dir, base_url)
    log_path = tmp_path / "server.log"
    command = [sys.executable, "-m", "stageline", "serve", "--demo", "--port", str(port)]
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            command, env=env, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT
        )
    try:
        _wait_until_healthy(process, base_url, log_path)
        demo: dict[str, Any] = json.loads((data_dir / "demo.json").read_text())
        yield base_url, demo
    finally:
        _stop(process)


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
