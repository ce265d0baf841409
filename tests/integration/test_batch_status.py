"""POST /v5/{project_id}/api/pipelines/status: every rule of the endpoint, on each database."""

import json
import secrets
import threading
from typing import Any

import pytest
from sqlalchemy import event, text

from stageline.auth import accounts
from stageline.auth.roles import Role
from stageline.engine.dispatcher import Dispatcher, LeasePolicy
from stageline.engine.journal import Actor
from stageline.engine.runs import RunEngine, RunScope
from stageline.engine.scheduler import Executor
from stageline.schemas.jobs import AgentEvent, ClaimRequest, EventBatch
from stageline.schemas.runs import RunCreate
from stageline.store.database import Database
from stageline.store.queries import identity
from stageline.store.queries import pipelines as pipeline_queries
from stageline.store.tables import Pipeline, PipelineRun
from tests.factories import World, definition, shell_job, stage
from tests.gitrepos import GitRepo
from tests.wire import BUILD_PARAM_KEYS, LATEST_RUN_KEYS

SPEC_EXAMPLE: dict[str, Any] = {
    "pipeline_id": "d19799d619424b2bb2625ec2d93ea087",
    "pipeline_run_id": "ad6b7f66283a45be9c1f82b06c831e59",
    "executor_id": "847a5317086c41798469d0868535943a",
    "executor_name": "Beta environment account",
    "stage_status_list": [
        {
            "name": "Phase_1",
            "sequence": 0,
            "status": "FAILED",
            "start_time": "2023-03-04 16:48:09",
            "end_time": "2023-03-04 16:50:11",
        }
    ],
    "status": "FAILED",
    "run_number": 2,
    "trigger_type": "Manual",
    "build_params": {
        "action": None,
        "build_type": "branch",
        "commit_id": "fc93c34f906aeb1cc031e3f6f8b2baeac078ae4b",
        "event_type": "Manual",
        "merge_id": None,
        "message": "init",
        "source_branch": None,
        "tag": None,
        "target_branch": "test-lbdsb11",
        "codehub_id": "2111699716",
        "git_url": "http://example.com/clsyz00001/111.git",
    },
    "artifact_params": None,
    "start_time": 1677919688000,
    "end_time": 1677919811000,
}
SPEC_PROJECT = "54f90b75fc1447b1b65e8d3a9f77923d"


class FakeClock:
    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


SPEC_POOL = '{"pool": "spec"}'
"""The example's job goes to a pool of its own, so that no other test's job is claimed."""


class Wakes:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


def _spec_pipeline(db: Database, world: World, pipeline_id: str) -> None:
    with db.writer() as session:
        pipeline_queries.insert_pipeline(
            session,
            Pipeline(
                id=pipeline_id,
                project_id=world.project_id,
                name=f"spec-{pipeline_id[:6]}",
                description="",
                is_publish=False,
                manifest_version="3.0",
                definition=definition(
                    stage("PHASE_1", shell_job("JOB", "true", resource=SPEC_POOL), name="Phase_1")
                ),
                sources=[
                    {
                        "type": "code",
                        "params": {
                            "git_type": "codehub",
                            "codehub_id": "2111699716",
                            "git_url": "http://example.com/clsyz00001/111.git",
                            "default_branch": "master",
                        },
                    }
                ],
                variables=[],
                schedules=[],
                triggers=[],
                creator_id=world.admin.user_id,
                updater_id=world.admin.user_id,
                created_at=1677900000000,
                updated_at=1677900000000,
                run_counter=0,
                deleted=False,
            ),
        )


