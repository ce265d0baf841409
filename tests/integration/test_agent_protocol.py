"""The build agents' protocol (`/agent/v1/…`) played by the test over HTTP, on the quiet server.

The quiet server has no agent and a short lease (`QUIET_LEASE_SECONDS`), and its sweep runs every
second, so a test that stops heartbeating sees its job taken back within a few seconds. Its
database is shared by many tests: every job here asks for a pool of its own, and every claim
names that pool, so no test takes another's job.
"""

import json
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from stageline.agent.transport import NONCE_HEADER
from stageline.auth import accounts, signing
from stageline.auth.roles import Role
from stageline.engine.clock import system_clock
from stageline.settings import Settings
from stageline.store.database import Database
from tests.conftest import QUIET_LEASE_SECONDS
from tests.factories import World, definition, shell_job, stage

SWEEP_BOUND_SECONDS = QUIET_LEASE_SECONDS + 6
"""Longest wait for a silent claim to be taken back: the lease, a sweep, and slack for CI."""
Event = dict[str, Any]
STALE_DISPATCH = "STAGELINE.AGENT.0409"
FORBIDDEN = "DEVCP.00014031"
INVALID = "DEVCP.00021400"


@dataclass
class PlayedAgent:
    """An agent identity whose requests the test makes by hand, signed like the real agent's."""

    client: httpx.Client
    name: str
    ak: str
    sk: str

    def send(
        self, method: str, path: str, body: bytes = b"", *, sk: str | None = None
    ) -> httpx.Response:
        """`path` may carry a query; the signature covers it, as the SDK's does. A nonce makes
        each request unique, as the real agent's are (a signed claim is carried out once)."""
        url = f"http://testserver{path}"
        headers = signing.sign(
            method,
            url,
            {"Content-Type": "application/json", NONCE_HEADER: secrets.token_hex(8)},
            body,
            self.ak,
            sk or self.sk,
        )
        return self.client.request(method, path, content=body, headers=headers)

    def post(self, path: str, payload: Any) -> httpx.Response:
        return self.send("POST", path, json.dumps(payload).encode())

    def claim(
        self, pool: str, labels: Sequence[str] = (), wait_seconds: float = 0.2
    ) -> httpx.Response:
        body = {"agent": self.name, "pool": pool, "labels": list(labels)}
        return self.post("/agent/v1/claim", {**body, "wait_seconds": wait_seconds})

    def take(
        self, pool: str, labels: Sequence[str] = (), wait_seconds: float = 0.2
    ) -> dict[str, Any]:
        """Claim, expecting a job."""
        response = self.claim(pool, labels, wait_seconds)
        assert response.status_code == 200, (response.status_code, response.text)
        job: dict[str, Any] = response.json()
        return job

    def report(self, job: dict[str, Any], *events: Event) -> httpx.Response:
        return self.post(
            f"/agent/v1/jobs/{job['job_run_id']}/events",
            {"dispatch_id": job["dispatch_id"], "events": list(events)},
        )

    def heartbeat(self, *jobs: dict[str, Any]) -> httpx.Response:
        beat = {job["job_run_id"]: job["dispatch_id"] for job in jobs}
        return self.post("/agent/v1/heartbeat", {"jobs": beat})


@pytest.fixture
def make_agent(
    quiet_client: httpx.Client, quiet_db: Database, quiet_settings: Settings
) -> Callable[[], PlayedAgent]:
    def make() -> PlayedAgent:
        name = f"played-{secrets.token_hex(4)}"
        key = accounts.create_agent(quiet_db, quiet_settings, name=name, now=system_clock())
        return PlayedAgent(quiet_client, name, key.ak, key.sk)

    return make


def unique_pool() -> str:
    return f"pool-{secrets.token_hex(6)}"


def resource(pool: str, labels: Sequence[str] | None = None) -> str:
    wanted: dict[str, Any] = {"pool": pool}
    if labels is not None:
        wanted["labels"] = list(labels)
    return json.dumps(wanted)


