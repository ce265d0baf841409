"""Manual reviews (review jobs and stage-entry reviews), step outputs, artifacts and secret
masking, end to end through the live server and its build agent."""

import hashlib
import json
import secrets
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.factories import TERMINAL_RUN, User, World, definition, shell_job, stage

CHECKPOINT = "official_devcloud_checkpoint"
FORBIDDEN = "DEVCP.00014031"


# -- definitions -----------------------------------------------------------------------------


def checkpoint(identifier: str, **inputs: Any) -> dict[str, Any]:
    """A manual review step; `inputs` become its key/value inputs."""
    return {
        "name": f"{identifier}_review",
        "task": CHECKPOINT,
        "identifier": identifier,
        "inputs": [{"key": key, "value": value} for key, value in inputs.items()],
    }


def review_job(identifier: str, **inputs: Any) -> dict[str, Any]:
    return {
        "identifier": identifier,
        "name": identifier,
        "steps": [checkpoint(f"STEP_{identifier}", **inputs)],
    }


def gated_stage(identifier: str, entry: dict[str, Any], *jobs: dict[str, Any]) -> dict[str, Any]:
    """A stage whose `pre` list holds a stage-entry review."""
    return {**stage(identifier, *jobs), "pre": [entry]}


def shell_job_with(identifier: str, script: str, **inputs: Any) -> dict[str, Any]:
    """A shell job whose step has `inputs` besides its script."""
    job = shell_job(identifier, script)
    job["steps"][0]["inputs"] += [{"key": key, "value": value} for key, value in inputs.items()]
    return job


def reviewed_then_shipped(**inputs: Any) -> str:
    """Stage REVIEW holds only the review job GATE; stage SHIP runs after it."""
    return definition(
        stage("REVIEW", review_job("GATE", **inputs)),
        stage("SHIP", shell_job("DEPLOY", "echo shipped")),
    )


# -- API shortcuts ---------------------------------------------------------------------------


def runs_path(world: World, pipeline_id: str, run_id: str) -> str:
    return f"{world.base}/pipelines/{pipeline_id}/pipeline-runs/{run_id}"


def wait_until_paused(world: World, pipeline_id: str, run_id: str) -> dict[str, Any]:
    detail = world.wait_for(pipeline_id, run_id, {"PAUSED"} | TERMINAL_RUN)
    assert detail["status"] == "PAUSED", json.dumps(detail)[:2000]
    return detail


def review_ids(detail: dict[str, Any], stage_index: int = 0) -> tuple[str, str]:
    """(job_run_id, step_run_id) of the review job of a stage."""
    job = detail["stages"][stage_index]["jobs"][0]
    return job["id"], job["steps"][0]["id"]


def decide(
    world: World,
    user: User,
    pipeline_id: str,
    run_id: str,
    ids: tuple[str, str],
    verdict: str = "pass",
    description: str | None = None,
) -> httpx.Response:
    job_run_id, step_run_id = ids
    params = {"approval_description": description} if description is not None else {}
    return world.client.post(
        f"{runs_path(world, pipeline_id, run_id)}/jobs/{job_run_id}/steps/{step_run_id}/{verdict}",
        params=params,
        headers=user.headers,
    )


def pass_entry(
    world: World, user: User, pipeline_id: str, run_id: str, step_run_id: str
) -> httpx.Response:
    return world.client.post(
        f"{runs_path(world, pipeline_id, run_id)}/steps/{step_run_id}/manual/pass",
        headers=user.headers,
    )


def step_log(world: World, pipeline_id: str, run_id: str, job: dict[str, Any]) -> str:
    step_run_id = job["steps"][0]["id"]
    response = world.client.post(
        f"{runs_path(world, pipeline_id, run_id)}/jobs/{job['id']}/steps/{step_run_id}/logs",
        json={"limit": 500, "sort": "asc", "start_offset": 0, "end_offset": 0},
        headers=world.viewer.headers,
    )
    assert response.status_code == 200, response.text
    text: str = response.json()["log"]
    return text


