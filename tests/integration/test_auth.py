"""Tokens, AK/SK signatures and project roles over the real app."""

import secrets
import threading
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from stageline.auth import accounts, signing
from stageline.auth.roles import Role
from stageline.engine.clock import system_clock
from stageline.settings import Settings
from stageline.store.database import Database
from stageline.store.queries import identity
from tests.factories import World, login


def _viewer_elsewhere(
    world: World, client: httpx.Client, db: Database, settings: Settings
) -> World:
    """Another project, in which `world`'s viewer is a viewer too."""
    other = World.create(client, db, settings)
    accounts.add_member(
        db, project_id=other.project_id, user_name=world.viewer.name, role=Role.VIEWER
    )
    return other


def token_body(name: str, password: str, **extra: Any) -> dict[str, Any]:
    user: dict[str, Any] = {"name": name, "password": password, **extra}
    return {"auth": {"identity": {"methods": ["password"], "password": {"user": user}}}}


class TestKeystoneTokens:
    def test_a_token_is_created_in_the_iam_shape(self, world: World) -> None:
        body = token_body(
            world.developer.name, world.developer.password, domain={"name": "stageline"}
        )
        body["auth"]["scope"] = {"project": {"id": world.project_id}}
        response = world.client.post("/v3/auth/tokens", json=body)
        assert response.status_code == 201
        token = response.headers["X-Subject-Token"]
        assert len(token) >= 40
        payload = response.json()["token"]
        assert payload["methods"] == ["password"]
        assert payload["user"]["id"] == world.developer.user_id
        assert payload["user"]["name"] == world.developer.name
        assert payload["user"]["domain"]["name"] == "stageline"
        assert payload["project"]["id"] == world.project_id
        assert payload["roles"] == [{"id": "developer", "name": "developer"}]
        assert payload["expires_at"].endswith("Z")
        assert payload["issued_at"][10] == "T"

    def test_wrong_password_and_unknown_user_get_the_same_401(self, world: World) -> None:
        wrong = world.client.post(
            "/v3/auth/tokens", json=token_body(world.viewer.name, "nope-nope")
        )
        unknown = world.client.post(
            "/v3/auth/tokens", json=token_body("nobody-" + secrets.token_hex(3), "x")
        )
        assert wrong.status_code == unknown.status_code == 401
        assert wrong.json()["error_msg"] == unknown.json()["error_msg"]
        assert "X-Subject-Token" not in wrong.headers

    def test_another_account_is_refused(self, world: World) -> None:
        body = token_body(
            world.viewer.name, world.viewer.password, domain={"name": "other-account"}
        )
        assert world.client.post("/v3/auth/tokens", json=body).status_code == 401

    def test_a_malformed_request_is_a_400_naming_the_field(self, world: World) -> None:
        response = world.client.post("/v3/auth/tokens", json={"auth": {"identity": {}}})
        assert response.status_code == 400
        assert "auth.identity" in response.json()["error_msg"]

    def test_tokens_are_stored_only_as_digests(self, world: World, db: Database) -> None:
        token = login(world.client, world.viewer.name, world.viewer.password)
        with db.reader() as session:
            from stageline.store.tables import AuthToken

            digests = [row.digest for row in session.query(AuthToken).all()]
        assert token not in digests
        assert all(len(d) == 64 for d in digests)

    def test_an_expired_token_is_refused(self, world: World, db: Database) -> None:
        from stageline.auth.secrets import mint_token, token_digest

        token = mint_token()
        with db.writer() as session:
            identity.insert_token(
                session,
                digest=token_digest(token),
                user_id=world.viewer.user_id,
                project_id=None,
                issued_at=1,
                expires_at=system_clock() - 1,
            )
        response = world.client.post(
            f"{world.base}/pipelines/status", json=[], headers={"X-Auth-Token": token}
        )
        assert response.status_code == 401
        assert "token expires" in response.json()["error_msg"]

    def test_a_token_scoped_to_one_project_does_not_open_another(
        self, world: World, client: httpx.Client, db: Database, settings: Settings
    ) -> None:
        other = _viewer_elsewhere(world, client, db, settings)
        scoped = login(
            world.client, world.viewer.name, world.viewer.password, project={"id": world.project_id}
        )
        ok = client.post(
            f"{world.base}/pipelines/status", json=[], headers={"X-Auth-Token": scoped}
        )
        elsewhere = client.post(
            f"{other.base}/pipelines/status", json=[], headers={"X-Auth-Token": scoped}
        )
        unscoped = client.post(
            f"{other.base}/pipelines/status", json=[], headers=world.viewer.headers
        )
        assert (ok.status_code, elsewhere.status_code, unscoped.status_code) == (200, 403, 200)


