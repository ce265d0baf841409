"""Requests that once got a 500, or were taken whole however large: each is now a 4xx, or kept
within a documented bound, and the server goes on serving.

Each test sends the very request that was reproduced, on the quiet server (no agent: the test
plays the agent where one is needed).
"""

import json
import secrets
from typing import Any

import httpx
import pytest

from stageline.auth import accounts, signing
from stageline.engine.clock import system_clock
from stageline.settings import Settings
from stageline.store.database import Database
from tests.factories import PASSING, World, definition, shell_job, stage

INVALID = "DEVCP.00021400"
HUGE = 2**63
"""The first integer a signed 64-bit column cannot hold."""


def refused(response: httpx.Response, *fragments: str, status: int = 400) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error_code"] == INVALID
    message: str = body["error_msg"]
    for fragment in fragments:
        assert fragment in message
    return message


def create(world: World, **fields: Any) -> httpx.Response:
    body = {"name": f"p-{secrets.token_hex(4)}", "is_publish": False, "definition": PASSING}
    return world.client.post(
        f"{world.base}/pipelines", json={**body, **fields}, headers=world.admin.headers
    )


def still_serving(world: World) -> None:
    assert world.client.get("/health").status_code == 200
    world.create_pipeline()


class TestDefinitions:
    def test_the_poison_job_timeout_is_refused_naming_its_path(self, quiet_world: World) -> None:
        text = definition(stage("S", shell_job("J", "true", timeout="99999999999999999999h")))
        refused(create(quiet_world, definition=text), "definition.stages[0].jobs[0].timeout")
        still_serving(quiet_world)

    def test_a_job_timeout_over_seven_days_is_refused(self, quiet_world: World) -> None:
        text = definition(stage("S", shell_job("J", "true", timeout="169h")))
        refused(create(quiet_world, definition=text), "jobs[0].timeout", "604800s")

    def test_a_review_timeout_over_seven_days_is_refused(self, quiet_world: World) -> None:
        review = {
            "identifier": "REVIEW",
            "name": "review",
            "steps": [
                {
                    "task": "official_devcloud_checkpoint",
                    "inputs": [{"key": "timeout", "value": "99999999999999999999"}],
                }
            ],
        }
        text = definition(stage("S", review))
        refused(create(quiet_world, definition=text), "definition.stages[0].jobs[0].steps[0]")

    def test_a_resource_nested_5000_levels_deep_is_refused(self, quiet_world: World) -> None:
        deep = "[" * 5000 + "]" * 5000
        text = definition(stage("S", shell_job("J", "true", resource=deep)))
        refused(create(quiet_world, definition=text), "definition.stages[0].jobs[0].resource")
        still_serving(quiet_world)

    def test_a_definition_nested_5000_levels_deep_is_refused(self, quiet_world: World) -> None:
        refused(create(quiet_world, definition="[" * 5000 + "]" * 5000), "definition")

    def test_a_sequence_beyond_64_bits_is_refused(self, quiet_world: World) -> None:
        text = definition(stage("S", shell_job("J", "true", sequence=HUGE)))
        refused(create(quiet_world, definition=text), "definition.stages[0].jobs[0].sequence")

    def test_an_empty_definition_is_refused_by_the_schema(self, quiet_world: World) -> None:
        refused(create(quiet_world, definition=""), "definition")

    def test_a_hundred_stages_of_a_hundred_jobs_are_refused_past_a_thousand_jobs(
        self, quiet_world: World
    ) -> None:
        def jobs(s: int) -> list[dict[str, Any]]:
            return [shell_job(f"J{s}_{j}", "true") for j in range(100)]

        hundred = [stage(f"S{s}", *jobs(s)) for s in range(100)]
        refused(
            create(quiet_world, definition=definition(*hundred)),
            "definition.stages[10].jobs[0]",
            "at most 1000 jobs",
        )
        assert create(quiet_world, definition=definition(*hundred[:10])).status_code == 200

    def test_more_than_a_hundred_stages_jobs_or_steps_are_refused(self, quiet_world: World) -> None:
        many_stages = [stage(f"S{s}", shell_job(f"J{s}", "true")) for s in range(101)]
        refused(
            create(quiet_world, definition=definition(*many_stages)),
            "definition.stages",
            "at most 100 stages, not 101",
        )
        many_jobs = [shell_job(f"J{j}", "true") for j in range(101)]
        refused(
            create(quiet_world, definition=definition(stage("S", *many_jobs))),
            "definition.stages[0].jobs",
            "at most 100 jobs",
        )
        job = shell_job("J", "true")
        job["steps"] = [dict(job["steps"][0], identifier=f"STEP_{n}") for n in range(101)]
        refused(
            create(quiet_world, definition=definition(stage("S", job))),
            "definition.stages[0].jobs[0].steps",
            "at most 100 steps",
        )
        assert create(quiet_world, definition=definition(*many_stages[:100])).status_code == 200

    def test_more_than_ten_thousand_steps_in_all_are_refused(self, quiet_world: World) -> None:
        def job(identifier: str, steps: int) -> dict[str, Any]:
            one = shell_job(identifier, "true")
            one["steps"] = [
                dict(one["steps"][0], identifier=f"STEP_{identifier}_{n}") for n in range(steps)
            ]
            return one

        full = stage("FULL", *(job(f"J{j}", 100) for j in range(100)))
        refused(
            create(quiet_world, definition=definition(full, stage("MORE", job("LAST", 1)))),
            "definition.stages[1].jobs[0].steps",
            "at most 10000 steps",
        )
        assert create(quiet_world, definition=definition(full)).status_code == 200


