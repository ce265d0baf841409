"""Jobs waiting for a build agent say why, and fail once no connected agent could take them in time.

The sweep is driven here with an injected clock, on a database of its own that no server sweeps:
agents are played through the dispatcher (each claim and heartbeat counts as seeing the agent),
and what users see is read from run detail. Every test asks for pools of its own.
"""

import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from stageline.api.app import create_app
from stageline.engine.clock import system_clock
from stageline.engine.dispatcher import Dispatcher, LeasePolicy
from stageline.engine.runs import RunEngine
from stageline.engine.scheduler import Executor
from stageline.engine.timeouts import QueuePolicy, Sweeper
from stageline.schemas.jobs import ClaimRequest, Heartbeat, JobAssignment
from stageline.schemas.runs import RunCreate
from stageline.settings import Settings
from stageline.store import migrate
from stageline.store.database import Database
from stageline.store.tables import StatusChange
from tests.databases import sibling_database
from tests.factories import World, definition, shell_job, stage
from tests.integration.test_agent_protocol import resource

SECOND = 1000
MINUTE = 60 * SECOND


class FakeClock:
    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now

    def advance(self, ms: int) -> None:
        self.now += ms


@pytest.fixture(scope="module")
def lone_db(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    """A database of the kind under test that no server process sweeps."""
    with sibling_database(database_url, Path(tmp_path_factory.mktemp("waiting"))) as url:
        database = Database(url)
        migrate.upgrade(database.engine)
        yield database
        database.dispose()


@pytest.fixture(scope="module")
def lone_world(lone_db: Database, settings: Settings) -> World:
    """A project on `lone_db`, served without starting the app's own sweeps."""
    url = lone_db.engine.url.render_as_string(hide_password=False)
    lone_settings = settings.model_copy(update={"database_url": url})
    client = TestClient(create_app(lone_settings, db=lone_db), raise_server_exceptions=False)
    return World.create(client, lone_db, lone_settings)


@dataclass
class Queue:
    """A run engine, a dispatcher and a sweeper on `lone_db`, all on one fake clock."""

    world: World
    clock: FakeClock
    engine: RunEngine
    dispatcher: Dispatcher
    sweeper: Sweeper

    def start(self, *jobs: dict[str, Any]) -> tuple[str, str]:
        """A pipeline of one stage with `jobs`, and a run of it started now: (pipeline, run)."""
        pipeline_id = self.world.create_pipeline(definition(stage("S", *jobs)))
        run_id = self.engine.start_run(
            project_id=self.world.project_id,
            pipeline_id=pipeline_id,
            request=RunCreate(),
            executor=Executor(user_id=self.world.developer.user_id, display_name="tester"),
        )
        return pipeline_id, run_id

    def claim(self, agent: str, pool: str, labels: Sequence[str] = ()) -> JobAssignment | None:
        request = ClaimRequest(agent=agent, pool=pool, labels=list(labels), wait_seconds=0)
        return self.dispatcher.claim(request, agent_name="played")

    def heartbeat(self, *jobs: JobAssignment) -> None:
        self.dispatcher.heartbeat(Heartbeat(jobs={job.job_run_id: job.dispatch_id for job in jobs}))

    def sweep_after(self, ms: int) -> None:
        self.clock.advance(ms)
        self.sweeper.run_once()

    def jobs(self, pipeline_id: str, run_id: str) -> dict[str, dict[str, Any]]:
        """The run's jobs as run detail shows them, by name."""
        stages = self.world.detail(pipeline_id, run_id)["stages"]
        return {job["name"]: job for job in stages[0]["jobs"]}


def make_queue(
    world: World,
    *,
    lease: LeasePolicy | None = None,
    policy: QueuePolicy | None = None,
    up_for_ms: int = 2 * MINUTE,
) -> Queue:
    """A queue whose sweeper has been up for `up_for_ms` (past its start-up grace)."""
    clock = FakeClock(system_clock())  # later tests start before what earlier ones left behind
    engine = RunEngine(world.db, clock=clock)
    lease = lease or LeasePolicy()
    sweeper = Sweeper(engine, lease, policy or QueuePolicy())
    clock.advance(up_for_ms)
    return Queue(world, clock, engine, Dispatcher(engine, lease), sweeper)


def unique_pool() -> str:
    return f"pool-{secrets.token_hex(6)}"


def job(identifier: str, pool: str, labels: Sequence[str] | None = None, **extra: Any) -> Any:
    return shell_job(identifier, "echo hi", resource=resource(pool, labels), **extra)


class TestWhyAJobWaits:
    def test_a_job_asking_for_labels_no_connected_agent_has_says_so(
        self, lone_world: World
    ) -> None:
        queue, pool, empty = make_queue(lone_world), unique_pool(), unique_pool()
        assert queue.claim("linux-box", pool, labels=["linux"]) is None
        pipeline_id, run_id = queue.start(
            job("CUDA", pool, ["linux", "cuda"]), job("ELSEWHERE", empty)
        )

        queue.sweep_after(1 * SECOND)
        assert {j["message"] for j in queue.jobs(pipeline_id, run_id).values()} == {None}

        queue.sweep_after(2 * SECOND)
        jobs = queue.jobs(pipeline_id, run_id)
        assert jobs["CUDA"]["status"] == "QUEUED"
        assert jobs["CUDA"]["message"] == (
            f"waiting for an agent in pool '{pool}' with labels [cuda, linux]:"
            " no connected agent has them"
        )
        assert jobs["ELSEWHERE"]["status"] == "QUEUED"
        assert jobs["ELSEWHERE"]["message"] == (
            f"waiting for an agent in pool '{empty}': no agent of that pool is connected"
        )

    def test_a_job_waiting_for_busy_agents_says_so_and_does_not_fail(
        self, lone_world: World
    ) -> None:
        """Fitting agents are connected (they heartbeat while they run their jobs): the third job
        waits past its own timeout for one of them to be free, and then runs."""
        queue, pool = make_queue(lone_world), unique_pool()
        pipeline_id, run_id = queue.start(
            *(job(name, pool, timeout="20s") for name in ("ONE", "TWO", "THREE"))
        )
        first, second = queue.claim("a", pool), queue.claim("b", pool)
        assert first is not None
        assert second is not None

        queue.sweep_after(3 * SECOND)
        (waiting,) = [j for j in queue.jobs(pipeline_id, run_id).values() if j["message"]]
        assert (
            waiting["message"]
            == f"waiting for a free agent in pool '{pool}' (2 connected, all busy)"
        )

        for _ in range(5):  # two minutes: past the job's timeout and the agents' last claims
            queue.clock.advance(20 * SECOND)
            queue.heartbeat(first)
            queue.heartbeat(second)
            queue.sweep_after(4 * SECOND)
        jobs = queue.jobs(pipeline_id, run_id)
        assert jobs[waiting["name"]]["status"] == "QUEUED"
        assert jobs[waiting["name"]]["message"] == waiting["message"]

        taken = queue.claim("a", pool)
        assert taken is not None
        assert taken.job_run_id == waiting["id"]
        assert queue.jobs(pipeline_id, run_id)[waiting["name"]]["message"] is None

    def test_the_message_follows_the_agents(self, lone_world: World) -> None:
        queue = make_queue(lone_world, policy=QueuePolicy(agent_seen_seconds=30))
        pool = unique_pool()
        pipeline_id, run_id = queue.start(job("ONE", pool, ["gpu"]), job("TWO", pool, ["gpu"]))
        busy = queue.claim("gpu-box", pool, labels=["gpu"])
        assert busy is not None

        queue.sweep_after(3 * SECOND)
        waiting = next(j for j in queue.jobs(pipeline_id, run_id).values() if j["message"])
        assert waiting["message"] == (
            f"waiting for a free agent in pool '{pool}' with labels [gpu] (1 connected, busy)"
        )

        queue.sweep_after(31 * SECOND)  # the busy agent has gone silent: no longer connected
        assert queue.jobs(pipeline_id, run_id)[waiting["name"]]["message"] == (
            f"waiting for an agent in pool '{pool}' with labels [gpu]:"
            " no agent of that pool is connected"
        )


class TestAJobNoAgentCanTake:
    def test_it_fails_past_its_own_timeout_and_so_does_its_run(self, lone_world: World) -> None:
        queue, pool = make_queue(lone_world), unique_pool()
        assert queue.claim("cpu-box", pool) is None
        pipeline_id, run_id = queue.start(job("CUDA", pool, ["cuda"], timeout="20s"))
        waiting = (
            f"waiting for an agent in pool '{pool}' with labels [cuda]: no connected agent has them"
        )

        queue.sweep_after(19 * SECOND)
        (cuda,) = queue.jobs(pipeline_id, run_id).values()
        assert (cuda["status"], cuda["message"]) == ("QUEUED", waiting)

        queue.sweep_after(2 * SECOND)
        detail = queue.world.detail(pipeline_id, run_id)
        assert detail["status"] == "FAILED"
        (cuda,) = detail["stages"][0]["jobs"]
        assert cuda["status"] == "FAILED"
        assert cuda["message"] == f"no agent could take it within 20s: {waiting}"
        assert [step["status"] for step in cuda["steps"]] == ["SKIPPED"]
        with queue.world.db.reader() as session:
            change = session.scalars(
                select(StatusChange).where(
                    StatusChange.entity_id == cuda["id"], StatusChange.to_status == "FAILED"
                )
            ).one()
        assert (change.actor_kind, change.actor) == ("timer", "stageline")

    def test_without_a_timeout_it_fails_past_the_queue_timeout(self, lone_world: World) -> None:
        queue = make_queue(lone_world, policy=QueuePolicy(queue_timeout_seconds=90))
        pool = unique_pool()
        pipeline_id, run_id = queue.start(job("LONELY", pool))

        queue.sweep_after(89 * SECOND)
        assert queue.jobs(pipeline_id, run_id)["LONELY"]["status"] == "QUEUED"
        queue.sweep_after(2 * SECOND)
        lonely = queue.jobs(pipeline_id, run_id)["LONELY"]
        assert lonely["status"] == "FAILED"
        assert lonely["message"] == (
            f"no agent could take it within 90s:"
            f" waiting for an agent in pool '{pool}': no agent of that pool is connected"
        )

    def test_a_server_that_just_started_waits_for_agents_to_connect(
        self, lone_world: World
    ) -> None:
        queue, pool = make_queue(lone_world), unique_pool()
        pipeline_id, run_id = queue.start(job("OLD", pool, timeout="20s"))
        queue.clock.advance(5 * MINUTE)
        restarted = Sweeper(queue.engine, LeasePolicy(), QueuePolicy())

        queue.clock.advance(59 * SECOND)
        restarted.run_once()
        assert queue.jobs(pipeline_id, run_id)["OLD"]["status"] == "QUEUED"
        queue.clock.advance(2 * SECOND)
        restarted.run_once()
        assert queue.jobs(pipeline_id, run_id)["OLD"]["status"] == "FAILED"

    def test_a_job_taken_from_a_lost_agent_waits_from_then(self, lone_world: World) -> None:
        queue, pool = (
            make_queue(
                lone_world,
                lease=LeasePolicy(lease_seconds=15),
                policy=QueuePolicy(agent_seen_seconds=5),
            ),
            unique_pool(),
        )
        pipeline_id, run_id = queue.start(job("ONLY", pool, timeout="10s"))
        lost = queue.claim("doomed", pool)
        assert lost is not None

        queue.sweep_after(16 * SECOND)  # the lease expired: taken back
        queue.sweep_after(1 * SECOND)
        only = queue.jobs(pipeline_id, run_id)["ONLY"]
        assert only["status"] == "REDISPATCH"
        assert only["message"] == (
            "agent lost (played/doomed); redispatching;"
            f" waiting for an agent in pool '{pool}': no agent of that pool is connected"
        )

        queue.sweep_after(8 * SECOND)  # 25 s since it was queued, 9 s since it was taken back
        assert queue.jobs(pipeline_id, run_id)["ONLY"]["status"] == "REDISPATCH"
        queue.sweep_after(2 * SECOND)
        only = queue.jobs(pipeline_id, run_id)["ONLY"]
        assert only["status"] == "FAILED"
        assert only["message"] == (
            "no agent could take it within 10s:"
            f" waiting for an agent in pool '{pool}': no agent of that pool is connected"
        )

    def test_a_rescuer_takes_it_with_only_the_lost_agent_in_its_message(
        self, lone_world: World
    ) -> None:
        queue = make_queue(lone_world, lease=LeasePolicy(lease_seconds=15))
        pool = unique_pool()
        pipeline_id, run_id = queue.start(job("ONLY", pool))
        assert queue.claim("doomed", pool) is not None
        queue.sweep_after(16 * SECOND)
        queue.sweep_after(1 * SECOND)
        assert "waiting for" in queue.jobs(pipeline_id, run_id)["ONLY"]["message"]

        assert queue.claim("rescuer", pool) is not None
        only = queue.jobs(pipeline_id, run_id)["ONLY"]
        assert only["message"] == "agent lost (played/doomed); redispatching"
