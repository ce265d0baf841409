"""A signed request that changes something is carried out once: the same signature again, to
any server process, is a 409. Reads, and agents' reports and heartbeats, may be repeated."""

import json
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from stageline.api.app import create_app
from stageline.api.deps import CARRIED_OUT_ONCE, authenticate, authenticate_once
from stageline.auth import accounts, signing
from stageline.auth.principals import SIGNATURE_MEMORY_MS, Authenticator
from stageline.engine.clock import system_clock
from stageline.settings import Settings
from stageline.store.database import Database
from stageline.store.tables import UsedSignature
from tests.factories import PASSING, World, definition, shell_job, stage

REPLAYED = "STAGELINE.AUTH.0409"
CHANGES = {
    "create_pipeline_new",
    "update_pipeline_info",
    "delete_pipeline",
    "run_pipeline",
    "stop_pipeline_run",
    "retry_pipeline_run",
    "accept_manual_review",
    "reject_manual_review",
    "accept_checkpoint",
    "claim_job",
    "upload_artifact",
}
"""Every route whose signed requests are carried out once; every other signed route may be
repeated (it reads, or it is an agent's numbered report or heartbeat)."""


def signed(
    method: str,
    path: str,
    ak: str,
    sk: str,
    body: bytes = b"",
    *,
    content_type: str = "application/json",
    now: datetime | None = None,
) -> dict[str, Any]:
    """`client.request` arguments for a request signed once, as the SDK signs it."""
    headers = signing.sign(
        method,
        f"http://testserver{path}",
        {"Content-Type": content_type, "X-Project-Id": "iam-project"},
        signing.UNSIGNED_BODY if body and content_type != "application/json" else body,
        ak,
        sk,
        now=now,
    )
    return {"method": method, "url": path, "content": body, "headers": headers}


def key_of(world: World, role: str = "developer") -> tuple[str, str]:
    """(AK, SK) of a new access key of the world's user in `role`."""
    name = getattr(world, role).name
    pair = accounts.create_access_key(world.db, world.settings, user_name=name, now=system_clock())
    return pair.ak, pair.sk


def run_count(world: World, pipeline_id: str) -> int:
    response = world.client.post(
        f"{world.base}/pipelines/{pipeline_id}/pipeline-runs/list",
        json={},
        headers=world.viewer.headers,
    )
    assert response.status_code == 200, response.text
    total: int = response.json()["total"]
    return total


def assert_replayed(response: httpx.Response) -> None:
    assert response.status_code == 409, response.text
    assert response.json()["error_code"] == REPLAYED
    assert "received before" in response.json()["error_msg"]


class TestStateChangingRequests:
    def test_the_same_signed_run_twice_starts_one_run(self, quiet_world: World) -> None:
        pipeline_id = quiet_world.create_pipeline()
        key = key_of(quiet_world)
        request = signed("POST", f"{quiet_world.base}/pipelines/{pipeline_id}/run", *key, b"{}")

        first = quiet_world.client.request(**request)
        again = quiet_world.client.request(**request)

        assert first.status_code == 200, first.text
        assert_replayed(again)
        assert run_count(quiet_world, pipeline_id) == 1

    def test_a_replay_to_another_server_process_is_refused_too(
        self, quiet_world: World, quiet_settings: Settings, quiet_db: Database
    ) -> None:
        """A second app on the same database: its own caches, the same record of signatures."""
        other = TestClient(create_app(quiet_settings, db=quiet_db), raise_server_exceptions=False)
        pipeline_id = quiet_world.create_pipeline()
        request = signed(
            "POST", f"{quiet_world.base}/pipelines/{pipeline_id}/run", *key_of(quiet_world), b"{}"
        )

        assert quiet_world.client.request(**request).status_code == 200
        assert_replayed(other.request(**request))
        assert run_count(quiet_world, pipeline_id) == 1

    def test_a_signed_create_and_delete_are_carried_out_once(self, quiet_world: World) -> None:
        key = key_of(quiet_world, "admin")
        body = {"name": f"once-{secrets.token_hex(4)}", "is_publish": False, "definition": PASSING}
        create = signed("POST", f"{quiet_world.base}/pipelines", *key, json.dumps(body).encode())
        created = quiet_world.client.request(**create)
        assert created.status_code == 200, created.text
        assert_replayed(quiet_world.client.request(**create))

        path = f"{quiet_world.base}/pipelines/{created.json()['pipeline_id']}"
        delete = signed("DELETE", path, *key)
        assert quiet_world.client.request(**delete).status_code == 200
        assert_replayed(quiet_world.client.request(**delete))

    def test_the_same_request_signed_again_is_a_new_request(self, quiet_world: World) -> None:
        pipeline_id = quiet_world.create_pipeline()
        key = key_of(quiet_world)
        path = f"{quiet_world.base}/pipelines/{pipeline_id}/run"
        a_second_later = datetime.now(tz=UTC) + timedelta(seconds=1)

        first = quiet_world.client.request(**signed("POST", path, *key, b"{}"))
        second = quiet_world.client.request(**signed("POST", path, *key, b"{}", now=a_second_later))

        assert (first.status_code, second.status_code) == (200, 200)
        assert run_count(quiet_world, pipeline_id) == 2

    def test_token_requests_are_not_signatures(self, quiet_world: World) -> None:
        """An X-Auth-Token is a bearer credential, sent unchanged with every request."""
        pipeline_id = quiet_world.create_pipeline()
        quiet_world.run(pipeline_id)
        quiet_world.run(pipeline_id)
        assert run_count(quiet_world, pipeline_id) == 2