def one_job_pipeline(world: World, pool: str, labels: Sequence[str] | None = None) -> str:
    job = shell_job("ONLY", "echo hi", resource=resource(pool, labels))
    return world.create_pipeline(definition(stage("S", job)))


def job_started(seq: int) -> Event:
    return {"seq": seq, "kind": "job_started"}


def step_started(seq: int, step_run_id: str) -> Event:
    return {"seq": seq, "kind": "step_started", "step_run_id": step_run_id}


def step_log(seq: int, step_run_id: str, first_line: int, lines: list[str]) -> Event:
    return {
        "seq": seq,
        "kind": "step_log",
        "step_run_id": step_run_id,
        "first_line": first_line,
        "lines": lines,
    }


def step_finished(seq: int, step_run_id: str) -> Event:
    return {
        "seq": seq,
        "kind": "step_finished",
        "step_run_id": step_run_id,
        "outcome": "COMPLETED",
        "exit_code": 0,
    }


def job_finished(seq: int) -> Event:
    return {"seq": seq, "kind": "job_finished", "outcome": "COMPLETED"}


def stage_status(world: World, pipeline_id: str) -> str:
    (item,) = world.status(pipeline_id)
    status: str = item["stage_status_list"][0]["status"]
    return status


def only_stage_jobs(world: World, pipeline_id: str, run_id: str) -> list[dict[str, Any]]:
    jobs: list[dict[str, Any]] = world.detail(pipeline_id, run_id)["stages"][0]["jobs"]
    return jobs


def only_job(world: World, pipeline_id: str, run_id: str) -> dict[str, Any]:
    (only,) = world.detail(pipeline_id, run_id)["stages"][0]["jobs"]
    return dict(only)