class TestSpecExample:
    def test_the_engine_reproduces_the_example_field_for_field(
        self, quiet_db: Database, quiet_world: World
    ) -> None:
        """Two runs driven through the engine with the example's clock; the second fails."""
        db, world = quiet_db, quiet_world
        pipeline_id = secrets.token_hex(16)
        _spec_pipeline(db, world, pipeline_id)
        clock = FakeClock(1677919000000)
        engine = RunEngine(db, clock=clock)
        wakes = Wakes()
        engine.on_queued = wakes
        executor = Executor(
            user_id=world.developer.user_id, display_name="Beta environment account"
        )
        request = RunCreate.model_validate(
            {
                "sources": [
                    {
                        "type": "code",
                        "params": {
                            "git_type": "codehub",
                            "git_url": "http://example.com/clsyz00001/111.git",
                            "codehub_id": "2111699716",
                            "build_params": {
                                "build_type": "branch",
                                "target_branch": "test-lbdsb11",
                                "commit_id": "fc93c34f906aeb1cc031e3f6f8b2baeac078ae4b",
                                "message": "init",
                            },
                        },
                    }
                ]
            }
        )
        first = engine.start_run(
            project_id=world.project_id, pipeline_id=pipeline_id, request=request, executor=executor
        )
        engine.stop_run(RunScope(world.project_id, pipeline_id, first), actor=Actor.user("test"))
        clock.now = 1677919688000
        run_id = engine.start_run(
            project_id=world.project_id, pipeline_id=pipeline_id, request=request, executor=executor
        )
        dispatcher = Dispatcher(engine, LeasePolicy())
        job = dispatcher.claim(ClaimRequest(agent="t", pool="spec"), agent_name="test")
        assert job is not None
        assert wakes.count == 2
        clock.now = 1677919689000
        started = AgentEvent(seq=1, kind="job_started")
        dispatcher.report(job.job_run_id, EventBatch(dispatch_id=job.dispatch_id, events=[started]))
        clock.now = 1677919811000
        failed = AgentEvent(seq=2, kind="job_finished", outcome="FAILED", message="exit 1")
        dispatcher.report(job.job_run_id, EventBatch(dispatch_id=job.dispatch_id, events=[failed]))

        (item,) = world.status(pipeline_id)
        expected = {
            **SPEC_EXAMPLE,
            "pipeline_id": pipeline_id,
            "pipeline_run_id": run_id,
            "executor_id": world.developer.user_id,
        }
        assert {k: item[k] for k in expected if k != "build_params"} == {
            k: v for k, v in expected.items() if k != "build_params"
        }
        assert item["build_params"] == {
            **SPEC_EXAMPLE["build_params"],
            "source_codehub_id": None,
            "source_codehub_url": None,
            "source_codehub_http_url": None,
        }

    def test_stored_rows_render_as_the_example_byte_for_byte(
        self, db: Database, client: Any, settings: Any
    ) -> None:
        """The example's own IDs in its own project: the response text equals the example's
        JSON plus the fields the example leaves out (three build_params keys and the URLs)."""
        with db.reader() as session:
            exists = identity.read_project(session, project_id=SPEC_PROJECT) is not None
        if not exists:
            accounts.create_project(db, name="spec-example", now=1, project_id=SPEC_PROJECT)
        world = World.create(client, db, settings)
        accounts.add_member(
            db, project_id=SPEC_PROJECT, user_name=world.viewer.name, role=Role.VIEWER
        )
        pipeline_id = SPEC_EXAMPLE["pipeline_id"]
        with db.writer() as session:
            if session.get(Pipeline, pipeline_id) is None:
                pipeline_queries.insert_pipeline(
                    session,
                    Pipeline(
                        id=pipeline_id,
                        project_id=SPEC_PROJECT,
                        name="spec",
                        description="",
                        is_publish=False,
                        manifest_version="3.0",
                        definition='{"stages":[]}',
                        sources=[],
                        variables=[],
                        schedules=[],
                        triggers=[],
                        creator_id=SPEC_EXAMPLE["executor_id"],
                        updater_id=SPEC_EXAMPLE["executor_id"],
                        created_at=1,
                        updated_at=1,
                        run_counter=2,
                        deleted=False,
                        latest_run_id=SPEC_EXAMPLE["pipeline_run_id"],
                    ),
                )
                session.add(
                    PipelineRun(
                        id=SPEC_EXAMPLE["pipeline_run_id"],
                        pipeline_id=pipeline_id,
                        project_id=SPEC_PROJECT,
                        run_number=2,
                        status="FAILED",
                        trigger_type="Manual",
                        executor_id=SPEC_EXAMPLE["executor_id"],
                        executor_name="Beta environment account",
                        description="",
                        build_params={
                            **SPEC_EXAMPLE["build_params"],
                            "source_codehub_id": None,
                            "source_codehub_url": None,
                            "source_codehub_http_url": None,
                        },
                        artifact_params=None,
                        sources=[],
                        variables=[],
                        definition="{}",
                        stage_summary=[
                            {
                                "id": "s1",
                                "name": "Phase_1",
                                "sequence": 0,
                                "status": "FAILED",
                                "start_time": 1677919689000,
                                "end_time": 1677919811000,
                            }
                        ],
                        start_time=1677919688000,
                        end_time=1677919811000,
                        updated_at=1,
                    )
                )
        response = client.post(
            f"/v5/{SPEC_PROJECT}/api/pipelines/status",
            json=[pipeline_id],
            headers=world.viewer.headers,
        )
        assert response.status_code == 200
        (item,) = response.json()
        for key, value in SPEC_EXAMPLE.items():
            if key == "build_params":
                assert {k: item[key][k] for k in value} == value
            else:
                assert item[key] == value, key
        base = "https://ci.example.test/projects/54f90b75fc1447b1b65e8d3a9f77923d/pipelines"
        assert item["modify_url"] == f"{base}/{pipeline_id}/edit"
        assert item["detail_url"] == f"{base}/{pipeline_id}/runs/ad6b7f66283a45be9c1f82b06c831e59"


