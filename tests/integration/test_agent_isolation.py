"""One job whose reports the server fails must not hold up the other jobs of the same agent.

The real agent (`stageline agent`'s code, on threads of the test) works for the real app served
on loopback; between them, a wrapper answers 500 to every report of one pipeline's job, as the
server did for a job whose stored timeout overflowed. Another project's job, run by the same
agent at the same time, must complete all the same.
"""

import json
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stageline.agent.loop import Agent, AgentConfig
from stageline.agent.transport import HttpJobSource
from stageline.api.app import create_app
from stageline.auth import accounts
from stageline.engine.clock import system_clock
from stageline.settings import Settings
from stageline.store.database import Database
from tests.conftest import serving
from tests.factories import World, definition, shell_job, stage

REFUSED = b'{"error_code":"DEVCP.00010000","error_msg":"internal error"}'


class RefuseOnePipelinesReports:
    """Answers 500 to every report of a job of `pipeline_id` (learnt from the claims it passes
    on); everything else goes to the app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.pipeline_id = ""
        self.poisoned: set[str] = set()
        self.refused = threading.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and path.endswith("/events"):
            job_run_id = path.split("/")[-2]
            if job_run_id in self.poisoned:
                self.refused.set()
                headers = [(b"content-type", b"application/json")]
                await send({"type": "http.response.start", "status": 500, "headers": headers})
                await send({"type": "http.response.body", "body": REFUSED})
                return
        if scope["type"] == "http" and path == "/agent/v1/claim":
            await self.app(scope, receive, self._learning(send))
            return
        await self.app(scope, receive, send)

    def _learning(self, send: Send) -> Send:
        async def send_and_learn(message: Message) -> None:
            if message["type"] == "http.response.body" and message.get("body"):
                job = json.loads(message["body"])
                if job.get("pipeline_id") == self.pipeline_id:
                    self.poisoned.add(job["job_run_id"])
            await send(message)

        return send_and_learn


@pytest.fixture
def pool() -> str:
    return f"pool-{secrets.token_hex(6)}"


@pytest.fixture
def refusing_server(
    quiet_settings: Settings, quiet_db: Database
) -> Iterator[tuple[str, RefuseOnePipelinesReports]]:
    wrapper = RefuseOnePipelinesReports(create_app(quiet_settings, db=quiet_db))
    with serving(wrapper) as url:
        yield url, wrapper


@pytest.fixture
def shared_agent(
    refusing_server: tuple[str, RefuseOnePipelinesReports],
    quiet_settings: Settings,
    quiet_db: Database,
    pool: str,
    tmp_path: Path,
) -> Iterator[Agent]:
    """One agent for both projects' jobs, claiming only this test's pool."""
    url, _ = refusing_server
    key = accounts.create_agent(
        quiet_db, quiet_settings, name=f"shared-{secrets.token_hex(4)}", now=system_clock()
    )
    source = HttpJobSource(url, access_key=key.ak, secret_key=key.sk)
    config = AgentConfig(
        workdir=tmp_path, pool=pool, concurrency=2, heartbeat_seconds=0.5, claim_wait_seconds=1
    )
    agent = Agent(source, config)
    agent.start()
    yield agent
    agent.shutdown(timeout=5)
    source.close()


def _one_job(world: World, pool: str, script: str) -> str:
    job = shell_job("ONLY", script, resource=json.dumps({"pool": pool}))
    return world.create_pipeline(definition(stage("S", job)))


def test_a_job_whose_reports_fail_does_not_stop_another_projects_job(
    quiet_client: TestClient,
    quiet_db: Database,
    quiet_settings: Settings,
    quiet_world: World,
    refusing_server: tuple[str, RefuseOnePipelinesReports],
    shared_agent: Agent,
    pool: str,
) -> None:
    _, wrapper = refusing_server
    poisoned_pipeline = _one_job(quiet_world, pool, "echo poisoned")
    wrapper.pipeline_id = poisoned_pipeline
    poisoned_run = quiet_world.run(poisoned_pipeline)
    assert wrapper.refused.wait(timeout=30), "the poisoned job's reports never reached the server"

    other_project = World.create(quiet_client, quiet_db, quiet_settings)
    healthy_pipeline = _one_job(other_project, pool, "echo healthy")
    healthy_run = other_project.run(healthy_pipeline)

    detail = other_project.wait_for(healthy_pipeline, healthy_run)
    assert detail["status"] == "COMPLETED", json.dumps(detail)
    # The poisoned job was refused all along: nothing of it reached the run.
    assert quiet_world.detail(poisoned_pipeline, poisoned_run)["status"] != "COMPLETED"