def eventually(check: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `check` until it holds; a bound on how long the server may take, not a timing test."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        time.sleep(0.05)


def log_text(world: World, pipeline_id: str, run_id: str, job: dict[str, Any]) -> str:
    step_run_id = job["steps"][0]["step_run_id"]
    response = world.client.post(
        f"{world.base}/pipelines/{pipeline_id}/pipeline-runs/{run_id}/jobs/{job['job_run_id']}"
        f"/steps/{step_run_id}/logs",
        json={"limit": 500, "sort": "asc"},
        headers=world.viewer.headers,
    )
    assert response.status_code == 200, response.text
    text: str = response.json()["log"]
    return text


def complete(agent: PlayedAgent, job: dict[str, Any], first_seq: int, first_line: int) -> None:
    step_run_id = job["steps"][0]["step_run_id"]
    events = [
        job_started(first_seq),
        step_started(first_seq + 1, step_run_id),
        step_log(first_seq + 2, step_run_id, first_line, ["done"]),
        step_finished(first_seq + 3, step_run_id),
        job_finished(first_seq + 4),
    ]
    answer = agent.report(job, *events)
    assert answer.status_code == 200, answer.text
    assert answer.json()["applied"] == first_seq + 4


class TestClaim:
    def test_a_claim_returns_the_job_assignment(
        self, quiet_world: World, make_agent: Callable[[], PlayedAgent]
    ) -> None:
        world, agent, pool = quiet_world, make_agent(), unique_pool()
        pipeline_id = one_job_pipeline(world, pool)
        run_id = world.run(pipeline_id)

        job = agent.take(pool)

        assert job["run_id"] == run_id
        assert job["pipeline_id"] == pipeline_id
        assert job["name"] == "ONLY"
        assert job["lease_seconds"] == QUIET_LEASE_SECONDS
        assert len(job["dispatch_id"]) >= 16
        (step,) = job["steps"]
        assert (step["task"], step["script"], step["log_offset"]) == (
            "official_shell_plugin",
            "echo hi",
            0,
        )
        assert job["env"]["PIPELINE_RUN_ID"] == run_id
        assert job["env"]["RUN_NUMBER"] == "1"
        assert job["env"]["JOB_RUN_ID"] == job["job_run_id"]
        detail_job = only_job(world, pipeline_id, run_id)
        assert detail_job["id"] == job["job_run_id"]
        assert detail_job["last_dispatch_id"] == job["dispatch_id"]

    def test_nothing_to_claim_is_a_204_after_the_wait(
        self, quiet_world: World, make_agent: Callable[[], PlayedAgent]
    ) -> None:
        agent = make_agent()
        started = time.monotonic()
        response = agent.claim(unique_pool(), wait_seconds=0.2)
        assert response.status_code == 204
        assert response.content == b""
        assert time.monotonic() - started >= 0.2

    def test_a_job_goes_only_to_an_agent_with_its_labels(
        self, quiet_world: World, make_agent: Callable[[], PlayedAgent]
    ) -> None:
        world, agent, pool = quiet_world, make_agent(), unique_pool()
        pipeline_id = one_job_pipeline(world, pool, labels=["gpu"])
        run_id = world.run(pipeline_id)

        assert agent.claim(pool, labels=["arm"]).status_code == 204
        assert agent.claim(unique_pool(), labels=["gpu"]).status_code == 204
        assert stage_status(world, pipeline_id) == "QUEUED"
        assert only_job(world, pipeline_id, run_id)["status"] == "QUEUED"

        job = agent.take(pool, labels=["arm", "gpu"])
        assert job["run_id"] == run_id

    def test_a_job_no_connected_agent_can_take_says_why_it_waits(
        self, quiet_world: World, make_agent: Callable[[], PlayedAgent]
    ) -> None:
        """The server's own sweep; the clock-driven cases are in test_waiting_jobs.py."""
        world, agent, pool = quiet_world, make_agent(), unique_pool()
        pipeline_id = one_job_pipeline(world, pool, labels=["gpu"])
        run_id = world.run(pipeline_id)
        assert agent.claim(pool, labels=["arm"]).status_code == 204

        why = (
            f"waiting for an agent in pool '{pool}' with labels [gpu]: no connected agent has them"
        )
        eventually(
            lambda: only_job(world, pipeline_id, run_id)["message"] == why,
            SWEEP_BOUND_SECONDS,
            "the job says why it waits",
        )
        assert only_job(world, pipeline_id, run_id)["status"] == "QUEUED"

        agent.take(pool, labels=["arm", "gpu"])
        assert only_job(world, pipeline_id, run_id)["message"] is None

    def test_concurrent_claimers_take_each_job_exactly_once(
        self, quiet_world: World, make_agent: Callable[[], PlayedAgent]
    ) -> None:
        world, pool = quiet_world, unique_pool()
        jobs = [shell_job(f"J{i}", "true", resource=resource(pool)) for i in range(6)]
        pipeline_id = world.create_pipeline(definition(stage("S", *jobs)))
        run_id = world.run(pipeline_id)
        expected = {job["id"] for job in only_stage_jobs(world, pipeline_id, run_id)}
        agents = [make_agent() for _ in range(8)]
        taken: list[str] = []
        errors: list[BaseException] = []
        lock = threading.Lock()

        def claim_until_empty(agent: PlayedAgent) -> None:
            try:
                while (response := agent.claim(pool, wait_seconds=0.2)).status_code == 200:
                    with lock:
                        taken.append(response.json()["job_run_id"])
                assert response.status_code == 204, response.text
            except BaseException as error:
                errors.append(error)

        threads = [threading.Thread(target=claim_until_empty, args=(a,)) for a in agents]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert errors == []
        assert len(expected) == 6
        assert sorted(taken) == sorted(expected)

    def test_the_oldest_queued_job_is_claimed_first(
        self, quiet_world: World, make_agent: Callable[[], PlayedAgent]
    ) -> None:
        world, agent, pool = quiet_world, make_agent(), unique_pool()
        pipelines = [one_job_pipeline(world, pool) for _ in range(3)]
        run_ids = []
        for pipeline_id in pipelines:
            run_ids.append(world.run(pipeline_id))
            time.sleep(0.005)  # queue times are in milliseconds: no two runs may share one
        claimed = [agent.take(pool)["run_id"] for _ in run_ids]
        assert claimed == run_ids
        assert agent.claim(pool).status_code == 204

    def test_the_jobs_of_a_stage_run_on_two_agents_at_once(
        self, quiet_world: World, make_agent: Callable[[], PlayedAgent]
    ) -> None:
        world, pool = quiet_world, unique_pool()
        first_agent, second_agent = make_agent(), make_agent()
        jobs = [shell_job(j, "true", resource=resource(pool)) for j in ("LEFT", "RIGHT")]
        pipeline_id = world.create_pipeline(definition(stage("S", *jobs)))
        run_id = world.run(pipeline_id)
        left, right = first_agent.take(pool), second_agent.take(pool)
        assert {left["job_run_id"], right["job_run_id"]} == {
            job["id"] for job in only_stage_jobs(world, pipeline_id, run_id)
        }
        for agent, job in ((first_agent, left), (second_agent, right)):
            assert agent.report(job, job_started(1)).status_code == 200

        assert [j["status"] for j in only_stage_jobs(world, pipeline_id, run_id)] == [
            "RUNNING",
            "RUNNING",
        ]
        assert {
            j["exec_id"].split("/")[0] for j in only_stage_jobs(world, pipeline_id, run_id)
        } == {
            first_agent.name,
            second_agent.name,
        }
        assert stage_status(world, pipeline_id) == "RUNNING"
        complete(first_agent, left, 2, 0)
        complete(second_agent, right, 2, 0)
        assert world.wait_for(pipeline_id, run_id)["status"] == "COMPLETED"


class TestReports:
    def test_reports_run_the_job_to_completion(
        self, quiet_world: World, make_agent: Callable[[], PlayedAgent]
    ) -> None:
        world, agent, pool = quiet_world, make_agent(), unique_pool()
        pipeline_id = one_job_pipeline(world, pool)
        run_id = world.run(pipeline_id)
        job = agent.take(pool)
        step_run_id = job["steps"][0]["step_run_id"]

        first = agent.report(job, job_started(1), step_started(2, step_run_id))
        assert first.status_code == 200, first.text
        assert first.json() == {"applied": 2, "cancel": False}
        assert only_job(world, pipeline_id, run_id)["status"] == "RUNNING"
        assert stage_status(world, pipeline_id) == "RUNNING"

        batch = [
            job_started(1),
            step_started(2, step_run_id),
            step_log(3, step_run_id, 0, ["one", "two"]),
            step_finished(4, step_run_id),
            job_finished(5),
        ]
        answer = agent.report(job, *batch)
        assert answer.status_code == 200, answer.text
        assert answer.json()["applied"] == 5
        detail = world.wait_for(pipeline_id, run_id, timeout=10)
        assert detail["status"] == "COMPLETED"
        assert detail["stages"][0]["jobs"][0]["steps"][0]["status"] == "COMPLETED"
        assert log_text(world, pipeline_id, run_id, job) == "one\ntwo\n"

        again = agent.report(job, *batch)
        assert again.status_code == 200, again.text
        assert again.json()["applied"] == 5
        assert log_text(world, pipeline_id, run_id, job) == "one\ntwo\n"
        assert world.detail(pipeline_id, run_id)["status"] == "COMPLETED"

    def test_a_batch_with_a_gap_is_applied_up_to_the_gap(
        self, quiet_world: World, make_agent: Callable[[], PlayedAgent]
    ) -> None:
        world, agent, pool = quiet_world, make_agent(), unique_pool()
        pipeline_id = one_job_pipeline(world, pool)
        run_id = world.run(pipeline_id)
        job = agent.take(pool)
        step_run_id = job["steps"][0]["step_run_id"]

        gapped = agent.report(
            job,
            job_started(1),
            step_started(2, step_run_id),
            step_log(4, step_run_id, 1, ["second"]),
            job_finished(5),
        )
        assert gapped.status_code == 200, gapped.text
        assert gapped.json() == {"applied": 2, "cancel": False}
        assert log_text(world, pipeline_id, run_id, job) == ""
        assert world.detail(pipeline_id, run_id)["status"] == "RUNNING"

        rest = agent.report(
            job,
            step_log(3, step_run_id, 0, ["first"]),
            step_log(4, step_run_id, 1, ["second"]),
            step_finished(5, step_run_id),
            job_finished(6),
        )
        assert rest.status_code == 200, rest.text
        assert rest.json()["applied"] == 6
        assert log_text(world, pipeline_id, run_id, job) == "first\nsecond\n"
        assert world.wait_for(pipeline_id, run_id, timeout=10)["status"] == "COMPLETED"

    def test_the_server_masks_secrets_in_outputs_an_agent_left_unmasked(
        self, quiet_world: World, make_agent: Callable[[], PlayedAgent]
    ) -> None:
        """An agent of an earlier version masked output values but not keys."""
        world, agent, pool = quiet_world, make_agent(), unique_pool()
        secret = f"sk-{secrets.token_hex(8)}"
        job_spec = shell_job("ONLY", "true", resource=resource(pool))
        pipeline_id = world.create_pipeline(
            definition(stage("S", job_spec)),
            variables=[{"name": "API_TOKEN", "value": secret, "is_secret": True}],
        )
        run_id = world.run(pipeline_id)
        job = agent.take(pool)
        assert secret in job["secrets"]  # what the agent gets is opened for it
        step_run_id = job["steps"][0]["step_run_id"]
        outputs = {
            "seq": 3,
            "kind": "step_outputs",
            "step_run_id": step_run_id,
            "outputs": [
                {"key": secret, "value": "as a key"},
                {"key": f"x-{secret}", "value": secret},
            ],
        }
        answer = agent.report(job, job_started(1), step_started(2, step_run_id), outputs)
        assert answer.status_code == 200, answer.text

        shown = world.client.get(
            f"{world.base}/pipelines/{pipeline_id}/pipeline-runs/{run_id}/steps/outputs",
            params={"step_run_ids": step_run_id},
            headers=world.viewer.headers,
        )
        assert shown.status_code == 200, shown.text
        assert secret not in shown.text
        assert shown.json()["step_outputs"][0]["output_result"] == [
            {"key": "***", "value": "as a key"},
            {"key": "x-***", "value": "***"},
        ]


class TestRedispatch:
    def test_a_silent_agent_loses_its_job_to_another(
        self, quiet_world: World, make_agent: Callable[[], PlayedAgent]
    ) -> None:
        world, pool = quiet_world, unique_pool()
        lost, rescuer = make_agent(), make_agent()
        pipeline_id = one_job_pipeline(world, pool)
        run_id = world.run(pipeline_id)
        job = lost.take(pool)
        step_run_id = job["steps"][0]["step_run_id"]
        started = lost.report(
            job,
            job_started(1),
            step_started(2, step_run_id),
            step_log(3, step_run_id, 0, ["a", "b", "c"]),
        )
        assert started.json() == {"applied": 3, "cancel": False}

        eventually(
            lambda: stage_status(world, pipeline_id) == "REDISPATCH",
            SWEEP_BOUND_SECONDS,
            "the stage shows REDISPATCH",
        )
        detail_job = only_job(world, pipeline_id, run_id)
        assert detail_job["status"] == "REDISPATCH"
        assert "agent lost" in detail_job["message"]
        assert lost.name in detail_job["message"]

        stale = lost.report(job, step_log(4, step_run_id, 3, ["late"]))
        assert stale.status_code == 409, stale.text
        assert stale.json()["error_code"] == STALE_DISPATCH
        assert "no longer current" in stale.json()["error_msg"]
        beat = lost.heartbeat(job)
        assert beat.status_code == 200, beat.text
        assert beat.json() == {"cancel": [job["job_run_id"]]}

        again = rescuer.take(pool)
        assert again["job_run_id"] == job["job_run_id"]
        assert again["dispatch_id"] != job["dispatch_id"]
        assert again["steps"][0]["log_offset"] == 3
        complete(rescuer, again, first_seq=1, first_line=3)
        assert world.wait_for(pipeline_id, run_id, timeout=10)["status"] == "COMPLETED"
        assert log_text(world, pipeline_id, run_id, job) == "a\nb\nc\ndone\n"

    def test_a_job_whose_agents_keep_going_silent_fails(
        self, quiet_world: World, make_agent: Callable[[], PlayedAgent]
    ) -> None:
        """With the default of two redispatches, the third lost claim fails the job."""
        world, agent, pool = quiet_world, make_agent(), unique_pool()
        pipeline_id = one_job_pipeline(world, pool)
        run_id = world.run(pipeline_id)
        first = agent.take(pool)
        # Each claim waits until the sweep has taken the job back from the previous one.
        second = agent.take(pool, wait_seconds=SWEEP_BOUND_SECONDS)
        third = agent.take(pool, wait_seconds=SWEEP_BOUND_SECONDS)
        assert first["job_run_id"] == second["job_run_id"] == third["job_run_id"]
        assert len({first["dispatch_id"], second["dispatch_id"], third["dispatch_id"]}) == 3

        detail = world.wait_for(pipeline_id, run_id, timeout=SWEEP_BOUND_SECONDS)
        assert detail["status"] == "FAILED"
        job = detail["stages"][0]["jobs"][0]
        assert job["status"] == "FAILED"
        assert "agent lost" in job["message"]
        assert agent.claim(pool).status_code == 204


class TestHeartbeat:
    def test_heartbeats_keep_the_claim_and_tell_of_a_stop(
        self, quiet_world: World, make_agent: Callable[[], PlayedAgent]
    ) -> None:
        world, agent, pool = quiet_world, make_agent(), unique_pool()
        pipeline_id = one_job_pipeline(world, pool)
        run_id = world.run(pipeline_id)
        job = agent.take(pool)
        assert agent.report(job, job_started(1)).json()["applied"] == 1

        until = time.monotonic() + 2 * QUIET_LEASE_SECONDS
        while time.monotonic() < until:
            beat = agent.heartbeat(job)
            assert beat.status_code == 200, beat.text
            assert beat.json() == {"cancel": []}
            assert stage_status(world, pipeline_id) == "RUNNING"
            time.sleep(0.5)
        assert only_job(world, pipeline_id, run_id)["status"] == "RUNNING"

        stopped = world.client.post(
            f"{world.base}/pipelines/{pipeline_id}/pipeline-runs/{run_id}/stop",
            headers=world.developer.headers,
        )
        assert stopped.status_code == 200, stopped.text
        assert agent.heartbeat(job).json() == {"cancel": [job["job_run_id"]]}
        step_run_id = job["steps"][0]["step_run_id"]
        answer = agent.report(job, step_log(2, step_run_id, 0, ["still going"]))
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"applied": 2, "cancel": True}
        assert world.wait_for(pipeline_id, run_id, timeout=10)["status"] == "CANCELED"