class TestRepeatableRequests:
    @pytest.mark.parametrize(
        ("path", "body"), [("/pipelines/status", b"[]"), ("/pipelines/list", b"{}")]
    )
    def test_a_read_only_post_may_be_sent_twice(
        self, quiet_world: World, path: str, body: bytes
    ) -> None:
        request = signed("POST", f"{quiet_world.base}{path}", *key_of(quiet_world, "viewer"), body)
        answers = [quiet_world.client.request(**request) for _ in range(2)]
        assert [a.status_code for a in answers] == [200, 200], answers[1].text

    def test_an_agent_may_resend_a_report_but_not_a_claim_or_an_upload(
        self, quiet_world: World, quiet_db: Database, quiet_settings: Settings
    ) -> None:
        name = f"replay-agent-{secrets.token_hex(4)}"
        pair = accounts.create_agent(quiet_db, quiet_settings, name=name, now=system_clock())
        agent = (pair.ak, pair.sk)
        pool = f"pool-{secrets.token_hex(6)}"
        job_spec = shell_job("ONLY", "echo hi", resource=json.dumps({"pool": pool}))
        quiet_world.run(quiet_world.create_pipeline(definition(stage("S", job_spec))))
        client = quiet_world.client

        claim_body = json.dumps({"agent": name, "pool": pool, "wait_seconds": 0}).encode()
        claim = signed("POST", "/agent/v1/claim", *agent, claim_body)
        claimed = client.request(**claim)
        assert claimed.status_code == 200, claimed.text
        assert_replayed(client.request(**claim))  # a copy would hand the job to its sender

        job = claimed.json()
        step_run_id = job["steps"][0]["step_run_id"]
        events = {
            "dispatch_id": job["dispatch_id"],
            "events": [{"seq": 1, "kind": "job_started"}],
        }
        report = signed(
            "POST",
            f"/agent/v1/jobs/{job['job_run_id']}/events",
            *agent,
            json.dumps(events).encode(),
        )
        answers = [client.request(**report) for _ in range(2)]  # an answer lost, the batch resent
        assert [a.status_code for a in answers] == [200, 200], answers[1].text
        assert answers[0].json() == answers[1].json()

        query = f"dispatch_id={job['dispatch_id']}&step_run_id={step_run_id}&name=out.txt"
        upload = signed(
            "PUT",
            f"/agent/v1/jobs/{job['job_run_id']}/artifacts?{query}",
            *agent,
            b"the real file",
            content_type="application/octet-stream",
        )
        assert client.request(**upload).status_code == 200
        # Its body is not signed: a copy carrying other bytes must not replace the file.
        assert_replayed(client.request(**{**upload, "content": b"something else"}))


class TestRecords:
    def test_records_outlive_the_clock_window_and_are_then_forgotten(
        self, quiet_world: World, quiet_db: Database, quiet_settings: Settings
    ) -> None:
        pipeline_id = quiet_world.create_pipeline()
        path = f"{quiet_world.base}/pipelines/{pipeline_id}/run"
        before = system_clock()
        request = signed("POST", path, *key_of(quiet_world), b"{}")
        assert quiet_world.client.request(**request).status_code == 200
        with quiet_db.reader() as session:
            newest = session.query(UsedSignature).order_by(UsedSignature.expires_at.desc()).first()
            assert newest is not None
        assert newest.expires_at >= before + SIGNATURE_MEMORY_MS
        assert SIGNATURE_MEMORY_MS == 2 * signing.MAX_CLOCK_SKEW_SECONDS * 1000

        authenticator = Authenticator(quiet_db, quiet_settings)
        authenticator.forget_used_signatures(now=before)
        with quiet_db.reader() as session:
            assert session.get(UsedSignature, newest.digest) is not None  # still in its window
        authenticator.forget_used_signatures(now=newest.expires_at + 1)
        with quiet_db.reader() as session:
            assert session.get(UsedSignature, newest.digest) is None


# -- which routes ---------------------------------------------------------------------------


def _depends_on(dependant: Dependant, call: Any, *, once: bool) -> bool:
    """Whether the route authenticates through `call` or a role check that does the same."""
    check = dependant.call
    direct = check is call or (check is not None and CARRIED_OUT_ONCE.get(check) is once)
    return direct or any(_depends_on(d, call, once=once) for d in dependant.dependencies)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    data_dir = tmp_path_factory.mktemp("replays")
    settings = Settings(
        database_url=f"sqlite:///{data_dir / 'unused.db'}",
        data_dir=data_dir,
        secret_key="unused",
        bench_routes=True,
    )
    return create_app(settings)


def test_exactly_the_state_changing_routes_refuse_a_replay(app: FastAPI) -> None:
    routes = [r for r in app.routes if isinstance(r, APIRoute)]
    once = {r.name for r in routes if _depends_on(r.dependant, authenticate_once, once=True)}
    repeatable = {r.name for r in routes if _depends_on(r.dependant, authenticate, once=False)}
    assert once == CHANGES
    assert repeatable.isdisjoint(once)
    assert {"report_events", "heartbeat", "batch_show_pipelines_latest_status"} <= repeatable
    # All but the token and health routes, the webhook (its secret is its credential), the
    # pipeline file's JSON Schema (public, for editors) and the metrics (loopback or their own
    # bearer token, api.routes.metrics).
    unauthenticated = {r.name for r in routes} - once - repeatable
    assert unauthenticated == {
        "keystone_create_token",
        "health",
        "receive_webhook",
        "pipeline_schema",
        "metrics",
    }


def test_every_such_route_declares_the_409(app: FastAPI) -> None:
    document = app.openapi()
    declared = {
        operation["operationId"]: operation["responses"].get("409", {}).get("description", "")
        for path_item in document["paths"].values()
        for operation in path_item.values()
    }
    for name in CHANGES:
        assert REPLAYED in declared[name], name