@pytest.fixture
def run_ids(quiet_world: World) -> dict[str, str]:
    """A pipeline with a run (queued: the quiet server has no agent) and its first step."""
    pipeline_id = quiet_world.create_pipeline()
    run_id = quiet_world.run(pipeline_id)
    job = quiet_world.detail(pipeline_id, run_id)["stages"][0]["jobs"][0]
    return {
        "pipeline": pipeline_id,
        "run": run_id,
        "job": job["id"],
        "step": job["steps"][0]["id"],
    }


class TestIntegers:
    @pytest.mark.parametrize("offset", [HUGE, 2**64, 10**30])
    def test_a_pipeline_list_offset_beyond_64_bits_is_a_400(
        self, quiet_world: World, offset: int
    ) -> None:
        response = quiet_world.client.post(
            f"{quiet_world.base}/pipelines/list",
            json={"offset": offset},
            headers=quiet_world.viewer.headers,
        )
        refused(response, "offset")

    def test_a_run_list_offset_beyond_64_bits_is_a_400(
        self, quiet_world: World, run_ids: dict[str, str]
    ) -> None:
        response = quiet_world.client.post(
            f"{quiet_world.base}/pipelines/{run_ids['pipeline']}/pipeline-runs/list",
            json={"offset": HUGE},
            headers=quiet_world.viewer.headers,
        )
        refused(response, "offset")

    @pytest.mark.parametrize("field", ["start_offset", "end_offset", "offset"])
    def test_log_offsets_beyond_64_bits_are_a_400(
        self, quiet_world: World, run_ids: dict[str, str], field: str
    ) -> None:
        path = (
            f"{quiet_world.base}/pipelines/{run_ids['pipeline']}/pipeline-runs/{run_ids['run']}"
            f"/jobs/{run_ids['job']}/steps/{run_ids['step']}/logs"
        )
        body = {"limit": 10, "sort": "asc", field: HUGE}
        response = quiet_world.client.post(path, json=body, headers=quiet_world.viewer.headers)
        refused(response, field)

    @pytest.mark.parametrize("number", [str(HUGE), "9" * 400, "²", "0"])
    def test_a_run_number_that_no_run_can_have_is_a_400(
        self, quiet_world: World, run_ids: dict[str, str], number: str
    ) -> None:
        response = quiet_world.client.get(
            f"{quiet_world.base}/pipelines/{run_ids['pipeline']}/pipeline-runs/detail",
            params={"pipeline_run_number": number},
            headers=quiet_world.viewer.headers,
        )
        refused(response, "pipeline_run_number")

    def test_the_largest_run_number_is_simply_not_found(
        self, quiet_world: World, run_ids: dict[str, str]
    ) -> None:
        response = quiet_world.client.get(
            f"{quiet_world.base}/pipelines/{run_ids['pipeline']}/pipeline-runs/detail",
            params={"pipeline_run_number": str(2**31 - 1)},
            headers=quiet_world.viewer.headers,
        )
        assert response.status_code == 404

    def test_a_variable_sequence_beyond_64_bits_is_a_400(self, quiet_world: World) -> None:
        variables = [{"name": "V", "sequence": HUGE}]
        refused(create(quiet_world, variables=variables), "variables[0].sequence")