class TestSecurity:
    def test_a_users_access_key_may_not_claim(
        self, quiet_world: World, quiet_db: Database, quiet_settings: Settings
    ) -> None:
        key = accounts.create_access_key(
            quiet_db, quiet_settings, user_name=quiet_world.admin.name, now=system_clock()
        )
        user = PlayedAgent(quiet_world.client, "not-an-agent", key.ak, key.sk)
        response = user.claim(unique_pool())
        assert response.status_code == 403, response.text
        assert response.json()["error_code"] == FORBIDDEN
        assert "not a build agent" in response.json()["error_msg"]

    def test_an_agent_may_not_use_the_pipeline_api_even_as_a_member(
        self, quiet_world: World, make_agent: Callable[[], PlayedAgent]
    ) -> None:
        agent = make_agent()
        accounts.add_member(
            quiet_world.db, project_id=quiet_world.project_id, user_name=agent.name, role=Role.ADMIN
        )
        response = agent.post(f"{quiet_world.base}/pipelines/status", [])
        assert response.status_code == 403, response.text
        assert response.json()["error_code"] == FORBIDDEN
        assert "is a build agent" in response.json()["error_msg"]

    def test_no_credentials_are_a_401(self, quiet_world: World) -> None:
        response = quiet_world.client.post(
            "/agent/v1/claim", json={"agent": "anonymous", "pool": unique_pool()}
        )
        assert response.status_code == 401
        assert response.json()["error_code"] == "APIGW.0301"

    def test_a_bad_signature_is_a_401(
        self, quiet_world: World, make_agent: Callable[[], PlayedAgent]
    ) -> None:
        agent = make_agent()
        body = json.dumps({"agent": agent.name, "pool": unique_pool(), "wait_seconds": 0})
        response = agent.send("POST", "/agent/v1/claim", body.encode(), sk="wrong-secret")
        assert response.status_code == 401
        assert response.json()["error_msg"].endswith("verify aksk signature fail")