class TestBody:
    def test_an_empty_array_answers_an_empty_array(self, world: World) -> None:
        assert world.status() == []

    @pytest.mark.parametrize(
        ("body", "named"),
        [
            (["d19799d619424b2bb2625ec2d93ea08"], "body[0]"),
            (["d19799d619424b2bb2625ec2d93ea087", "not-an-id"], "body[1]"),
            (["d19799d619424b2bb2625ec2d93ea087-"], "body[0]"),
            ([12345678901234567890123456789012], "body[0]"),
            ({"ids": ["d19799d619424b2bb2625ec2d93ea087"]}, "body"),
            ("d19799d619424b2bb2625ec2d93ea087", "body"),
            ([None], "body[0]"),
        ],
    )
    def test_a_bad_body_is_refused_naming_the_bad_element(
        self, world: World, body: Any, named: str
    ) -> None:
        response = world.client.post(
            f"{world.base}/pipelines/status", json=body, headers=world.viewer.headers
        )
        assert response.status_code == 400
        error = response.json()
        assert error["error_code"] == "DEVCP.00021400"
        assert error["error_msg"].startswith(f"{named}:")
        assert response.headers["X-Request-Id"]

    def test_malformed_json_is_a_400(self, world: World) -> None:
        response = world.client.post(
            f"{world.base}/pipelines/status",
            content=b'["abc",',
            headers={**world.viewer.headers, "Content-Type": "application/json"},
        )
        assert response.status_code == 400
        assert response.json() == {
            "error_code": "DEVCP.00021400",
            "error_msg": "request body is not valid JSON",
        }

    def test_a_missing_body_is_a_400(self, world: World) -> None:
        response = world.client.post(f"{world.base}/pipelines/status", headers=world.viewer.headers)
        assert response.status_code == 400
        assert "body" in response.json()["error_msg"]

    def test_more_ids_than_the_limit_are_refused_stating_it(self, world: World) -> None:
        ids = [secrets.token_hex(16) for _ in range(101)]
        response = world.client.post(
            f"{world.base}/pipelines/status", json=ids, headers=world.viewer.headers
        )
        assert response.status_code == 400
        assert "at most 100" in response.json()["error_msg"]
        assert world.status(*ids[:100]) == []


class TestWhoAppears:
    def test_only_run_pipelines_of_this_project_appear_once_in_request_order(
        self, world: World, client: Any, db: Database, settings: Any
    ) -> None:
        first, second, never_run, deleted = (world.create_pipeline() for _ in range(4))
        other = World.create(client, db, settings)
        foreign = other.create_pipeline()
        for pipeline_id in (first, second, deleted):
            world.wait_for(pipeline_id, world.run(pipeline_id))
        other.wait_for(foreign, other.run(foreign))
        response = client.delete(f"{world.base}/pipelines/{deleted}", headers=world.admin.headers)
        assert response.status_code == 200
        unknown = secrets.token_hex(16)

        items = world.status(second, unknown, foreign, first, never_run, second, deleted)

        assert [item["pipeline_id"] for item in items] == [second, first]
        # the foreign project's own members still see theirs
        assert [i["pipeline_id"] for i in other.status(foreign)] == [foreign]

    def test_a_deleted_pipeline_disappears_and_its_running_run_is_canceled(
        self, world: World
    ) -> None:
        pipeline_id = world.create_pipeline(definition(stage("S", shell_job("SLOW", "sleep 30"))))
        run_id = world.run(pipeline_id)
        world.wait_for(pipeline_id, run_id, {"RUNNING"})
        response = world.client.delete(
            f"{world.base}/pipelines/{pipeline_id}", headers=world.admin.headers
        )
        assert response.status_code == 200
        assert world.status(pipeline_id) == []
        with world.db.reader() as session:
            run = session.get(PipelineRun, run_id)
            assert run is not None
            assert run.status == "CANCELED"


