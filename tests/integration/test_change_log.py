"""The change log: every status change recorded once with who made it, readable as a run's
history, pruned by age, and fed to other processes as it commits."""

import threading
from typing import Any

from stageline.engine.journal import DAY_MS, prune_change_log
from stageline.store.database import Database
from stageline.store.feed import ChangeFeed
from stageline.store.queries import changes as change_queries
from stageline.store.queries.changes import Change
from tests.factories import World, definition, shell_job, stage


def _history(world: World, pipeline_id: str, run_id: str, **params: Any) -> dict[str, Any]:
    response = world.client.get(
        f"{world.base}/pipelines/{pipeline_id}/pipeline-runs/{run_id}/history",
        params=params,
        headers=world.viewer.headers,
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


class TestRunHistory:
    def test_a_run_tells_every_change_in_order_with_who_made_it(self, world: World) -> None:
        pipeline_id = world.create_pipeline(
            definition(stage("BUILD", shell_job("COMPILE", "true"), name="Build"))
        )
        run_id = world.run(pipeline_id)
        world.wait_for(pipeline_id, run_id)

        changes = _history(world, pipeline_id, run_id)["changes"]

        seqs = [c["seq"] for c in changes]
        assert seqs == sorted(seqs)
        assert len(set(seqs)) == len(seqs)
        created = changes[0]
        assert (created["entity"], created["from_status"], created["to_status"]) == (
            "run",
            None,
            "RUNNING",
        )
        assert (created["actor_type"], created["actor"]) == ("user", world.developer.name)
        job = [(c["from_status"], c["to_status"]) for c in changes if c["entity"] == "job"]
        assert job == [("INIT", "QUEUED"), ("QUEUED", "RUNNING"), ("RUNNING", "COMPLETED")]
        started = next(c for c in changes if c["entity"] == "job" and c["to_status"] == "RUNNING")
        assert started["actor_type"] == "agent"
        assert started["entity_name"] == "COMPILE"
        stage_changes = [c for c in changes if c["entity"] == "stage"]
        assert {c["entity_name"] for c in stage_changes} == {"Build"}
        assert changes[-1]["entity"] == "run"
        assert (changes[-1]["from_status"], changes[-1]["to_status"]) == ("RUNNING", "COMPLETED")

    def test_a_stop_is_recorded_as_the_user_who_stopped(self, world: World) -> None:
        pipeline_id = world.create_pipeline(definition(stage("S", shell_job("J", "sleep 30"))))
        run_id = world.run(pipeline_id)
        world.wait_for(pipeline_id, run_id, {"RUNNING"})
        response = world.client.post(
            f"{world.base}/pipelines/{pipeline_id}/pipeline-runs/{run_id}/stop",
            headers=world.developer.headers,
        )
        assert response.status_code == 200

        changes = _history(world, pipeline_id, run_id)["changes"]

        canceled = [c for c in changes if c["to_status"] == "CANCELED"]
        assert {c["entity"] for c in canceled} == {"run", "stage", "job", "step"}
        assert {(c["actor_type"], c["actor"]) for c in canceled} == {("user", world.developer.name)}

    def test_history_pages_with_after_seq(self, world: World) -> None:
        pipeline_id = world.create_pipeline()
        run_id = world.run(pipeline_id)
        world.wait_for(pipeline_id, run_id)
        everything = _history(world, pipeline_id, run_id)["changes"]

        first = _history(world, pipeline_id, run_id, limit=2)
        rest = _history(world, pipeline_id, run_id, after_seq=first["next_seq"])

        assert first["changes"] + rest["changes"] == everything
        assert rest["next_seq"] is None

    def test_another_projects_run_has_no_history_here(self, world: World, client: Any) -> None:
        pipeline_id = world.create_pipeline()
        run_id = world.run(pipeline_id)
        other = World.create(world.client, world.db, world.settings)

        response = other.client.get(
            f"{other.base}/pipelines/{pipeline_id}/pipeline-runs/{run_id}/history",
            headers=other.viewer.headers,
        )

        assert response.status_code == 404
        assert response.json()["error_code"] == "DEVPIPE.00011401"


class TestRetention:
    def test_changes_older_than_the_retention_are_pruned_but_the_newest_is_kept(
        self, world: World, db: Database
    ) -> None:
        pipeline_id = world.create_pipeline()
        run_id = world.run(pipeline_id)
        world.wait_for(pipeline_id, run_id)
        with db.connection() as connection:
            newest = change_queries.latest_seq(connection)
        far_future = 10**13 + 400 * DAY_MS

        pruned = prune_change_log(db, retention_days=30, now=far_future)

        assert pruned > 0
        with db.connection() as connection:
            assert change_queries.latest_seq(connection) == newest
            assert change_queries.changes_after(connection, after_seq=0)[0].seq == newest


class TestFeed:
    def test_a_committed_change_reaches_a_listening_feed(self, world: World, db: Database) -> None:
        pipeline_id = world.create_pipeline(definition(stage("S", shell_job("J", "true"))))
        heard: list[Change] = []
        queued = threading.Event()

        def listen(changes: list[Change]) -> None:
            heard.extend(changes)
            if any(
                c.pipeline_id == pipeline_id and c.entity == "job" and c.to_status == "QUEUED"
                for c in changes
            ):
                queued.set()

        feed = ChangeFeed(Database(world.settings.effective_database_url))
        feed.subscribe(listen)
        feed.start()
        try:
            world.wait_for(pipeline_id, world.run(pipeline_id))
            assert queued.wait(10), "the feed never told of the queued job"
        finally:
            feed.stop()
            feed.db.dispose()
        seqs = [c.seq for c in heard]
        assert seqs == sorted(seqs)