def outputs(world: World, pipeline_id: str, run_id: str, **params: str) -> httpx.Response:
    return world.client.get(
        f"{runs_path(world, pipeline_id, run_id)}/steps/outputs",
        params=params,
        headers=world.viewer.headers,
    )


def job_statuses(detail: dict[str, Any]) -> list[list[str]]:
    return [[job["status"] for job in s["jobs"]] for s in detail["stages"]]


def assert_forbidden(response: httpx.Response) -> None:
    assert response.status_code == 403, response.text
    assert response.json()["error_code"] == FORBIDDEN


# -- manual review jobs ----------------------------------------------------------------------


class TestReviewJobs:
    def test_the_run_waits_paused_until_an_approver_passes(self, world: World) -> None:
        pipeline_id = world.create_pipeline(
            reviewed_then_shipped(
                approvers=[world.admin.user_id],
                check_strategy="any",
                timeout=3600,
                timeout_strategy="reject",
            )
        )
        run_id = world.run(pipeline_id)
        detail = wait_until_paused(world, pipeline_id, run_id)
        assert [s["status"] for s in detail["stages"]] == ["PAUSED", "INIT"]
        assert job_statuses(detail) == [["PAUSED"], ["INIT"]]
        assert detail["stages"][0]["jobs"][0]["steps"][0]["status"] == "PAUSED"
        (item,) = world.status(pipeline_id)
        assert item["status"] == "PAUSED"
        assert [s["status"] for s in item["stage_status_list"]] == ["PAUSED", "INIT"]
        ids = review_ids(detail)

        assert_forbidden(decide(world, world.developer, pipeline_id, run_id, ids))
        assert_forbidden(decide(world, world.developer, pipeline_id, run_id, ids, "refuse"))
        assert decide(world, world.outsider, pipeline_id, run_id, ids).status_code == 403
        assert decide(world, world.viewer, pipeline_id, run_id, ids).status_code == 403
        assert world.detail(pipeline_id, run_id)["status"] == "PAUSED"

        response = decide(world, world.admin, pipeline_id, run_id, ids, description="ok")
        assert (response.status_code, response.json()) == (200, {"success": True})
        detail = world.wait_for(pipeline_id, run_id)
        assert detail["status"] == "COMPLETED"
        assert job_statuses(detail) == [["COMPLETED"], ["COMPLETED"]]
        gate = detail["stages"][0]["jobs"][0]
        assert gate["message"] == f"passed by {world.admin.name}: ok"
        assert gate["steps"][0]["status"] == "COMPLETED"
        assert step_log(world, pipeline_id, run_id, detail["stages"][1]["jobs"][0]) == "shipped\n"

        again = decide(world, world.admin, pipeline_id, run_id, ids)
        assert again.status_code == 409, again.text
        assert "not waiting" in again.json()["error_msg"]

    def test_refusing_fails_the_job_and_the_run_with_who_and_why(self, world: World) -> None:
        pipeline_id = world.create_pipeline(reviewed_then_shipped(approvers=world.admin.name))
        run_id = world.run(pipeline_id)
        ids = review_ids(wait_until_paused(world, pipeline_id, run_id))
        assert_forbidden(decide(world, world.developer, pipeline_id, run_id, ids, "refuse"))

        response = decide(world, world.admin, pipeline_id, run_id, ids, "refuse", "not today")
        assert (response.status_code, response.json()) == (200, {"success": True})
        detail = world.wait_for(pipeline_id, run_id)
        assert detail["status"] == "FAILED"
        assert [s["status"] for s in detail["stages"]] == ["FAILED", "INIT"]
        gate = detail["stages"][0]["jobs"][0]
        assert gate["status"] == "FAILED"
        assert world.admin.name in gate["message"]
        assert "not today" in gate["message"]
        assert gate["steps"][0]["status"] == "FAILED"
        (item,) = world.status(pipeline_id)
        assert item["status"] == "FAILED"

    def test_strategy_all_waits_for_every_approver(self, world: World) -> None:
        pipeline_id = world.create_pipeline(
            reviewed_then_shipped(
                approvers=f"{world.admin.user_id},{world.developer.name}", check_strategy="all"
            )
        )
        run_id = world.run(pipeline_id)
        ids = review_ids(wait_until_paused(world, pipeline_id, run_id))

        for _ in range(2):  # passing twice does not make one approver count for two
            response = decide(world, world.developer, pipeline_id, run_id, ids)
            assert response.status_code == 200, response.text
            detail = world.detail(pipeline_id, run_id)
            assert detail["status"] == "PAUSED"
            assert job_statuses(detail) == [["PAUSED"], ["INIT"]]

        assert decide(world, world.admin, pipeline_id, run_id, ids).status_code == 200
        detail = world.wait_for(pipeline_id, run_id)
        assert detail["status"] == "COMPLETED"
        assert detail["stages"][0]["jobs"][0]["message"] == f"passed by {world.admin.name}"

    def test_strategy_any_needs_one_approver(self, world: World) -> None:
        pipeline_id = world.create_pipeline(
            reviewed_then_shipped(
                approvers=[world.admin.user_id, world.developer.user_id], check_strategy="any"
            )
        )
        run_id = world.run(pipeline_id)
        ids = review_ids(wait_until_paused(world, pipeline_id, run_id))
        assert decide(world, world.developer, pipeline_id, run_id, ids).status_code == 200
        # decided in the request's own transaction: no poll needed to see the job move on
        assert job_statuses(world.detail(pipeline_id, run_id))[0] == ["COMPLETED"]
        assert world.wait_for(pipeline_id, run_id)["status"] == "COMPLETED"

    def test_without_approvers_any_developer_decides(self, world: World) -> None:
        pipeline_id = world.create_pipeline(reviewed_then_shipped())
        run_id = world.run(pipeline_id)
        ids = review_ids(wait_until_paused(world, pipeline_id, run_id))
        assert decide(world, world.viewer, pipeline_id, run_id, ids).status_code == 403
        assert decide(world, world.developer, pipeline_id, run_id, ids).status_code == 200
        assert world.wait_for(pipeline_id, run_id)["status"] == "COMPLETED"

    @pytest.mark.parametrize(
        ("strategy", "run_status", "verdict"),
        [("reject", "FAILED", "refused"), ("pass", "COMPLETED", "passed")],
    )
    def test_an_undecided_review_follows_its_timeout_strategy(
        self, world: World, strategy: str, run_status: str, verdict: str
    ) -> None:
        pipeline_id = world.create_pipeline(
            reviewed_then_shipped(
                approvers=[world.admin.user_id], timeout=1, timeout_strategy=strategy
            )
        )
        run_id = world.run(pipeline_id)
        detail = world.wait_for(pipeline_id, run_id, timeout=30)
        assert detail["status"] == run_status
        gate = detail["stages"][0]["jobs"][0]
        assert gate["status"] == run_status
        assert gate["message"] == f"no decision within 1s: {verdict}"
        expected_ship = "COMPLETED" if strategy == "pass" else "INIT"
        assert detail["stages"][1]["jobs"][0]["status"] == expected_ship

    def test_a_review_that_is_not_paused_yet_is_a_409(self, world: World) -> None:
        pipeline_id = world.create_pipeline(
            definition(stage("FIRST", review_job("GATE1")), stage("SECOND", review_job("GATE2")))
        )
        run_id = world.run(pipeline_id)
        detail = wait_until_paused(world, pipeline_id, run_id)
        assert job_statuses(detail) == [["PAUSED"], ["INIT"]]
        response = decide(world, world.developer, pipeline_id, run_id, review_ids(detail, 1))
        assert response.status_code == 409, response.text
        assert response.json()["error_code"] == "DEVPIPE.00011409"
        assert job_statuses(world.detail(pipeline_id, run_id)) == [["PAUSED"], ["INIT"]]

    def test_unknown_or_non_review_steps_are_a_404(self, world: World) -> None:
        pipeline_id = world.create_pipeline(
            definition(
                stage("BUILD", shell_job("COMPILE", "echo compiled")),
                stage("REVIEW", review_job("GATE")),
            )
        )
        run_id = world.run(pipeline_id)
        detail = wait_until_paused(world, pipeline_id, run_id)
        job_run_id, step_run_id = review_ids(detail, 1)
        shell_ids = review_ids(detail, 0)
        unknown = secrets.token_hex(16)
        for ids in (
            (job_run_id, unknown),  # no such step
            shell_ids,  # a shell step is no review
            (shell_ids[0], step_run_id),  # the review step, but under another job
        ):
            response = decide(world, world.developer, pipeline_id, run_id, ids)
            assert response.status_code == 404, (ids, response.text)
            assert response.json()["error_code"] == "DEVCP.00012002"
        assert (
            pass_entry(world, world.developer, pipeline_id, run_id, step_run_id).status_code == 404
        )
        assert world.detail(pipeline_id, run_id)["status"] == "PAUSED"


