"""Pipelines as code in the repository: a pipeline whose code source names a `pipeline_file`
takes its stages from that file at the run's commit; a broken file fails the run with the
error, line and column, as its message."""

from typing import Any

from tests.factories import World, definition, shell_job, stage
from tests.gitrepos import GitRepo
from tests.integration.test_runs import logs

FILE = ".stageline/pipeline.yaml"
STAGES = """\
stages:
  - name: From the repository
    jobs:
      {job}:
        steps:
          - run: echo "ran {job}"
"""


def _pipeline(world: World, git_repo: GitRepo, **params: Any) -> str:
    source = {
        "type": "code",
        "params": {"git_type": "gitlab", "git_url": git_repo.path, "default_branch": "main"}
        | params,
    }
    # the stored definition is what a pipeline without the file would run
    stored = definition(stage("STORED", shell_job("STORED_JOB", "echo stored")))
    return world.create_pipeline(stored, sources=[source])


def _job_names(detail: dict[str, Any]) -> list[str]:
    return [job["name"] for s in detail["stages"] for job in s["jobs"]]


class TestPipelineFile:
    def test_each_run_takes_the_stages_of_the_file_at_its_commit(
        self, world: World, git_repo: GitRepo
    ) -> None:
        first = git_repo.commit("pipeline: build", {FILE: STAGES.format(job="build")})
        pipeline_id = _pipeline(world, git_repo, pipeline_file=FILE)
        run_id = world.run(pipeline_id)
        detail = world.wait_for(pipeline_id, run_id)
        assert detail["status"] == "COMPLETED", detail.get("message")
        assert _job_names(detail) == ["build"]
        assert (
            "ran build" in logs(world, pipeline_id, run_id, detail["stages"][0]["jobs"][0])["log"]
        )
        [source] = detail["sources"]
        assert source["params"]["pipeline_file"] == FILE
        assert source["params"]["pipeline_file_commit"] == first

        second = git_repo.commit("pipeline: test", {FILE: STAGES.format(job="test")})
        run_id = world.run(pipeline_id)
        detail = world.wait_for(pipeline_id, run_id)
        assert detail["status"] == "COMPLETED", detail.get("message")
        assert _job_names(detail) == ["test"]
        assert detail["sources"][0]["params"]["pipeline_file_commit"] == second

    def test_a_broken_file_fails_the_run_with_its_line_and_column(
        self, world: World, git_repo: GitRepo
    ) -> None:
        broken = STAGES.format(job="build").replace("- run:", "- rum:")
        commit = git_repo.commit("pipeline: broken", {FILE: broken})
        pipeline_id = _pipeline(world, git_repo, pipeline_file=FILE)
        run_id = world.run(pipeline_id)
        detail = world.wait_for(pipeline_id, run_id)
        assert detail["status"] == "FAILED"
        assert detail["message"] == (
            f"{FILE} at {commit[:12]}: line 6, column 13: stages[0].jobs.build.steps[0].rum:"
            " unknown key 'rum' (known: name, id, sequence, uses, run, with, version,"
            " business_type, multi_step_editable)"
        )
        assert detail["stages"] == []
        (item,) = world.status(pipeline_id)
        assert item["status"] == "FAILED"

    def test_a_missing_file_fails_the_run_saying_so(self, world: World, git_repo: GitRepo) -> None:
        pipeline_id = _pipeline(world, git_repo, pipeline_file="ci/nowhere.yaml")
        run_id = world.run(pipeline_id)
        detail = world.wait_for(pipeline_id, run_id)
        assert detail["status"] == "FAILED"
        assert detail["message"].startswith("ci/nowhere.yaml: no such file at ")

    def test_without_the_opt_in_the_stored_definition_runs(
        self, world: World, git_repo: GitRepo
    ) -> None:
        git_repo.commit("pipeline: build", {FILE: STAGES.format(job="build")})
        pipeline_id = _pipeline(world, git_repo)
        run_id = world.run(pipeline_id)
        detail = world.wait_for(pipeline_id, run_id)
        assert detail["status"] == "COMPLETED"
        assert _job_names(detail) == ["STORED_JOB"]
        assert "pipeline_file_commit" not in detail["sources"][0]["params"]

    def test_a_path_leaving_the_repository_is_refused(
        self, world: World, git_repo: GitRepo
    ) -> None:
        source = {
            "type": "code",
            "params": {"git_url": git_repo.path, "pipeline_file": "ci/../../etc/passwd"},
        }
        response = world.client.post(
            f"{world.base}/pipelines",
            json={"name": "escape", "is_publish": False, "definition": definition(
                stage("S", shell_job("J", "true"))), "sources": [source]},
            headers=world.admin.headers,
        )  # fmt: skip
        assert response.status_code == 400
        assert "sources[0].params.pipeline_file: must not have a '..' part" in response.text