class TestAuthProjects:
    """GET /v3/auth/projects: where a login that names no project (or names it) finds it."""

    def test_a_user_lists_the_projects_it_is_a_member_of_by_name(
        self, world: World, client: httpx.Client, db: Database, settings: Settings
    ) -> None:
        other = _viewer_elsewhere(world, client, db, settings)
        response = world.client.get("/v3/auth/projects", headers=world.viewer.headers)
        assert response.status_code == 200, response.text
        body = response.json()
        projects = {p["id"]: p["name"] for p in body["projects"]}
        assert set(projects) == {world.project_id, other.project_id}
        assert projects[world.project_id].startswith("project-")
        assert [p["name"] for p in body["projects"]] == sorted(projects.values())
        assert all(p["enabled"] and not p["is_domain"] for p in body["projects"])
        assert body["links"]["self"].endswith("/v3/auth/projects")

        scoped = login(
            world.client, world.viewer.name, world.viewer.password, project={"id": other.project_id}
        )
        only = world.client.get("/v3/auth/projects", headers={"X-Auth-Token": scoped})
        assert [p["id"] for p in only.json()["projects"]] == [other.project_id]

    def test_a_non_member_lists_none_and_no_credentials_are_a_401(self, world: World) -> None:
        listed = world.client.get("/v3/auth/projects", headers=world.outsider.headers)
        assert (listed.status_code, listed.json()["projects"]) == (200, [])
        assert world.client.get("/v3/auth/projects").status_code == 401

    def test_an_access_key_lists_its_users_projects_and_an_agent_is_refused(
        self, world: World, db: Database, settings: Settings
    ) -> None:
        pair = accounts.create_access_key(
            db, settings, user_name=world.developer.name, now=system_clock()
        )
        response = signed(world.client, "GET", "/v3/auth/projects", pair.ak, pair.sk)
        assert [p["id"] for p in response.json()["projects"]] == [world.project_id]
        agent = accounts.create_agent(
            db, settings, name=f"agent-{secrets.token_hex(4)}", now=system_clock()
        )
        refused = signed(world.client, "GET", "/v3/auth/projects", agent.ak, agent.sk)
        assert refused.status_code == 403


def login_from(client: httpx.Client, source: str, name: str, password: str) -> httpx.Response:
    """A password login as sent from client address `source` (see `signed`)."""
    return client.post(
        "/v3/auth/tokens",
        json=token_body(name, password),
        headers={"X-Forwarded-For": source},
    )