# -- stage-entry reviews ---------------------------------------------------------------------


class TestStageEntryReviews:
    def test_a_stage_waits_before_its_jobs_until_its_entry_review_passes(
        self, world: World
    ) -> None:
        pipeline_id = world.create_pipeline(
            definition(
                stage("BUILD", shell_job("COMPILE", "echo compiled")),
                gated_stage(
                    "DEPLOY",
                    checkpoint("ENTRY", approvers=[world.admin.user_id]),
                    shell_job("SHIP", "echo shipped"),
                    shell_job("NOTIFY", "echo notified"),
                ),
            )
        )
        run_id = world.run(pipeline_id)
        detail = wait_until_paused(world, pipeline_id, run_id)
        assert [s["status"] for s in detail["stages"]] == ["COMPLETED", "PAUSED"]
        gated = detail["stages"][1]
        assert [j["status"] for j in gated["jobs"]] == ["INIT", "INIT"]
        assert all(j["start_time"] is None for j in gated["jobs"])
        (entry,) = gated["pre"]
        assert (entry["task"], entry["identifier"], entry["status"]) == (
            CHECKPOINT,
            "ENTRY",
            "PAUSED",
        )
        assert gated["post"] == []
        (item,) = world.status(pipeline_id)
        assert item["status"] == "PAUSED"
        assert [s["status"] for s in item["stage_status_list"]] == ["COMPLETED", "PAUSED"]

        assert_forbidden(pass_entry(world, world.developer, pipeline_id, run_id, entry["id"]))
        assert pass_entry(world, world.viewer, pipeline_id, run_id, entry["id"]).status_code == 403
        assert (
            pass_entry(world, world.outsider, pipeline_id, run_id, entry["id"]).status_code == 403
        )
        via_job = decide(
            world, world.admin, pipeline_id, run_id, (gated["jobs"][0]["id"], entry["id"])
        )
        assert via_job.status_code == 404, via_job.text
        assert world.detail(pipeline_id, run_id)["stages"][1]["jobs"][0]["status"] == "INIT"

        response = pass_entry(world, world.admin, pipeline_id, run_id, entry["id"])
        assert (response.status_code, response.json()) == (200, {"success": True})
        detail = world.wait_for(pipeline_id, run_id)
        assert detail["status"] == "COMPLETED"
        assert job_statuses(detail) == [["COMPLETED"], ["COMPLETED", "COMPLETED"]]
        entry = detail["stages"][1]["pre"][0]
        assert entry["status"] == "COMPLETED"
        assert entry["message"] == f"passed by {world.admin.name}"
        assert step_log(world, pipeline_id, run_id, detail["stages"][1]["jobs"][0]) == "shipped\n"
        again = pass_entry(world, world.admin, pipeline_id, run_id, entry["id"])
        assert again.status_code == 409, again.text

    def test_an_undecided_entry_review_that_times_out_rejecting_fails_the_stage(
        self, world: World
    ) -> None:
        pipeline_id = world.create_pipeline(
            definition(
                gated_stage(
                    "DEPLOY", checkpoint("ENTRY", timeout="1"), shell_job("SHIP", "echo shipped")
                ),
            )
        )
        run_id = world.run(pipeline_id)
        detail = world.wait_for(pipeline_id, run_id, timeout=30)
        assert detail["status"] == "FAILED"
        gated = detail["stages"][0]
        assert gated["status"] == "FAILED"
        assert gated["pre"][0]["status"] == "FAILED"
        assert gated["pre"][0]["message"] == "no decision within 1s: refused"
        assert gated["jobs"][0]["start_time"] is None


