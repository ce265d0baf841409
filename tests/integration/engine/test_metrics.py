"""What the engine counts for /metrics, on the fake clock: each rig has an engine, and so
counters, of its own, so every count is exact.

Counts are taken once the transaction that made the change has committed; one that rolled back
counts nothing.
"""

import pytest

from stageline.api.scrape import DatabaseCollector
from stageline.domain.errors import InvalidInput
from stageline.engine.metrics import EngineMetrics
from stageline.schemas.runs import RunCreate
from tests.factories import stage

from .rig import FakeClock, Rig


def sample(metrics: EngineMetrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(f"stageline_{name}", labels) or 0.0


def gauges(rig: Rig) -> dict[str, float]:
    collector = DatabaseCollector(rig.db, rig.clock, agent_seen_seconds=60)
    return {family.name: family.samples[0].value for family in collector.collect()}


class TestRunCounts:
    def test_a_run_counts_as_started_by_its_trigger_and_as_finished_by_its_status(
        self, rig: Rig
    ) -> None:
        metrics = rig.engine.metrics
        run_id = rig.start(rig.pipeline(stage("BUILD", rig.job("COMPILE"))))
        assert sample(metrics, "runs_started_total", trigger="Manual") == 1
        assert sample(metrics, "runs_finished_total", status="COMPLETED", trigger="Manual") == 0

        claim = rig.claim()
        claim.send(*claim.whole_life())

        assert rig.snapshot(run_id).status("run") == "COMPLETED"
        assert sample(metrics, "runs_started_total", trigger="Manual") == 1
        assert sample(metrics, "runs_finished_total", status="COMPLETED", trigger="Manual") == 1

    def test_a_stopped_run_and_a_retried_one_count_each_ending(self, rig: Rig) -> None:
        metrics = rig.engine.metrics
        run_id = rig.start(rig.pipeline(stage("BUILD", rig.job("COMPILE"))))
        rig.stop(run_id)
        rig.retry(run_id)
        claim = rig.claim()
        claim.send(*claim.whole_life("FAILED"))

        assert sample(metrics, "runs_started_total", trigger="Manual") == 1
        assert sample(metrics, "runs_finished_total", status="CANCELED", trigger="Manual") == 1
        assert sample(metrics, "runs_finished_total", status="FAILED", trigger="Manual") == 1

    def test_a_run_whose_transaction_rolled_back_counts_nothing(self, rig: Rig) -> None:
        pipeline_id = rig.pipeline(stage("BUILD", rig.job("COMPILE")))

        def refuse(*_: object) -> None:
            raise InvalidInput("refused inside the run's transaction")

        with pytest.raises(InvalidInput):
            rig.engine.start_run(
                project_id=rig.project_id,
                pipeline_id=pipeline_id,
                request=RunCreate(),
                executor=rig.executor,
                with_run=refuse,
            )
        assert sample(rig.engine.metrics, "runs_started_total", trigger="Manual") == 0


class TestJobCounts:
    def test_a_claim_observes_how_long_the_job_waited_in_the_queue(self, rig: Rig) -> None:
        metrics = rig.engine.metrics
        rig.start(rig.pipeline(stage("BUILD", rig.job("COMPILE"))))
        rig.clock.advance(7_000)
        rig.claim()

        assert sample(metrics, "job_queue_wait_seconds_count") == 1
        assert sample(metrics, "job_queue_wait_seconds_sum") == 7.0
        assert sample(metrics, "job_queue_wait_seconds_bucket", le="5.0") == 0
        assert sample(metrics, "job_queue_wait_seconds_bucket", le="10.0") == 1
        assert sample(metrics, "job_queue_wait_seconds_bucket", le="+Inf") == 1

    def test_a_job_taken_from_a_lost_agent_counts_as_a_redispatch(self, rig: Rig) -> None:
        rig.start(rig.pipeline(stage("BUILD", rig.job("COMPILE"))))
        claim = rig.claim()
        claim.send(claim.started())
        rig.clock.advance(rig.policy.lease_ms + 1)
        rig.sweeper.run_once()

        assert sample(rig.engine.metrics, "job_redispatches_total") == 1
        rig.claim()
        assert sample(rig.engine.metrics, "job_queue_wait_seconds_count") == 2


class TestDatabaseGauges:
    def test_queued_jobs_and_connected_agents_are_read_from_the_database(
        self, rig: Rig, clock: FakeClock
    ) -> None:
        before = gauges(rig)
        rig.start(rig.pipeline(stage("BUILD", rig.job("COMPILE"), rig.job("TEST"))))
        assert gauges(rig)["stageline_jobs_queued"] == before["stageline_jobs_queued"] + 2

        rig.claim("builder-metrics", "host-m")
        after = gauges(rig)
        assert after["stageline_jobs_queued"] == before["stageline_jobs_queued"] + 1
        assert after["stageline_agents_connected"] >= 1
        clock.advance(3_600_000)  # past every claim this module's tests made, on their clocks
        assert gauges(rig)["stageline_agents_connected"] == 0