MANY = 100_000


class TestCounts:
    @pytest.mark.parametrize("field", ["variables", "schedules", "sources", "triggers"])
    def test_a_pipeline_with_100000_of_them_is_refused(
        self, quiet_world: World, field: str
    ) -> None:
        item: dict[str, Any] = {
            "variables": {"name": "V"},
            "schedules": {"type": "cron"},
            "sources": {"type": "code"},
            "triggers": {"type": "push"},
        }[field]
        items = [{**item, "name": f"V{i}"} if field == "variables" else item for i in range(MANY)]
        refused(create(quiet_world, **{field: items}), field, "at most 100")

    @pytest.mark.parametrize("field", ["variables", "sources"])
    def test_a_run_request_with_100000_of_them_is_refused(
        self, quiet_world: World, run_ids: dict[str, str], field: str
    ) -> None:
        item = {
            "variables": {"name": "V", "value": "x"},
            "sources": {"type": "code", "params": {"git_type": "github", "git_url": "u"}},
        }[field]
        response = quiet_world.client.post(
            f"{quiet_world.base}/pipelines/{run_ids['pipeline']}/run",
            json={field: [item] * MANY},
            headers=quiet_world.developer.headers,
        )
        refused(response, field, "at most 100")

    def test_schedules_nested_deeply_are_refused(self, quiet_world: World) -> None:
        nested: Any = "leaf"
        for _ in range(300):
            nested = {"a": nested}
        refused(create(quiet_world, schedules=[nested]), "schedules[0]", "deeper than 32")


class TestQuoting:
    def test_an_invalid_2mb_id_is_quoted_in_64_characters(self, quiet_world: World) -> None:
        response = quiet_world.client.post(
            f"{quiet_world.base}/pipelines/status",
            json=["x" * 2_000_000],
            headers=quiet_world.viewer.headers,
        )
        message = refused(response, "body[0]", "x" * 64 + "…")
        assert len(message) < 200

    def test_a_long_unknown_pipeline_id_is_quoted_in_64_characters(
        self, quiet_world: World
    ) -> None:
        """As long as a URL may be here (a real server refuses longer headers with 431)."""
        response = quiet_world.client.post(
            f"{quiet_world.base}/pipelines/{'y' * 30_000}/pipeline-runs/list",
            json={},
            headers=quiet_world.viewer.headers,
        )
        assert response.status_code == 404
        assert len(response.json()["error_msg"]) < 200

    def test_a_2mb_unknown_task_is_quoted_in_64_characters(self, quiet_world: World) -> None:
        text = json.dumps({"stages": [{"name": "S", "jobs": [{"name": "J", "steps": [
            {"task": "t" * 2_000_000}
        ]}]}]})  # fmt: skip
        message = refused(create(quiet_world, definition=text), "t" * 64 + "…")
        assert len(message) < 200


class TestMethods:
    def test_a_405_says_which_methods_are_allowed(self, quiet_world: World) -> None:
        response = quiet_world.client.delete(
            f"{quiet_world.base}/pipelines", headers=quiet_world.viewer.headers
        )
        assert response.status_code == 405
        assert response.headers["Allow"] == "POST"
        assert response.json()["error_code"] == "APIGW.0101"

    def test_allow_names_every_method_of_the_path(
        self, quiet_world: World, run_ids: dict[str, str]
    ) -> None:
        """GET, PUT and DELETE of a pipeline are three routes: Allow names all of them."""
        response = quiet_world.client.options(
            f"{quiet_world.base}/pipelines/{run_ids['pipeline']}",
            headers=quiet_world.viewer.headers,
        )
        assert response.status_code == 405
        assert response.headers["Allow"] == "DELETE, GET, PUT"

    @pytest.mark.parametrize(("operation", "allowed"), [("list", "POST"), ("status", "GET, POST")])
    def test_allow_names_the_methods_of_the_literal_path(
        self, quiet_world: World, operation: str, allowed: str
    ) -> None:
        """`…/pipelines/list` is ListPipelines, not a pipeline whose ID is "list"."""
        response = quiet_world.client.options(
            f"{quiet_world.base}/pipelines/{operation}", headers=quiet_world.viewer.headers
        )
        assert response.status_code == 405
        assert response.headers["Allow"] == allowed