# -- step outputs ----------------------------------------------------------------------------


class TestStepOutputs:
    def test_outputs_come_back_per_step_in_the_order_asked(self, world: World) -> None:
        first = "\n".join(
            (
                'echo "version=1.2.3" >> "$STAGELINE_OUTPUTS"',
                'echo "sha=abc" >> "$STAGELINE_OUTPUTS"',
                'echo "no pair on this line" >> "$STAGELINE_OUTPUTS"',
                "echo written",
            )
        )
        second = 'echo "url=https://e.x/?a=b" >> "$STAGELINE_OUTPUTS"'
        pipeline_id = world.create_pipeline(
            definition(
                stage(
                    "S",
                    shell_job("FIRST", first),
                    shell_job("SECOND", second),
                    shell_job("NONE", "echo nothing"),
                )
            )
        )
        run_id = world.run(pipeline_id)
        detail = world.wait_for(pipeline_id, run_id)
        assert detail["status"] == "COMPLETED"
        jobs = detail["stages"][0]["jobs"]
        a, b, c = (job["steps"][0]["id"] for job in jobs)

        response = outputs(world, pipeline_id, run_id, step_run_ids=a)
        assert response.status_code == 200, response.text
        body = response.json()
        assert isinstance(body["current_system_time"], int)
        assert body["current_system_time"] >= detail["end_time"]
        assert body == {
            "step_outputs": [
                {
                    "step_run_id": a,
                    "output_result": [
                        {"key": "version", "value": "1.2.3"},
                        {"key": "sha", "value": "abc"},
                    ],
                }
            ],
            "current_system_time": body["current_system_time"],
        }

        several = outputs(world, pipeline_id, run_id, step_run_ids=f"{c},{b} , {a}").json()
        assert [item["step_run_id"] for item in several["step_outputs"]] == [c, b, a]
        assert [item["output_result"] for item in several["step_outputs"]][:2] == [
            [],
            [{"key": "url", "value": "https://e.x/?a=b"}],
        ]

        assert step_log(world, pipeline_id, run_id, jobs[0]) == (
            "written\n[stageline] outputs line 3 ignored: not key=value\n"
        )

    def test_missing_or_unknown_step_ids_are_refused(self, world: World) -> None:
        pipeline_id = world.create_pipeline()
        run_id = world.run(pipeline_id)
        detail = world.wait_for(pipeline_id, run_id)
        known = detail["stages"][0]["jobs"][0]["steps"][0]["id"]
        for params in ({}, {"step_run_ids": ""}, {"step_run_ids": " , "}):
            response = outputs(world, pipeline_id, run_id, **params)
            assert response.status_code == 400, (params, response.text)
            assert response.json()["error_code"] == "DEVCP.00021400"
            assert response.json()["error_msg"].startswith("step_run_ids:")
        unknown = secrets.token_hex(16)
        response = outputs(world, pipeline_id, run_id, step_run_ids=f"{known},{unknown}")
        assert response.status_code == 404, response.text
        assert unknown in response.json()["error_msg"]

    def test_a_step_of_another_run_is_unknown(self, world: World) -> None:
        pipeline_id = world.create_pipeline()
        first = world.run(pipeline_id)
        step = world.wait_for(pipeline_id, first)["stages"][0]["jobs"][0]["steps"][0]["id"]
        second = world.run(pipeline_id)
        world.wait_for(pipeline_id, second)
        assert outputs(world, pipeline_id, first, step_run_ids=step).status_code == 200
        assert outputs(world, pipeline_id, second, step_run_ids=step).status_code == 404


