"""GET /metrics over real HTTP: its format, what it counts, and who may read it.

The server here has a database and an agent of its own, so the runs it counts are only this
module's; counts are still read before and after, since the tests share it.
"""

import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from stageline.agent.loop import Agent, AgentConfig
from stageline.agent.transport import HttpJobSource
from stageline.api.app import create_app
from stageline.auth import accounts
from stageline.engine.clock import system_clock
from stageline.settings import Settings
from stageline.store import migrate
from stageline.store.database import Database
from tests.conftest import serving
from tests.databases import sibling_database
from tests.factories import World, definition, shell_job, stage
from tests.hooks import hooked

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
RUN_ROUTE = "/v5/{project_id}/api/pipelines/{pipeline_id}/run"
WAIT_SECONDS = 20.0


@dataclass
class Server:
    url: str
    client: httpx.Client
    db: Database
    settings: Settings


@pytest.fixture(scope="module")
def server(
    settings: Settings, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """A server on a database of its own, with an agent of its own."""
    with sibling_database(database_url, tmp_path_factory.mktemp("metrics")) as url:
        own = settings.model_copy(update={"database_url": url})
        db = Database(url)
        migrate.upgrade(db.engine)
        with serving(create_app(own, db=db)) as base, httpx.Client(base_url=base) as client:
            key = accounts.create_agent(db, own, name="metrics-agent", now=system_clock())
            source = HttpJobSource(base, access_key=key.ak, secret_key=key.sk)
            config = AgentConfig(
                workdir=tmp_path_factory.mktemp("metrics-agent"),
                heartbeat_seconds=0.5,
                claim_wait_seconds=5.0,
            )
            agent = Agent(source, config)
            agent.start()
            try:
                yield Server(base, client, db, own)
            finally:
                agent.shutdown(timeout=10)
                source.close()
        db.dispose()


def scrape(client: httpx.Client, **headers: str) -> Samples:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def scrape_until(client: httpx.Client, done: Callable[[Samples], bool]) -> Samples:
    """Scrape until `done` holds: a run's end is counted just after its transaction commits,
    which a reader may see first (a bound, not a timing check)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        samples = scrape(client)
        if done(samples) or time.monotonic() > deadline:
            return samples
        time.sleep(0.05)


class Condition:
    def __init__(self, name: str, at_least: float, **labels: str) -> None:
        self.name, self.at_least, self.labels = name, at_least, labels

    def __call__(self, samples: Samples) -> bool:
        return value(samples, self.name, **self.labels) >= self.at_least


class TestMetrics:
    def test_runs_jobs_and_requests_move_the_counters_by_exactly_what_happened(
        self, server: Server
    ) -> None:
        world = World.create(server.client, server.db, server.settings)
        passing = world.create_pipeline()
        failing = world.create_pipeline(definition(stage("BUILD", shell_job("BREAK", "exit 3"))))
        before = scrape(server.client)

        runs = [(passing, world.run(passing)), (failing, world.run(failing))]
        for pipeline_id, run_id in runs:
            world.wait_for(pipeline_id, run_id)
        failed_before = value(
            before, "stageline_runs_finished_total", status="FAILED", trigger="Manual"
        )
        after = scrape_until(
            server.client,
            Condition(
                "stageline_runs_finished_total",
                failed_before + 1,
                status="FAILED",
                trigger="Manual",
            ),
        )

        def moved(name: str, **labels: str) -> float:
            return value(after, name, **labels) - value(before, name, **labels)

        assert moved("stageline_runs_started_total", trigger="Manual") == 2
        assert moved("stageline_runs_finished_total", status="COMPLETED", trigger="Manual") == 1
        assert moved("stageline_runs_finished_total", status="FAILED", trigger="Manual") == 1
        assert moved("stageline_job_queue_wait_seconds_count") == 2
        assert moved("stageline_job_queue_wait_seconds_bucket", le="+Inf") == 2
        assert moved("stageline_job_redispatches_total") == 0
        post = {"method": "POST", "route": RUN_ROUTE}
        assert moved("stageline_http_requests_total", **post, status="200") == 2
        assert moved("stageline_http_request_duration_seconds_count", **post) == 2
        assert moved("stageline_http_request_duration_seconds_bucket", **post, le="+Inf") == 2
        assert value(after, "stageline_agents_connected") >= 1
        assert ("stageline_jobs_queued", frozenset()) in after

    def test_the_route_label_is_the_template_never_the_path(self, server: Server) -> None:
        project_id, pipeline_id, other = (secrets.token_hex(16) for _ in range(3))
        server.client.get(f"/v5/{project_id}/api/pipelines/{pipeline_id}")  # 401: no token
        server.client.get(f"/no/such/{other}")
        samples = scrape(server.client)

        routes = {dict(labels)["route"] for _, labels in samples if "route" in dict(labels)}
        assert "/v5/{project_id}/api/pipelines/{pipeline_id}" in routes
        assert not any(part in route for route in routes for part in (project_id, other))
        get = {"method": "GET", "route": "/v5/{project_id}/api/pipelines/{pipeline_id}"}
        assert value(samples, "stageline_http_requests_total", **get, status="401") >= 1
        unmatched = {"method": "GET", "route": "unmatched", "status": "404"}
        assert value(samples, "stageline_http_requests_total", **unmatched) >= 1


class TestDeliveriesAndStreams:
    def test_webhook_deliveries_are_counted_by_host_and_result(self, server: Server) -> None:
        world = World.create(server.client, server.db, server.settings)
        hook = hooked(world, "https://git.example.test/m.git", [{"type": "push", "enable": False}])
        before = scrape(server.client)

        assert hook.send("gitlab/push").status_code == 200  # push is not enabled
        assert hook.send("gitlab/push", secret="wrong").status_code == 401
        assert hook.send("gitlab/push", secret="wrong").status_code == 401

        after = scrape(server.client)
        name = "stageline_webhook_deliveries_total"
        for result, count in (("ignored", 1), ("rejected", 2), ("started", 0)):
            moved = value(after, name, host="gitlab", result=result) - value(
                before, name, host="gitlab", result=result
            )
            assert moved == count, result

    def test_open_streams_are_counted_while_open(self, server: Server) -> None:
        world = World.create(server.client, server.db, server.settings)
        before = value(scrape(server.client), "stageline_streams_open")
        url = f"{world.base}/pipelines/status/stream?pipeline_ids={'a' * 32}"
        with server.client.stream("GET", url, headers=world.viewer.headers) as response:
            assert response.status_code == 200
            lines = response.iter_lines()  # held: an iterator dropped closes the connection
            next(lines)  # the stream has begun
            assert value(scrape(server.client), "stageline_streams_open") == before + 1
        closed = scrape_until(
            server.client, lambda samples: value(samples, "stageline_streams_open") == before
        )
        assert value(closed, "stageline_streams_open") == before


class TestWhoMayRead:
    def test_without_a_token_only_loopback_clients_may_read(self, server: Server) -> None:
        assert server.client.get("/metrics").status_code == 200  # the test is on loopback
        app = create_app(server.settings, db=server.db)
        with TestClient(app) as remote:  # its client is "testclient", not a loopback address
            response = remote.get("/metrics")
        assert response.status_code == 403
        assert "STAGELINE_METRICS_TOKEN" in response.json()["error_msg"]

    def test_with_a_token_every_scraper_must_send_it(self, server: Server) -> None:
        token = secrets.token_urlsafe(24)
        guarded = server.settings.model_copy(update={"metrics_token": token})
        with (
            serving(create_app(guarded, db=server.db)) as base,
            httpx.Client(base_url=base) as client,
        ):
            assert client.get("/metrics").status_code == 401
            wrong = client.get("/metrics", headers={"Authorization": "Bearer not-the-token"})
            assert wrong.status_code == 401
            assert wrong.json()["error_code"] == "APIGW.0301"
            samples = scrape(client, Authorization=f"Bearer {token}")
        assert ("stageline_jobs_queued", frozenset()) in samples