class PlayedAgent:
    def __init__(self, client: httpx.Client, db: Database, settings: Settings) -> None:
        self.client = client
        self.name = f"played-{secrets.token_hex(4)}"
        key = accounts.create_agent(db, settings, name=self.name, now=system_clock())
        self.ak, self.sk = key.ak, key.sk

    def post(self, path: str, payload: Any) -> httpx.Response:
        body = json.dumps(payload).encode()
        headers = signing.sign(
            "POST",
            f"http://testserver{path}",
            {"Content-Type": "application/json"},
            body,
            self.ak,
            self.sk,
        )
        return self.client.post(path, content=body, headers=headers)


@pytest.fixture
def played(quiet_client: httpx.Client, quiet_db: Database, quiet_settings: Settings) -> PlayedAgent:
    return PlayedAgent(quiet_client, quiet_db, quiet_settings)


class TestAgents:
    def test_a_heartbeat_naming_10000_jobs_is_a_400(self, played: PlayedAgent) -> None:
        jobs = {secrets.token_hex(16): secrets.token_hex(16) for _ in range(10_000)}
        response = played.post("/agent/v1/heartbeat", {"jobs": jobs})
        refused(response, "jobs", "256")

    def test_a_heartbeat_naming_256_jobs_is_answered(self, played: PlayedAgent) -> None:
        jobs = {secrets.token_hex(16): secrets.token_hex(16) for _ in range(256)}
        response = played.post("/agent/v1/heartbeat", {"jobs": jobs})
        assert response.status_code == 200, response.text
        assert len(response.json()["cancel"]) == 256

    def test_a_step_that_logs_200001_lines_keeps_the_first_100000_and_a_marker(
        self, quiet_world: World, played: PlayedAgent, quiet_settings: Settings
    ) -> None:
        limit = quiet_settings.log_max_lines_per_step
        pool = f"pool-{secrets.token_hex(6)}"
        job_doc = shell_job("J", "true", resource=json.dumps({"pool": pool}))
        pipeline_id = quiet_world.create_pipeline(definition(stage("S", job_doc)))
        run_id = quiet_world.run(pipeline_id)
        claim = played.post("/agent/v1/claim", {"agent": "a", "pool": pool, "wait_seconds": 5})
        assert claim.status_code == 200, claim.text
        job = claim.json()
        step_id = job["steps"][0]["step_run_id"]
        events: list[dict[str, Any]] = [
            {"seq": 1, "kind": "job_started"},
            {"seq": 2, "kind": "step_started", "step_run_id": step_id},
        ]
        total, first = 200_001, 0
        while first < total:
            count = min(1000, total - first)
            lines = [f"line {first + i}" for i in range(count)]
            seq = len(events) + 1
            events.append(
                {"seq": seq, "kind": "step_log", "step_run_id": step_id, "first_line": first}
                | {"lines": lines}
            )
            first += count
        events.append({"seq": len(events) + 1, "kind": "step_log", "step_run_id": step_id}
                      | {"first_line": first, "lines": ["é" * 100_000]})  # fmt: skip
        n = len(events)
        events += [
            {"seq": n + 1, "kind": "step_finished", "step_run_id": step_id, "outcome": "COMPLETED"},
            {"seq": n + 2, "kind": "job_finished", "outcome": "COMPLETED"},
        ]
        path = f"/agent/v1/jobs/{job['job_run_id']}/events"
        # Ten events (10,000 lines) a report: each renews the claim's short lease well within
        # it, also on a loaded machine.
        for start in range(0, len(events), 10):
            batch = {"dispatch_id": job["dispatch_id"], "events": events[start : start + 10]}
            answer = played.post(path, batch)
            assert answer.status_code == 200, answer.text
        assert quiet_world.wait_for(pipeline_id, run_id)["status"] == "COMPLETED"

        log_path = (
            f"{quiet_world.base}/pipelines/{pipeline_id}/pipeline-runs/{run_id}"
            f"/jobs/{job['job_run_id']}/steps/{step_id}/logs"
        )
        window = quiet_world.client.post(
            log_path,
            json={"limit": 10, "sort": "asc", "start_offset": limit - 1},
            headers=quiet_world.viewer.headers,
        ).json()
        lines = window["log"].splitlines()
        assert lines[0] == f"line {limit - 1}"
        assert lines[1:] == [
            f"[stageline: this step logged more than {limit} lines;"
            " the rest of its log was dropped]"
        ]
        assert window["end_offset"] == str(limit + 1)
        assert window["has_more"] is False

    def test_a_log_line_is_cut_to_the_byte_limit(
        self, quiet_world: World, played: PlayedAgent, quiet_settings: Settings
    ) -> None:
        pool = f"pool-{secrets.token_hex(6)}"
        job_doc = shell_job("J", "true", resource=json.dumps({"pool": pool}))
        pipeline_id = quiet_world.create_pipeline(definition(stage("S", job_doc)))
        run_id = quiet_world.run(pipeline_id)
        job = played.post("/agent/v1/claim", {"agent": "a", "pool": pool, "wait_seconds": 5}).json()
        step_id = job["steps"][0]["step_run_id"]
        events = [
            {"seq": 1, "kind": "job_started"},
            {"seq": 2, "kind": "step_log", "step_run_id": step_id, "first_line": 0}
            | {"lines": ["é" * 100_000]},
        ]
        path = f"/agent/v1/jobs/{job['job_run_id']}/events"
        answer = played.post(path, {"dispatch_id": job["dispatch_id"], "events": events})
        assert answer.status_code == 200, answer.text
        log_path = (
            f"{quiet_world.base}/pipelines/{pipeline_id}/pipeline-runs/{run_id}"
            f"/jobs/{job['job_run_id']}/steps/{step_id}/logs"
        )
        window = quiet_world.client.post(
            log_path, json={"limit": 1, "sort": "asc"}, headers=quiet_world.viewer.headers
        ).json()
        line = window["log"].rstrip("\n")
        limit = quiet_settings.log_max_line_bytes
        assert line.endswith(f" [stageline: line cut at {limit} bytes]")
        assert line.startswith("é" * (limit // 2))
        assert len(line.encode()) < limit + 100


FUZZED_LIST_BODY = (
    r'{"is_publish": null, "creator_ids": ["8\ud916\udf6f\uda81\udde8\u00c9\u00be\u0003\u00bf'
    r'\ubbc4\u008a\ud8c6\udf60\u009aJ\u0083\u00b5\u0080T", "<\u0007", "\u00fd\udaf0\udefb'
    r'\u00a5i\u00b5\u007fv:\u00f2k_gl", "\u00da:\u0084&1", "\ud965\udc07\u00b1\u00e0\u00d9'
    r'\u0087", "D\u00d6\u00f0\u0087\ud9e1\udf9b]\u0000\u00d0Z"], "offset": 223, "sort_dir": '
    r'"asc", "sort_key": "name", "limit": 8, "name": "\ud9df\uddac\u00b9", "status": null, '
    r'"executor_ids": ["\ud9c2\uddf3", "\u00a4\u00d5\u00f5\u0097\ud885\udc23\ud884\udcdc\udb02'
    r'\udee9\ud8e9\udd6d", "\u00d7\u00de", "", "\u00e4\u00f6\u00c5\u00dc\udb2b\udcc2Y", "", "", '
    r'"\u00e8:s\u0003\u00b1\u0015\ud8f6\udd2e\u00e6 7L", "\uda89\udf70\udbfa\udcf0\u008bt\u00d4",'
    r' "\u00ac\u00c2$}#"]}'
)
"""The body with which the fuzzer got a 500 on PostgreSQL: a NUL character in a filter."""


class TestNulCharacters:
    """PostgreSQL cannot store NUL: a request holding one is refused before the database."""

    def test_the_fuzzed_pipeline_list_is_a_400(self, quiet_world: World) -> None:
        response = quiet_world.client.post(
            f"{quiet_world.base}/pipelines/list",
            content=FUZZED_LIST_BODY.encode(),
            headers={**quiet_world.viewer.headers, "Content-Type": "application/json"},
        )
        refused(response, "creator_ids[5]", "NUL")

    def test_a_definition_holding_nul_is_a_400(self, quiet_world: World) -> None:
        text = definition(stage("S", shell_job("J", "echo \x00")))
        refused(create(quiet_world, definition=text), "definition", "NUL")
        still_serving(quiet_world)

    def test_a_schedule_holding_nul_is_a_400(self, quiet_world: World) -> None:
        refused(create(quiet_world, schedules=[{"type": "\x00"}]), "schedules[0].type", "NUL")

    def test_a_query_holding_nul_is_a_400(
        self, quiet_world: World, run_ids: dict[str, str]
    ) -> None:
        response = quiet_world.client.get(
            f"{quiet_world.base}/pipelines/{run_ids['pipeline']}/pipeline-runs/detail",
            params={"pipeline_run_id": "a\x00"},
            headers=quiet_world.viewer.headers,
        )
        refused(response, "NUL")

    def test_a_path_holding_nul_names_nothing(self, quiet_world: World) -> None:
        response = quiet_world.client.get(
            f"{quiet_world.base}/pipelines/a%00b", headers=quiet_world.viewer.headers
        )
        assert response.status_code == 404

    def test_a_login_holding_nul_is_a_400(self, quiet_world: World) -> None:
        user = {"name": "admin\x00", "password": "x"}
        body = {"auth": {"identity": {"methods": ["password"], "password": {"user": user}}}}
        response = quiet_world.client.post("/v3/auth/tokens", json=body)
        assert response.status_code == 400, response.text

    def test_a_log_line_holding_nul_is_kept_with_a_replacement(
        self, quiet_world: World, played: "PlayedAgent"
    ) -> None:
        pool = f"pool-{secrets.token_hex(6)}"
        job_doc = shell_job("J", "true", resource=json.dumps({"pool": pool}))
        pipeline_id = quiet_world.create_pipeline(definition(stage("S", job_doc)))
        run_id = quiet_world.run(pipeline_id)
        job = played.post("/agent/v1/claim", {"agent": "a", "pool": pool, "wait_seconds": 5}).json()
        step_id = job["steps"][0]["step_run_id"]
        events = [
            {"seq": 1, "kind": "job_started"},
            {"seq": 2, "kind": "step_log", "step_run_id": step_id, "first_line": 0}
            | {"lines": ["a\x00b"]},
            {"seq": 3, "kind": "job_finished", "outcome": "FAILED", "message": "x\x00y"},
        ]
        path = f"/agent/v1/jobs/{job['job_run_id']}/events"
        answer = played.post(path, {"dispatch_id": job["dispatch_id"], "events": events})
        assert answer.status_code == 200, answer.text
        assert answer.json()["applied"] == 3
        log_path = (
            f"{quiet_world.base}/pipelines/{pipeline_id}/pipeline-runs/{run_id}"
            f"/jobs/{job['job_run_id']}/steps/{step_id}/logs"
        )
        window = quiet_world.client.post(
            log_path, json={"limit": 1, "sort": "asc"}, headers=quiet_world.viewer.headers
        ).json()
        assert window["log"] == "a\ufffdb\n"


def test_a_schedule_holding_a_huge_number_is_answered_as_stored(quiet_world: World) -> None:
    """Free-form JSON is stored and answered as it came, numbers beyond 64 bits included."""
    response = create(quiet_world, schedules=[{"type": "fixed", "enable": False, "n": 10**30}])
    assert response.status_code == 200, response.text
    detail = quiet_world.client.get(
        f"{quiet_world.base}/pipelines/{response.json()['pipeline_id']}",
        headers=quiet_world.viewer.headers,
    )
    assert detail.status_code == 200, detail.text
    assert detail.json()["schedules"][0]["n"] == 10**30