# -- artifacts -------------------------------------------------------------------------------


ARTIFACT_FIELDS = {
    "project_id",
    "name",
    "artifact_version",
    "upload_target",
    "artifact_package_type",
    "artifact_uri",
    "artifact_download_url_with_id",
    "artifact_type",
    "job_id",
    "build_no",
    "daily_build_number",
    "file_size",
    "hash_code",
}


def list_artifacts(world: World, pipeline_id: str, run_id: str) -> list[dict[str, Any]]:
    response = world.client.get(
        f"{runs_path(world, pipeline_id, run_id)}/artifacts", headers=world.viewer.headers
    )
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["artifacts"]
    return found


ARTIFACT_CONTENTS = {
    "dist/alpha.txt": b"alpha\n",
    "dist/bravo.txt": b"bravo \xc3\xa9\x00 bytes\n",
}
"""Named by their path in the workspace, so equal file names in two folders do not collide."""
"""What the PACK step of `TestArtifacts.build` writes (a NUL and UTF-8 bytes included)."""


class TestArtifacts:
    def build(self, world: World) -> tuple[str, str, dict[str, Any]]:
        script = "\n".join(
            (
                "mkdir -p dist",
                r"printf 'alpha\n' > dist/alpha.txt",
                r"printf 'bravo \303\251\000 bytes\n' > dist/bravo.txt",
                "echo not an artifact > dist/notes.log",
            )
        )
        pipeline_id = world.create_pipeline(
            definition(stage("S", shell_job_with("PACK", script, artifacts="dist/*.txt")))
        )
        run_id = world.run(pipeline_id)
        detail = world.wait_for(pipeline_id, run_id)
        assert detail["status"] == "COMPLETED", json.dumps(detail)[:2000]
        return pipeline_id, run_id, detail

    def test_uploaded_files_are_listed_with_size_and_sha256(self, world: World) -> None:
        pipeline_id, run_id, detail = self.build(world)
        job_id = detail["stages"][0]["jobs"][0]["id"]
        found = sorted(list_artifacts(world, pipeline_id, run_id), key=lambda a: a["name"])
        assert [a["name"] for a in found] == sorted(ARTIFACT_CONTENTS)
        prefix = f"https://ci.example.test{runs_path(world, pipeline_id, run_id)}/artifacts/"
        for artifact in found:
            content = ARTIFACT_CONTENTS[artifact["name"]]
            assert set(artifact) == ARTIFACT_FIELDS
            assert all(isinstance(v, str) for k, v in artifact.items() if k != "hash_code")
            assert artifact["hash_code"] == [
                {"hash_type": "sha256", "hash_value": hashlib.sha256(content).hexdigest()}
            ]
            assert artifact["file_size"] == str(len(content))
            assert (
                artifact["project_id"],
                artifact["job_id"],
                artifact["artifact_uri"],
                artifact["artifact_package_type"],
                artifact["artifact_version"],
                artifact["build_no"],
            ) == (world.project_id, job_id, f"{run_id}/{artifact['name']}", "txt", "1", "1")
            url = artifact["artifact_download_url_with_id"]
            assert url.startswith(prefix)
            assert url.endswith("/download")

    def test_download_returns_the_exact_bytes_to_members_only(self, world: World) -> None:
        pipeline_id, run_id, _ = self.build(world)
        for artifact in list_artifacts(world, pipeline_id, run_id):
            path = urlsplit(artifact["artifact_download_url_with_id"]).path
            response = world.client.get(path, headers=world.viewer.headers)
            assert response.status_code == 200, response.text
            assert response.content == ARTIFACT_CONTENTS[artifact["name"]]
            filename = artifact["name"].rpartition("/")[2]
            assert filename in response.headers["content-disposition"]
            assert world.client.get(path, headers=world.outsider.headers).status_code == 403
            assert world.client.get(path).status_code == 401

    def test_an_artifact_is_not_reachable_through_another_project(self, world: World) -> None:
        pipeline_id, run_id, _ = self.build(world)
        artifact_id = list_artifacts(world, pipeline_id, run_id)[0][
            "artifact_download_url_with_id"
        ].split("/")[-2]
        other = World.create(world.client, world.db, world.settings)
        other_pipeline = other.create_pipeline()
        other_run = other.run(other_pipeline)
        other.wait_for(other_pipeline, other_run)
        for path in (
            f"{other.base}/pipelines/{pipeline_id}/pipeline-runs/{run_id}",
            f"{other.base}/pipelines/{other_pipeline}/pipeline-runs/{other_run}",
        ):
            response = world.client.get(
                f"{path}/artifacts/{artifact_id}/download", headers=other.viewer.headers
            )
            assert response.status_code in (403, 404), (path, response.text)
            assert response.content != ARTIFACT_CONTENTS["dist/alpha.txt"]
        assert list_artifacts(other, other_pipeline, other_run) == []

    def test_a_pattern_that_matches_nothing_fails_the_step(self, world: World) -> None:
        pipeline_id = world.create_pipeline(
            definition(
                stage(
                    "S",
                    shell_job_with(
                        "PACK", "mkdir -p dist && echo x > dist/a.txt", artifacts="out/*.bin"
                    ),
                )
            )
        )
        run_id = world.run(pipeline_id)
        detail = world.wait_for(pipeline_id, run_id)
        assert detail["status"] == "FAILED"
        job = detail["stages"][0]["jobs"][0]
        assert job["status"] == "FAILED"
        assert job["steps"][0]["status"] == "FAILED"
        assert "out/*.bin" in job["steps"][0]["message"]
        assert "out/*.bin" in step_log(world, pipeline_id, run_id, job)
        assert list_artifacts(world, pipeline_id, run_id) == []

    def test_equal_file_names_in_two_folders_are_two_artifacts(self, world: World) -> None:
        script = "mkdir -p out/a out/b && echo a > out/a/app.txt && echo b > out/b/app.txt"
        pipeline_id = world.create_pipeline(
            definition(stage("S", shell_job_with("PACK", script, artifacts="out/*/app.txt")))
        )
        run_id = world.run(pipeline_id)
        assert world.wait_for(pipeline_id, run_id)["status"] == "COMPLETED"
        found = list_artifacts(world, pipeline_id, run_id)
        assert sorted(a["name"] for a in found) == ["out/a/app.txt", "out/b/app.txt"]

    def test_a_link_out_of_the_workspace_is_not_uploaded(self, world: World) -> None:
        script = "mkdir -p out && ln -s /etc/passwd out/passwd.txt"
        pipeline_id = world.create_pipeline(
            definition(stage("S", shell_job_with("PACK", script, artifacts="out/*.txt")))
        )
        run_id = world.run(pipeline_id)
        detail = world.wait_for(pipeline_id, run_id)
        step = detail["stages"][0]["jobs"][0]["steps"][0]
        assert (detail["status"], step["status"]) == ("FAILED", "FAILED")
        assert "outside the workspace" in step["message"]
        assert list_artifacts(world, pipeline_id, run_id) == []