class TestElement:
    def test_every_key_is_present_with_the_spec_types(
        self, world: World, git_repo: GitRepo
    ) -> None:
        pipeline_id = world.create_pipeline(
            definition(
                stage("BUILD", shell_job("A", "true"), name="Build"),
                stage("TEST", shell_job("B", "exit 1"), name="Test"),
                stage("DEPLOY", shell_job("C", "true"), name="Deploy"),
            ),
            sources=[
                {
                    "type": "code",
                    "params": {
                        "git_type": "github",
                        "git_url": git_repo.file_url,
                        "default_branch": "main",
                    },
                }
            ],
        )
        run_id = world.run(pipeline_id)
        world.wait_for(pipeline_id, run_id)
        (item,) = world.status(pipeline_id)
        assert set(item) == LATEST_RUN_KEYS
        assert set(item["build_params"]) == BUILD_PARAM_KEYS
        assert item["build_params"]["target_branch"] == "main"
        assert item["build_params"]["build_type"] == "branch"
        assert item["build_params"]["event_type"] == "Manual"
        assert item["artifact_params"] is None
        assert item["status"] == "FAILED"
        assert item["executor_id"] == world.developer.user_id
        assert item["executor_name"] == world.developer.display_name
        assert isinstance(item["start_time"], int)
        assert isinstance(item["end_time"], int)
        assert len(str(item["start_time"])) == 13
        assert [(s["name"], s["sequence"], s["status"]) for s in item["stage_status_list"]] == [
            ("Build", 0, "COMPLETED"),
            ("Test", 1, "FAILED"),
            ("Deploy", 2, "INIT"),
        ]
        deploy = item["stage_status_list"][2]
        assert deploy["start_time"] is None
        assert deploy["end_time"] is None
        for finished in item["stage_status_list"][:2]:
            assert len(finished["start_time"]) == 19
            assert finished["start_time"][10] == " "
        assert item["detail_url"].endswith(f"/runs/{run_id}")

    def test_a_running_run_has_a_null_end_time_and_is_the_latest(self, world: World) -> None:
        pipeline_id = world.create_pipeline(definition(stage("S", shell_job("J", "sleep 30"))))
        done = world.run(pipeline_id)
        world.client.post(
            f"{world.base}/pipelines/{pipeline_id}/pipeline-runs/{done}/stop",
            headers=world.developer.headers,
        )
        running = world.run(pipeline_id)
        world.wait_for(pipeline_id, running, {"RUNNING"})
        (item,) = world.status(pipeline_id)
        assert (item["pipeline_run_id"], item["run_number"], item["status"]) == (
            running,
            2,
            "RUNNING",
        )
        assert item["end_time"] is None
        world.client.post(
            f"{world.base}/pipelines/{pipeline_id}/pipeline-runs/{running}/stop",
            headers=world.developer.headers,
        )

    def test_an_artifact_sourced_pipeline_reports_artifact_params(self, world: World) -> None:
        pipeline_id = world.create_pipeline(
            sources=[
                {
                    "type": "artifact",
                    "params": {
                        "artifact_type": "docker",
                        "package_name": "web",
                        "version": "1.4.2",
                        "organization": "acme",
                        "branch_filter": "release/*",
                    },
                }
            ]
        )
        world.wait_for(pipeline_id, world.run(pipeline_id))
        (item,) = world.status(pipeline_id)
        assert item["artifact_params"] == {
            "version": "1.4.2",
            "branch_filter": "release/*",
            "package_name": "web",
            "organization": "acme",
        }

    def test_the_response_is_a_bare_json_array(self, world: World) -> None:
        pipeline_id = world.create_pipeline()
        world.wait_for(pipeline_id, world.run(pipeline_id))
        response = world.client.post(
            f"{world.base}/pipelines/status", json=[pipeline_id], headers=world.viewer.headers
        )
        assert response.headers["content-type"] == "application/json"
        assert isinstance(json.loads(response.content), list)