class TestMalformed:
    @pytest.mark.parametrize(
        ("event", "named"),
        [
            ({"seq": 1, "kind": "step_log", "step_run_id": "x", "lines": ["a"]}, "first_line"),
            ({"seq": 1, "kind": "job_exploded"}, "kind"),
            ({"seq": 1, "kind": "job_started", "colour": "red"}, "colour"),
            ({"seq": 0, "kind": "job_started"}, "seq"),
            ({"seq": 1, "kind": "job_finished"}, "outcome"),
        ],
    )
    def test_a_malformed_event_is_a_400(
        self,
        quiet_world: World,
        make_agent: Callable[[], PlayedAgent],
        event: Event,
        named: str,
    ) -> None:
        agent = make_agent()
        job = {"job_run_id": secrets.token_hex(16), "dispatch_id": secrets.token_hex(16)}
        response = agent.report(job, event)
        assert response.status_code == 400, response.text
        body = response.json()
        assert body["error_code"] == INVALID
        assert named in body["error_msg"]

    def test_a_claim_with_an_unknown_field_is_a_400(
        self, quiet_world: World, make_agent: Callable[[], PlayedAgent]
    ) -> None:
        agent = make_agent()
        response = agent.post(
            "/agent/v1/claim", {"agent": agent.name, "pool": unique_pool(), "gpus": 4}
        )
        assert response.status_code == 400, response.text
        assert response.json()["error_code"] == INVALID
        assert "gpus" in response.json()["error_msg"]

    def test_a_report_for_an_unknown_job_is_refused(
        self, quiet_world: World, make_agent: Callable[[], PlayedAgent]
    ) -> None:
        agent = make_agent()
        job = {"job_run_id": secrets.token_hex(16), "dispatch_id": secrets.token_hex(16)}
        response = agent.report(job, job_started(1))
        assert response.status_code == 404, response.text
        assert response.json()["error_code"] == "DEVCP.00012002"