# -- secrets ---------------------------------------------------------------------------------


class TestSecrets:
    def test_a_secret_is_masked_wherever_it_appears_in_a_line(self, world: World) -> None:
        secret = f"Tk.{secrets.token_hex(6)}+*"  # regex characters: masking must be literal
        script = "\n".join(
            (
                'echo "twice: $API_TOKEN and $API_TOKEN; in a word: pre${API_TOKEN}post;'
                ' plain: $PLAIN"',
                'echo "$API_TOKEN$API_TOKEN" >&2',
                "printf '%s\\n' \"${API_TOKEN:0:3}\"",
            )
        )
        pipeline_id = world.create_pipeline(
            definition(stage("S", shell_job("LEAK", script))),
            variables=[
                {"name": "API_TOKEN", "value": secret, "is_secret": True},
                {"name": "PLAIN", "value": "visible"},
            ],
        )
        run_id = world.run(pipeline_id)
        detail = world.wait_for(pipeline_id, run_id)
        assert detail["status"] == "COMPLETED"
        text = step_log(world, pipeline_id, run_id, detail["stages"][0]["jobs"][0])
        assert text == ("twice: *** and ***; in a word: pre***post; plain: visible\n******\nTk.\n")
        assert secret not in text

    def test_each_line_of_a_multi_line_secret_is_masked(self, world: World) -> None:
        secret = f"-----BEGIN KEY-----\n{secrets.token_hex(12)}\n-----END KEY-----"
        pipeline_id = world.create_pipeline(
            definition(stage("S", shell_job("LEAK", 'echo "$PEM"\necho "key: $PEM" >&2'))),
            variables=[{"name": "PEM", "value": secret, "is_secret": True}],
        )
        run_id = world.run(pipeline_id)
        detail = world.wait_for(pipeline_id, run_id)
        assert detail["status"] == "COMPLETED"
        text = step_log(world, pipeline_id, run_id, detail["stages"][0]["jobs"][0])
        assert text == "***\n***\n***\nkey: ***\n***\n***\n"

    def test_a_secret_in_step_outputs_is_masked(self, world: World) -> None:
        secret = secrets.token_hex(8)
        script = 'echo "token=$API_TOKEN" >> "$STAGELINE_OUTPUTS"'
        pipeline_id = world.create_pipeline(
            definition(stage("S", shell_job("OUT", script))),
            variables=[{"name": "API_TOKEN", "value": secret, "is_secret": True}],
        )
        run_id = world.run(pipeline_id)
        detail = world.wait_for(pipeline_id, run_id)
        step_id = detail["stages"][0]["jobs"][0]["steps"][0]["id"]
        response = outputs(world, pipeline_id, run_id, step_run_ids=step_id)
        assert response.status_code == 200, response.text
        assert response.json()["step_outputs"][0]["output_result"] == [
            {"key": "token", "value": "***"}
        ]

    def test_a_secret_used_as_an_output_key_is_masked(self, world: World) -> None:
        secret = secrets.token_hex(8)
        script = (
            'echo "$API_TOKEN=leaked through the key" >> "$STAGELINE_OUTPUTS"\n'
            'echo "version=1.2" >> "$STAGELINE_OUTPUTS"'
        )
        pipeline_id = world.create_pipeline(
            definition(stage("S", shell_job("OUT", script))),
            variables=[{"name": "API_TOKEN", "value": secret, "is_secret": True}],
        )
        run_id = world.run(pipeline_id)
        detail = world.wait_for(pipeline_id, run_id)
        step_id = detail["stages"][0]["jobs"][0]["steps"][0]["id"]
        response = outputs(world, pipeline_id, run_id, step_run_ids=step_id)
        assert response.status_code == 200, response.text
        assert secret not in response.text
        assert response.json()["step_outputs"][0]["output_result"] == [
            {"key": "***", "value": "leaked through the key"},
            {"key": "version", "value": "1.2"},
        ]

    def test_pipeline_detail_masks_secret_values_and_an_update_keeps_them(
        self, world: World
    ) -> None:
        secret = secrets.token_hex(8)
        pipeline_id = world.create_pipeline(
            definition(stage("S", shell_job("ECHO", 'test "$API_TOKEN" = "$EXPECTED"'))),
            variables=[
                {"name": "API_TOKEN", "value": secret, "is_secret": True},
                {"name": "EXPECTED", "value": secret},
            ],
        )
        path = f"{world.base}/pipelines/{pipeline_id}"
        shown = world.client.get(path, headers=world.viewer.headers).json()
        assert [v["value"] for v in shown["variables"]] == ["******", secret]
        update = {
            key: shown[key]
            for key in ("name", "description", "is_publish", "definition", "variables")
        }
        response = world.client.put(path, json=update, headers=world.admin.headers)
        assert response.status_code == 200, response.text
        run_id = world.run(pipeline_id)
        assert world.wait_for(pipeline_id, run_id)["status"] == "COMPLETED"  # value kept