BATCH_PATH_SHAPES = (
    "SELECT seq, pipeline_id FROM status_change WHERE seq >",
    "SELECT id, project_id, latest_run_id FROM pipeline WHERE id IN",
    "pipeline_run.executor_name, pipeline_run.stage_summary",
)
"""The statements batch status may send: the log's tail, the pipeline rows, the run rows."""


class TestReadPath:
    def test_statement_count_does_not_grow_with_ids_or_history(
        self, world: World, db: Database
    ) -> None:
        """A repeated question costs at most one statement, the change log's tail, whatever the
        IDs and the history; a run that changed is read again from its own row, never its stages."""
        small = world.create_pipeline()
        world.wait_for(small, world.run(small))
        busy = world.create_pipeline()
        for _ in range(5):
            world.wait_for(busy, world.run(busy))
        unknown = [secrets.token_hex(16) for _ in range(50)]
        world.status(small, busy, *unknown)  # renders both, learns the unknown ones once
        statements: list[str] = []

        def count(*args: Any) -> None:
            # Only the batch path's statements: sweeps, the change feed and the test's agent
            # share this engine and run meanwhile.
            if any(shape in args[2] for shape in BATCH_PATH_SHAPES):
                statements.append(str(args[2]))

        event.listen(db.engine, "before_cursor_execute", count)
        try:
            world.status(small)
            one = list(statements)
            statements.clear()
            world.status(small, busy, *unknown)
            many = list(statements)
            statements.clear()
            world.wait_for(small, world.run(small))
            statements.clear()
            world.status(small, busy, *unknown)
            changed = list(statements)
        finally:
            event.remove(db.engine, "before_cursor_execute", count)
        tail, lookup, runs = BATCH_PATH_SHAPES
        # The tail itself is read at most once per question (`test_status_cache.TestLogTail`),
        # on PostgreSQL through a connection of its own that these counts do not see.
        assert [s for s in one + many if tail not in s] == []
        assert len([s for s in one if tail in s]) <= 1
        # The changed pipeline alone is read again: its pipeline row, then its latest run's row.
        shapes = [next(shape for shape in BATCH_PATH_SHAPES if shape in s) for s in changed]
        assert [shape for shape in shapes if shape != tail] == [lookup, runs]

    def test_a_run_that_changes_is_answered_afresh(self, world: World) -> None:
        pipeline_id = world.create_pipeline(definition(stage("S", shell_job("J", "sleep 30"))))
        run_id = world.run(pipeline_id)
        world.wait_for(pipeline_id, run_id, {"RUNNING"})
        (running,) = world.status(pipeline_id)
        assert running["status"] == "RUNNING"
        world.client.post(
            f"{world.base}/pipelines/{pipeline_id}/pipeline-runs/{run_id}/stop",
            headers=world.developer.headers,
        )
        (stopped,) = world.status(pipeline_id)
        assert stopped["status"] == "CANCELED"
        assert stopped["end_time"] is not None


class TestNoStalls:
    def test_a_request_held_up_by_the_database_does_not_hold_up_the_others(
        self, world: World, db: Database
    ) -> None:
        """While one batch-status request waits on a table lock, another is answered: the
        route reads on a worker thread, never on the event loop."""
        if db.is_sqlite:
            pytest.skip("SQLite readers never wait for a lock (write-ahead log)")
        cached = world.create_pipeline()
        world.wait_for(cached, world.run(cached))
        world.status(cached)
        uncached = world.create_pipeline()
        answers: dict[str, list[dict[str, Any]]] = {}
        with db.engine.connect() as locker:
            locker.execute(text("LOCK TABLE pipeline IN ACCESS EXCLUSIVE MODE"))
            waiting = threading.Thread(
                target=lambda: answers.setdefault("uncached", world.status(uncached))
            )
            waiting.start()
            _wait_for_lock_waiter(db)
            answers["cached"] = world.status(cached)
            assert waiting.is_alive(), "the uncached request should still wait for the lock"
            locker.rollback()
        waiting.join(timeout=30)
        assert [item["pipeline_id"] for item in answers["cached"]] == [cached]
        assert answers["uncached"] == []


def _wait_for_lock_waiter(db: Database) -> None:
    """Until some statement waits for a lock on the pipeline table (bounded, not a timing check)."""
    query = text(
        "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'pipeline'::regclass"
    )
    for _ in range(500):
        with db.engine.connect() as connection:
            if connection.execute(query).scalar_one():
                return
        threading.Event().wait(0.01)
    raise AssertionError("no request came to wait for the pipeline table")