class TestArtifacts:
    def test_an_upload_under_a_stale_dispatch_is_refused_and_not_recorded(
        self, quiet_world: World, make_agent: Callable[[], PlayedAgent]
    ) -> None:
        world, agent, pool = quiet_world, make_agent(), unique_pool()
        pipeline_id = one_job_pipeline(world, pool)
        run_id = world.run(pipeline_id)
        job = agent.take(pool)
        step_run_id = job["steps"][0]["step_run_id"]

        def upload(dispatch_id: str, name: str) -> httpx.Response:
            query = urlencode(
                {"dispatch_id": dispatch_id, "step_run_id": step_run_id, "name": name}
            )
            path = f"/agent/v1/jobs/{job['job_run_id']}/artifacts?{query}"
            return agent.send("PUT", path, b"artifact bytes\n")

        def listed() -> list[str]:
            response = world.client.get(
                f"{world.base}/pipelines/{pipeline_id}/pipeline-runs/{run_id}/artifacts",
                headers=world.viewer.headers,
            )
            assert response.status_code == 200, response.text
            return [artifact["name"] for artifact in response.json()["artifacts"]]

        stale = upload(secrets.token_hex(16), "stale.txt")
        assert stale.status_code == 409, stale.text
        assert stale.json()["error_code"] == STALE_DISPATCH
        assert listed() == []

        current = upload(job["dispatch_id"], "current.txt")
        assert current.status_code == 200, current.text
        assert current.json()["size"] == len(b"artifact bytes\n")
        assert listed() == ["current.txt"]