class TestLoginThrottling:
    def test_a_client_that_keeps_failing_waits_and_the_user_still_logs_in_elsewhere(
        self, world: World, settings: Settings
    ) -> None:
        user, stranger, owner = world.viewer, random_address(), random_address()
        limit = settings.login_failure_limit
        assert limit <= 20
        failed = [
            login_from(world.client, stranger, user.name, "wrong-password").status_code
            for _ in range(limit)
        ]
        assert failed == [401] * limit
        refused = login_from(world.client, stranger, user.name, "wrong-password")
        assert refused.status_code == 429, refused.text
        assert refused.json()["error_code"] == "APIGW.0308"
        assert refused.json()["request_id"] == refused.headers["X-Request-Id"]
        assert int(refused.headers["Retry-After"]) >= 1
        assert "X-Subject-Token" not in refused.headers
        # The stranger waits even with the right password; the user elsewhere does not.
        assert login_from(world.client, stranger, user.name, user.password).status_code == 429
        assert login_from(world.client, owner, user.name, user.password).status_code == 201

    def test_strangers_at_many_addresses_cannot_lock_the_user_out(
        self, world: World, settings: Settings
    ) -> None:
        """Each stranger fails once, never reaching the limit of an address; once the user has
        failed `limit` times in all, every address that fails for it waits at once."""
        user, owner = world.developer, random_address()
        for _ in range(settings.login_failure_limit):
            answer = login_from(world.client, random_address(), user.name, "guess")
            assert answer.status_code == 401
        another = random_address()
        assert login_from(world.client, another, user.name, "guess").status_code == 401
        assert login_from(world.client, another, user.name, "guess").status_code == 429
        assert login_from(world.client, owner, user.name, user.password).status_code == 201

    def test_unknown_users_are_throttled_like_wrong_passwords(
        self, world: World, settings: Settings
    ) -> None:
        """Or the 429 would tell which names exist."""
        stranger = random_address()
        names = [f"nobody-{secrets.token_hex(4)}" for _ in range(settings.login_failure_limit)]
        assert {login_from(world.client, stranger, n, "x").status_code for n in names} == {401}
        assert login_from(world.client, stranger, world.admin.name, "x").status_code == 429


class TestRoles:
    def test_missing_credentials_are_a_401(self, world: World) -> None:
        response = world.client.post(f"{world.base}/pipelines/status", json=[])
        assert response.status_code == 401
        assert response.json()["error_code"] == "APIGW.0301"
        assert response.json()["request_id"] == response.headers["X-Request-Id"]

    def test_a_bad_token_is_a_401(self, world: World) -> None:
        response = world.client.post(
            f"{world.base}/pipelines/status", json=[], headers={"X-Auth-Token": "garbage"}
        )
        assert response.status_code == 401

    def test_an_unknown_project_is_a_404(self, world: World) -> None:
        response = world.client.post(
            f"/v5/{secrets.token_hex(16)}/api/pipelines/status",
            json=[],
            headers=world.viewer.headers,
        )
        assert response.status_code == 404
        assert response.json()["error_code"] == "DEVPIPE.00011412"

    def test_a_non_member_is_a_403(self, world: World) -> None:
        response = world.client.post(
            f"{world.base}/pipelines/status", json=[], headers=world.outsider.headers
        )
        assert response.status_code == 403
        assert response.json()["error_code"] == "DEVCP.00014031"

    @pytest.mark.parametrize(
        ("role", "create", "run"),
        [("viewer", 403, 403), ("developer", 403, 200), ("admin", 200, 200)],
    )
    def test_each_role_may_do_what_it_says(
        self, world: World, role: str, create: int, run: int
    ) -> None:
        user = getattr(world, role)
        body = {
            "name": f"r-{secrets.token_hex(3)}",
            "is_publish": False,
            "definition": '{"stages":[]}',
        }
        created = world.client.post(f"{world.base}/pipelines", json=body, headers=user.headers)
        assert created.status_code == create
        pipeline_id = world.create_pipeline()
        started = world.client.post(
            f"{world.base}/pipelines/{pipeline_id}/run", headers=user.headers
        )
        assert started.status_code == run
        listed = world.client.post(f"{world.base}/pipelines/list", json={}, headers=user.headers)
        assert listed.status_code == 200


def signed(
    client: httpx.Client,
    method: str,
    path: str,
    ak: str,
    sk: str,
    body: bytes = b"",
    *,
    source: str | None = None,
    **kw: Any,
) -> Any:
    """A request signed as the SDK signs it; `source` is the client address the server sees
    (forwarded by loopback, which the test server trusts as a proxy, as uvicorn does by default)."""
    url = f"http://testserver{path}"
    headers = signing.sign(
        method,
        url,
        {"Content-Type": "application/json;charset=utf-8", "X-Project-Id": "iam-project"},
        body,
        ak,
        sk,
        **kw,
    )
    if source is not None:
        headers["X-Forwarded-For"] = source
    return client.request(method, urlsplit(url).path, content=body, headers=headers)


