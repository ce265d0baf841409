"""Runs end to end through the built-in executor: statuses, stop, detail, lists, logs, inputs."""

import contextlib
import secrets
import threading
from typing import Any

from stageline.domain.errors import Conflict
from stageline.engine.journal import Actor
from stageline.engine.runs import RunEngine, RunScope
from stageline.engine.scheduler import Executor
from stageline.schemas.runs import RunCreate
from stageline.store.database import Database
from stageline.store.queries import runs as run_queries
from tests.factories import World, definition, shell_job, stage
from tests.gitrepos import GitRepo


def logs(
    world: World, pipeline_id: str, run_id: str, job: dict[str, Any], **query: Any
) -> dict[str, Any]:
    step = job["steps"][0]
    response = world.client.post(
        f"{world.base}/pipelines/{pipeline_id}/pipeline-runs/{run_id}/jobs/{job['id']}/steps/{step['id']}/logs",
        json={"limit": 500, "sort": "asc", **query},
        headers=world.viewer.headers,
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


class TestLifecycle:
    def test_a_failed_stage_fails_the_run_and_later_stages_never_start(self, world: World) -> None:
        pipeline_id = world.create_pipeline(
            definition(
                stage("A", shell_job("OK", "echo fine")),
                stage(
                    "B", shell_job("BAD", "echo about to fail; exit 7"), shell_job("GOOD", "true")
                ),
                stage("C", shell_job("NEVER", "echo never")),
            )
        )
        detail = world.wait_for(pipeline_id, world.run(pipeline_id))
        assert detail["status"] == "FAILED"
        assert [s["status"] for s in detail["stages"]] == ["COMPLETED", "FAILED", "INIT"]
        bad = detail["stages"][1]["jobs"][0]
        assert bad["status"] == "FAILED"
        assert "exited with code 7" in bad["message"]
        assert bad["steps"][0]["status"] == "FAILED"
        never = detail["stages"][2]
        assert never["start_time"] is None
        assert never["end_time"] is None
        assert never["jobs"][0]["status"] == "INIT"
        assert detail["end_time"] >= detail["start_time"]

    def test_jobs_of_a_stage_run_in_parallel_and_respect_depends_on(self, world: World) -> None:
        script = "date +%s%N > /dev/null; sleep 1"
        pipeline_id = world.create_pipeline(
            definition(
                stage(
                    "S",
                    shell_job("P1", script),
                    shell_job("P2", script),
                    shell_job("AFTER", "true", depends_on=["P1", "P2"]),
                )
            )
        )
        detail = world.wait_for(pipeline_id, world.run(pipeline_id))
        p1, p2, after = detail["stages"][0]["jobs"]
        assert detail["status"] == "COMPLETED"
        assert p1["start_time"] < p2["end_time"]
        assert p2["start_time"] < p1["end_time"]
        assert after["start_time"] >= max(p1["end_time"], p2["end_time"])

    def test_a_job_whose_dependency_failed_is_skipped(self, world: World) -> None:
        pipeline_id = world.create_pipeline(
            definition(
                stage(
                    "S",
                    shell_job("FIRST", "exit 1"),
                    shell_job("SECOND", "true", depends_on=["FIRST"]),
                )
            )
        )
        detail = world.wait_for(pipeline_id, world.run(pipeline_id))
        assert [j["status"] for j in detail["stages"][0]["jobs"]] == ["FAILED", "SKIPPED"]
        assert detail["status"] == "FAILED"

    def test_stop_cancels_the_run_and_its_unfinished_stages(self, world: World) -> None:
        pipeline_id = world.create_pipeline(
            definition(
                stage("A", shell_job("OK", "true")),
                stage("B", shell_job("LONG", "sleep 60")),
                stage("C", shell_job("X", "true")),
            )
        )
        run_id = world.run(pipeline_id)
        deadline_detail = world.wait_for(pipeline_id, run_id, {"RUNNING"})
        while deadline_detail["stages"][1]["jobs"][0]["status"] != "RUNNING":
            deadline_detail = world.detail(pipeline_id, run_id)
        response = world.client.post(
            f"{world.base}/pipelines/{pipeline_id}/pipeline-runs/{run_id}/stop",
            headers=world.developer.headers,
        )
        assert response.json() == {"success": True}
        detail = world.wait_for(pipeline_id, run_id)
        assert detail["status"] == "CANCELED"
        assert [s["status"] for s in detail["stages"]] == ["COMPLETED", "CANCELED", "CANCELED"]
        assert detail["stages"][1]["jobs"][0]["message"] == f"canceled by {world.developer.name}"
        (item,) = world.status(pipeline_id)
        assert item["status"] == "CANCELED"
        assert item["end_time"] is not None

    def test_stopping_a_finished_run_is_a_409(self, world: World) -> None:
        pipeline_id = world.create_pipeline()
        run_id = world.run(pipeline_id)
        world.wait_for(pipeline_id, run_id)
        response = world.client.post(
            f"{world.base}/pipelines/{pipeline_id}/pipeline-runs/{run_id}/stop",
            headers=world.developer.headers,
        )
        assert response.status_code == 409
        assert "already ended" in response.json()["error_msg"]

    def test_stopping_an_unknown_run_is_a_404(self, world: World) -> None:
        pipeline_id = world.create_pipeline()
        response = world.client.post(
            f"{world.base}/pipelines/{pipeline_id}/pipeline-runs/{secrets.token_hex(16)}/stop",
            headers=world.developer.headers,
        )
        assert response.status_code == 404
        assert response.json()["error_code"] == "DEVCP.00012002"


class TestInputs:
    def test_steps_see_run_metadata_and_runtime_variables(
        self, world: World, git_repo: GitRepo
    ) -> None:
        script = 'echo "$PIPELINE_ID $PIPELINE_RUN_ID $RUN_NUMBER $BRANCH $TRIGGER_TYPE" '
        script += '"$GREETING $TOKEN"'
        pipeline_id = world.create_pipeline(
            definition(stage("S", shell_job("ENV", script))),
            variables=[
                {"name": "GREETING", "value": "hello", "is_runtime": True},
                {"name": "TOKEN", "value": "s3cr3t-value", "is_secret": True},
            ],
            sources=[
                {
                    "type": "code",
                    "params": {
                        "git_type": "gitlab",
                        "git_url": git_repo.file_url,
                        "default_branch": "main",
                    },
                }
            ],
        )
        run_id = world.run(pipeline_id, {"variables": [{"name": "GREETING", "value": "bonjour"}]})
        detail = world.wait_for(pipeline_id, run_id)
        text = logs(world, pipeline_id, run_id, detail["stages"][0]["jobs"][0])["log"]
        # after the lines of the checkout
        assert text.splitlines()[-1] == f"{pipeline_id} {run_id} 1 main Manual bonjour ***"

    def test_unknown_or_fixed_variables_are_refused(self, world: World) -> None:
        pipeline_id = world.create_pipeline(variables=[{"name": "FIXED", "value": "x"}])
        for name, problem in (("NOPE", "unknown variable"), ("FIXED", "not settable at run time")):
            response = world.client.post(
                f"{world.base}/pipelines/{pipeline_id}/run",
                json={"variables": [{"name": name, "value": "y"}]},
                headers=world.developer.headers,
            )
            assert response.status_code == 400
            assert response.json()["error_msg"].startswith("variables[0].name:")
            assert problem in response.json()["error_msg"]
        assert world.status(pipeline_id) == []  # nothing half-written

    def test_unchosen_stages_and_jobs_are_unselected(self, world: World) -> None:
        pipeline_id = world.create_pipeline(
            definition(
                stage("A", shell_job("A1", "true"), shell_job("A2", "true")),
                stage("B", shell_job("B1", "true")),
            )
        )
        run_id = world.run(pipeline_id, {"choose_stages": ["A"], "choose_jobs": ["A1", "B1"]})
        detail = world.wait_for(pipeline_id, run_id)
        assert detail["status"] == "COMPLETED"
        assert [s["status"] for s in detail["stages"]] == ["COMPLETED", "UNSELECTED"]
        assert [j["status"] for j in detail["stages"][0]["jobs"]] == ["COMPLETED", "UNSELECTED"]
        (item,) = world.status(pipeline_id)
        assert [s["status"] for s in item["stage_status_list"]] == ["COMPLETED", "UNSELECTED"]
        bad = world.client.post(
            f"{world.base}/pipelines/{pipeline_id}/run",
            json={"choose_stages": ["ZZZ"]},
            headers=world.developer.headers,
        )
        assert bad.status_code == 400
        assert bad.json()["error_msg"].startswith("choose_stages[0]:")

    def test_a_run_source_sets_build_params(self, world: World) -> None:
        pipeline_id = world.create_pipeline()
        body = {
            "sources": [
                {
                    "type": "code",
                    "params": {
                        "git_type": "github",
                        "git_url": "https://example.com/o/r.git",
                        "build_params": {"build_type": "tag", "tag": "v1.2.0"},
                    },
                }
            ]
        }
        world.wait_for(pipeline_id, world.run(pipeline_id, body))
        (item,) = world.status(pipeline_id)
        params = item["build_params"]
        assert (
            params["build_type"],
            params["tag"],
            params["git_url"],
            params["target_branch"],
        ) == (
            "tag",
            "v1.2.0",
            "https://example.com/o/r.git",
            None,
        )


class TestReads:
    def test_detail_by_id_by_number_and_latest(self, world: World) -> None:
        pipeline_id = world.create_pipeline()
        first = world.run(pipeline_id)
        world.wait_for(pipeline_id, first)
        second = world.run(pipeline_id)
        world.wait_for(pipeline_id, second)
        url = f"{world.base}/pipelines/{pipeline_id}/pipeline-runs/detail"

        def get(**params: str) -> Any:
            return world.client.get(url, params=params, headers=world.viewer.headers)

        assert get(pipeline_run_id=first).json()["run_number"] == 1
        assert get(pipeline_run_number="2").json()["id"] == second
        assert get().json()["id"] == second
        assert get(pipeline_run_number="x").status_code == 400
        assert get(pipeline_run_number="9").status_code == 404

    def test_list_runs_filters_pages_and_sorts(self, world: World) -> None:
        pipeline_id = world.create_pipeline(
            definition(stage("S", shell_job("J", '[ "$RUN_NUMBER" != 2 ]')))
        )
        for _ in range(3):
            world.wait_for(pipeline_id, world.run(pipeline_id))
        url = f"{world.base}/pipelines/{pipeline_id}/pipeline-runs/list"
        page = world.client.post(url, json={"limit": 2}, headers=world.viewer.headers).json()
        assert page["total"] == 3
        assert [r["run_number"] for r in page["pipeline_runs"]] == [3, 2]
        failed = world.client.post(
            url, json={"status": ["FAILED"]}, headers=world.viewer.headers
        ).json()
        assert [r["run_number"] for r in failed["pipeline_runs"]] == [2]
        asc = world.client.post(
            url, json={"sort_dir": "asc", "offset": 1}, headers=world.viewer.headers
        ).json()
        assert [r["run_number"] for r in asc["pipeline_runs"]] == [2, 3]
        bad = world.client.post(url, json={"status": ["DONE"]}, headers=world.viewer.headers)
        assert bad.status_code == 400

    def test_logs_page_by_line_offsets(self, world: World) -> None:
        pipeline_id = world.create_pipeline(definition(stage("S", shell_job("J", "seq 1 25"))))
        run_id = world.run(pipeline_id)
        job = world.wait_for(pipeline_id, run_id)["stages"][0]["jobs"][0]
        first = logs(world, pipeline_id, run_id, job, limit=10)
        assert (first["log"], first["start_offset"], first["end_offset"], first["has_more"]) == (
            "".join(f"{i}\n" for i in range(1, 11)),
            "0",
            "10",
            True,
        )
        rest = logs(world, pipeline_id, run_id, job, start_offset=20, limit=10)
        assert (rest["log"], rest["end_offset"], rest["has_more"]) == (
            "21\n22\n23\n24\n25\n",
            "25",
            False,
        )
        tail = logs(world, pipeline_id, run_id, job, sort="desc", limit=2)
        assert tail["log"] == "25\n24\n"


class TestEngine:
    def test_concurrent_starts_get_gap_free_run_numbers(
        self, quiet_world: World, quiet_db: Database
    ) -> None:
        world, db = quiet_world, quiet_db
        pipeline_id = world.create_pipeline(definition(stage("S", shell_job("J", "true"))))
        engine = RunEngine(db)  # no dispatcher: runs stay queued, only numbering is under test
        executor = Executor(user_id=world.developer.user_id, display_name="t")
        run_ids: list[str] = []
        errors: list[BaseException] = []

        def start() -> None:
            try:
                run_ids.append(
                    engine.start_run(
                        project_id=world.project_id,
                        pipeline_id=pipeline_id,
                        request=RunCreate(),
                        executor=executor,
                    )
                )
            except BaseException as error:
                errors.append(error)

        threads = [threading.Thread(target=start) for _ in range(12)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        with db.reader() as session:
            numbers = sorted(run_queries.read_run(session, run_id=r).run_number for r in run_ids)  # type: ignore[union-attr]
        assert numbers == list(range(1, 13))
        (item,) = world.status(pipeline_id)
        assert item["run_number"] == 12
        for run_id in run_ids:
            with contextlib.suppress(Conflict):  # the concurrency limit may have ended it
                engine.stop_run(
                    RunScope(world.project_id, pipeline_id, run_id), actor=Actor.user("test")
                )
