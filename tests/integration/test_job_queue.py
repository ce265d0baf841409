"""The database job queue executors claim from."""

import threading

from stageline.engine.dispatcher import JobQueue
from stageline.engine.runs import RunEngine
from stageline.engine.scheduler import Executor
from stageline.schemas.runs import RunCreate
from stageline.store.database import Database
from stageline.store.tables import JobRun
from tests.factories import World, definition, shell_job, stage


def queue_runs(world: World, db: Database, count: int) -> tuple[str, list[str]]:
    pipeline_id = world.create_pipeline(definition(stage("S", shell_job("J", "true"))))
    engine = RunEngine(db)
    executor = Executor(user_id=world.developer.user_id, display_name="t")
    run_ids = [
        engine.start_run(
            project_id=world.project_id,
            pipeline_id=pipeline_id,
            request=RunCreate(),
            executor=executor,
        )
        for _ in range(count)
    ]
    return pipeline_id, run_ids


def drain(queue: JobQueue, claimant: str) -> list[str]:
    claimed = []
    while (job := queue.claim_next(claimant)) is not None:
        claimed.append(job.job_run_id)
    return claimed


class TestJobQueue:
    def test_concurrent_claimers_take_each_job_exactly_once(
        self, quiet_world: World, quiet_db: Database
    ) -> None:
        drain(JobQueue(quiet_db), "earlier-tests")
        _, run_ids = queue_runs(quiet_world, quiet_db, 12)
        results: dict[str, list[str]] = {}

        def claimer(name: str) -> None:
            results[name] = drain(JobQueue(quiet_db), name)

        threads = [threading.Thread(target=claimer, args=(f"c{i}",)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        claimed = [job for jobs in results.values() for job in jobs]
        assert len(claimed) == len(set(claimed)) == 12
        with quiet_db.reader() as session:
            owners = {session.get_one(JobRun, job).claimed_by for job in claimed}
        assert owners <= set(results)
        with quiet_db.reader() as session:
            claimed_runs = {session.get_one(JobRun, job).run_id for job in claimed}
        assert claimed_runs == set(run_ids)

    def test_the_oldest_queued_job_is_claimed_first(
        self, quiet_world: World, quiet_db: Database
    ) -> None:
        queue = JobQueue(quiet_db)
        drain(queue, "earlier-tests")
        _, run_ids = queue_runs(quiet_world, quiet_db, 3)
        assert [job.run_id for job in iter(lambda: queue.claim_next("c"), None)] == run_ids

    def test_an_assignment_carries_the_steps_and_the_environment(
        self, quiet_world: World, quiet_db: Database
    ) -> None:
        queue = JobQueue(quiet_db)
        drain(queue, "earlier-tests")
        pipeline_id, (run_id,) = queue_runs(quiet_world, quiet_db, 1)
        job = queue.claim_next("c")
        assert job is not None
        assert (job.run_id, job.pipeline_id) == (run_id, pipeline_id)
        assert [step.script for step in job.steps] == ["true"]
        assert job.env["PIPELINE_RUN_ID"] == run_id
        assert job.env["RUN_NUMBER"] == "1"

    def test_stopped_jobs_are_reported_to_their_executor(
        self, quiet_world: World, quiet_db: Database
    ) -> None:
        queue = JobQueue(quiet_db)
        drain(queue, "earlier-tests")
        pipeline_id, (first, second) = queue_runs(quiet_world, quiet_db, 2)
        jobs = drain(queue, "c")
        RunEngine(quiet_db).stop_run(pipeline_id=pipeline_id, run_id=first, stopped_by="t")
        stopped = queue.stopped_among(jobs)
        assert len(stopped) == 1
        with quiet_db.reader() as session:
            assert session.get_one(JobRun, stopped.pop()).run_id == first
        RunEngine(quiet_db).stop_run(pipeline_id=pipeline_id, run_id=second, stopped_by="t")