def random_address() -> str:
    """An address of TEST-NET-3 (RFC 5737) of its own, so that no two tests share a client."""
    return f"203.0.{secrets.randbelow(256)}.{secrets.randbelow(254) + 1}"


class TestCaching:
    def test_a_user_added_to_a_project_is_let_in_at_once(self, world: World) -> None:
        """Refusals are never cached: the 403 before the membership does not linger."""
        from stageline.auth.roles import Role

        url = f"{world.base}/pipelines/status"
        assert world.client.post(url, json=[], headers=world.outsider.headers).status_code == 403
        accounts.add_member(
            world.db, project_id=world.project_id, user_name=world.outsider.name, role=Role.VIEWER
        )
        assert world.client.post(url, json=[], headers=world.outsider.headers).status_code == 200


class TestAccessKeys:
    def test_a_signed_request_is_accepted_whatever_its_x_project_id(
        self, world: World, db: Database, settings: Settings
    ) -> None:
        pair = accounts.create_access_key(
            db, settings, user_name=world.viewer.name, now=system_clock()
        )
        response = signed(
            world.client, "POST", f"{world.base}/pipelines/status", pair.ak, pair.sk, b"[]"
        )
        assert response.status_code == 200, response.text
        assert response.json() == []

    def test_a_tampered_body_is_refused(
        self, world: World, db: Database, settings: Settings
    ) -> None:
        pair = accounts.create_access_key(
            db, settings, user_name=world.viewer.name, now=system_clock()
        )
        headers = signing.sign(
            "POST",
            f"http://testserver{world.base}/pipelines/status",
            {"Content-Type": "application/json"},
            b"[]",
            pair.ak,
            pair.sk,
        )
        response = world.client.post(
            f"{world.base}/pipelines/status", content=b"[ ]", headers=headers
        )
        assert response.status_code == 401
        assert response.json()["error_msg"].endswith("verify aksk signature fail")

    def test_a_stale_date_is_apigw_0303(
        self, world: World, db: Database, settings: Settings
    ) -> None:
        from datetime import UTC, datetime, timedelta

        pair = accounts.create_access_key(
            db, settings, user_name=world.viewer.name, now=system_clock()
        )
        stale = datetime.now(tz=UTC) - timedelta(minutes=16)
        response = signed(
            world.client,
            "POST",
            f"{world.base}/pipelines/status",
            pair.ak,
            pair.sk,
            b"[]",
            now=stale,
        )
        assert response.status_code == 401
        assert response.json()["error_code"] == "APIGW.0303"

    def test_failed_signatures_make_only_their_address_wait_for_that_key(
        self, world: World, db: Database, settings: Settings
    ) -> None:
        """Only the AK is needed to forge a request: the forger's address waits (429, growing
        Retry-After), the key's owner elsewhere is never refused, and neither is the forger with
        another key."""
        pair = accounts.create_access_key(
            db, settings, user_name=world.viewer.name, now=system_clock()
        )
        other = accounts.create_access_key(
            db, settings, user_name=world.viewer.name, now=system_clock()
        )
        path = f"{world.base}/pipelines/status"
        stranger, owner = random_address(), random_address()

        def forge() -> httpx.Response:
            response: httpx.Response = signed(
                world.client, "POST", path, pair.ak, "made-up", b"[]", source=stranger
            )
            return response

        first = [forge().status_code for _ in range(settings.signature_failure_limit)]
        assert first == [401] * settings.signature_failure_limit
        # Each failure past the limit doubles the wait; a client that waits less is refused.
        refused = next(r for r in (forge() for _ in range(12)) if r.status_code == 429)
        assert refused.json()["error_code"] == "APIGW.0308"
        assert refused.json()["request_id"] == refused.headers["X-Request-Id"]
        assert int(refused.headers["Retry-After"]) >= 1

        mine = signed(world.client, "POST", path, pair.ak, pair.sk, b"[]", source=owner)
        assert mine.status_code == 200, mine.text
        elsewhere = signed(world.client, "POST", path, other.ak, other.sk, b"[]", source=stranger)
        assert elsewhere.status_code == 200, elsewhere.text
        assert forge().status_code == 429

    def test_forged_requests_beside_the_owners_never_refuse_the_owner(
        self, world: World, db: Database, settings: Settings
    ) -> None:
        pair = accounts.create_access_key(
            db, settings, user_name=world.viewer.name, now=system_clock()
        )
        path = f"{world.base}/pipelines/status"
        stranger, owner = random_address(), random_address()
        forged: list[int] = []
        mine: list[int] = []

        def forge() -> None:
            with httpx.Client(base_url=str(world.client.base_url), timeout=30) as http:
                for _ in range(40):
                    answer = signed(http, "POST", path, pair.ak, "made-up", b"[]", source=stranger)
                    forged.append(answer.status_code)

        forger = threading.Thread(target=forge)
        forger.start()
        try:
            while forger.is_alive() or not mine:
                answer = signed(world.client, "POST", path, pair.ak, pair.sk, b"[]", source=owner)
                mine.append(answer.status_code)
        finally:
            forger.join()
        assert set(mine) == {200}
        limit = settings.signature_failure_limit
        assert forged[:limit] == [401] * limit
        assert 429 in forged
        assert set(forged) == {401, 429}

    def test_a_build_agent_keeps_working_while_its_ak_is_forged(
        self, world: World, db: Database, settings: Settings
    ) -> None:
        """Forged heartbeats used to lock an agent's key, and its jobs went REDISPATCH."""
        key = accounts.create_agent(
            db, settings, name=f"agent-{secrets.token_hex(4)}", now=system_clock()
        )
        stranger, agent_host = random_address(), random_address()
        beat = b'{"jobs": {}}'
        answers: list[tuple[int, int]] = []
        for _ in range(settings.signature_failure_limit + 5):
            forged = signed(
                world.client, "POST", "/agent/v1/heartbeat", key.ak, "x", beat, source=stranger
            )
            real = signed(
                world.client, "POST", "/agent/v1/heartbeat", key.ak, key.sk, beat, source=agent_host
            )
            answers.append((forged.status_code, real.status_code))
        assert {real for _, real in answers} == {200}
        assert {forged for forged, _ in answers} == {401, 429}

    def test_a_good_signature_resets_the_failure_count(
        self, world: World, db: Database, settings: Settings
    ) -> None:
        pair = accounts.create_access_key(
            db, settings, user_name=world.viewer.name, now=system_clock()
        )
        path = f"{world.base}/pipelines/status"
        for _ in range(4):
            signed(world.client, "POST", path, pair.ak, "wrong-secret", b"[]")
        assert signed(world.client, "POST", path, pair.ak, pair.sk, b"[]").status_code == 200
        for _ in range(4):
            signed(world.client, "POST", path, pair.ak, "wrong-secret", b"[]")
        assert signed(world.client, "POST", path, pair.ak, pair.sk, b"[]").status_code == 200

    def test_an_unknown_ak_gets_the_answer_of_a_wrong_signature(
        self, world: World, db: Database, settings: Settings
    ) -> None:
        pair = accounts.create_access_key(
            db, settings, user_name=world.viewer.name, now=system_clock()
        )
        path = f"{world.base}/pipelines/status"
        unknown = signed(world.client, "POST", path, "NOSUCHKEY" + pair.ak[9:], "x", b"[]")
        wrong = signed(world.client, "POST", path, pair.ak, "wrong-secret", b"[]")
        assert unknown.status_code == wrong.status_code == 401
        unknown_body, wrong_body = unknown.json(), wrong.json()
        assert unknown_body.pop("request_id") != wrong_body.pop("request_id")
        assert unknown_body == wrong_body
        assert wrong_body["error_code"] == "APIGW.0301"
