"""Webhook deliveries end to end: the fixtures sent to `POST /webhooks/{hook_id}` start runs
with the build params their event names, once per delivery, or nothing and say why (on the
quiet server: runs stay queued, which is all these tests look at).

The fixtures' pipelines have a code source whose repository cannot be read (a path where there
is none), so a run's build params are exactly what its event names: nothing is resolved."""

import json
import threading
import uuid
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from fastapi.testclient import TestClient

from stageline.auth.vault import Vault
from stageline.engine.clock import system_clock
from stageline.engine.journal import DAY_MS
from stageline.engine.runs import RunEngine
from stageline.engine.sources import SOURCE_BUILD_KEYS
from stageline.engine.webhooks import Webhooks, prune_deliveries
from stageline.settings import Settings
from stageline.store.database import Database
from stageline.store.queries import hooks as hook_queries
from tests.factories import World
from tests.gitrepos import GitRepo
from tests.hooks import Hook, code_source, hooked, pipeline_detail, run_count, trigger, update
from tests.openapi_check import check_answer
from tests.webhooks import IGNORED, STARTED, Expected, body_of, headers_of, sign
from tests.wire import BUILD_PARAM_KEYS


@pytest.fixture(scope="module")
def world(quiet_client: TestClient, quiet_db: Database, quiet_settings: Settings) -> World:
    """One project for the module: the fixtures' runs share one pipeline per host."""
    return World.create(quiet_client, quiet_db, quiet_settings)


@pytest.fixture(scope="module")
def hooks(world: World, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Hook]:
    absent = str(tmp_path_factory.mktemp("absent") / "none.git")
    return {
        host: hooked(world, f"https://{host}.example.test/r.git", sources=[code_source(absent)])
        for host in ("github", "gitlab", "gitea")
    }


@pytest.fixture(scope="module")
def document(quiet_client: TestClient) -> dict[str, Any]:
    served: dict[str, Any] = quiet_client.get("/openapi.json").json()
    return served


def answered(document: dict[str, Any], response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["X-Request-Id"]
    check_answer(document, "POST", "/webhooks/{hook_id}", response)
    body: dict[str, Any] = response.json()
    return body


# -- deliveries ------------------------------------------------------------------------------


def host_of_name(name: str) -> str:
    return name.split("/")[0]


def host_of(expected: Expected) -> str:
    return host_of_name(expected.name)


ZERO = "0" * 40


class TestDeliveries:
    @pytest.mark.parametrize("expected", STARTED, ids=lambda e: e.name)
    def test_each_fixture_starts_a_run_with_its_build_params(
        self, world: World, hooks: dict[str, Hook], document: dict[str, Any], expected: Expected
    ) -> None:
        """The README's row in batch status (every build param) and in run detail (the trigger
        type, and what the run's code source builds: `sources[0].params.build_params`)."""
        hook = hooks[host_of(expected)]
        answer = answered(document, hook.send(expected.name), 200)
        assert answer["result"] == "started", answer
        run_id = answer["pipeline_run_id"]
        detail = world.detail(hook.pipeline_id, run_id)
        (latest,) = world.status(hook.pipeline_id)
        assert latest["pipeline_run_id"] == run_id
        assert detail["trigger_type"] == latest["trigger_type"] == expected.event
        assert detail["executor_name"] == latest["executor_name"]
        params = latest["build_params"]
        assert set(params) == BUILD_PARAM_KEYS
        assert params["event_type"] == expected.event
        assert params["build_type"] == ("tag" if expected.tag else "branch")
        assert params["commit_id"] == expected.commit
        message = params["message"]
        assert (message.splitlines()[0] if message else None) == expected.message
        assert params["tag"] == expected.tag
        assert params["source_branch"] == expected.source
        if expected.tag is None or expected.target is not None:
            assert params["target_branch"] == expected.target
        assert params["merge_id"] == expected.merge_id
        assert params["action"] == expected.action
        assert params["codehub_id"] == expected.repo_id
        assert params["git_url"] == expected.clone_url
        same = expected.source_same
        assert params["source_codehub_id"] == (expected.repo_id if same else None)
        assert params["source_codehub_http_url"] == (expected.clone_url if same else None)
        assert bool(params["source_codehub_url"]) is same  # the SSH clone URL
        assert latest["executor_id"] == ""
        assert latest["executor_name"]
        (source,) = detail["sources"]
        assert source["params"]["build_params"] == {key: params[key] for key in SOURCE_BUILD_KEYS}

    @pytest.mark.parametrize("name", IGNORED)
    def test_ignored_fixtures_start_nothing(
        self, world: World, hooks: dict[str, Hook], document: dict[str, Any], name: str
    ) -> None:
        hook = hooks[name.split("/")[0]]
        before = run_count(world, hook.pipeline_id)
        answer = answered(document, hook.send(name), 200)
        assert answer["result"] == "ignored"
        assert "without new commits" in answer["reason"]
        assert run_count(world, hook.pipeline_id) == before

    @pytest.mark.parametrize(
        ("name", "changes", "reason"),
        [
            ("gitlab/push", {"after": ZERO, "checkout_sha": None}, "branch 'master' was deleted"),
            ("github/push", {"after": ZERO, "deleted": True}, "'refs/heads/main' was deleted"),
            ("gitea/push", {"after": ZERO}, "'refs/heads/main' was deleted"),
            ("github/pull_request_closed_merged", {"pull_request": {"merged": False}},
             "pull request action 'closed' without merging starts no run"),
            ("gitea/pull_request_opened", {"action": "label_updated"},
             "pull request action 'label_updated' starts no run"),
            ("github/pull_request_opened", {"action": "labeled"},
             "pull request action 'labeled' starts no run"),
            ("github/push", {}, "'ping' events start no runs"),
        ],
    )  # fmt: skip
    def test_events_that_start_nothing_are_answered_200_with_the_reason(
        self,
        world: World,
        hooks: dict[str, Hook],
        document: dict[str, Any],
        name: str,
        changes: dict[str, Any],
        reason: str,
    ) -> None:
        """Deleted branches, unmerged closes, label edits, events no trigger takes: a 2xx with
        a short JSON reason (hosts disable hooks that keep failing), and no run."""
        hook = hooks[host_of_name(name)]
        body = json.loads(body_of(name))
        for key, value in changes.items():
            body[key] = {**body[key], **value} if isinstance(value, dict) else value
        extra = {"X-GitHub-Event": "ping"} if not changes else {}
        before = run_count(world, hook.pipeline_id)
        answer = answered(document, hook.send(name, body=json.dumps(body).encode(), **extra), 200)
        assert answer == {"result": "ignored", "reason": reason}
        assert run_count(world, hook.pipeline_id) == before

    def test_a_wrong_or_missing_secret_is_a_401_and_starts_nothing(
        self, world: World, hooks: dict[str, Hook], document: dict[str, Any]
    ) -> None:
        for host, name in (("gitlab", "gitlab/push"), ("github", "github/push"),
                           ("gitea", "gitea/push")):  # fmt: skip
            hook = hooks[host]
            before = run_count(world, hook.pipeline_id)
            body = answered(document, hook.send(name, secret="wrong-secret"), 401)
            assert set(body) >= {"error_code", "error_msg"}
            raw = body_of(name)
            response = world.client.post(hook.url, content=raw, headers={"X-GitHub-Event": "push"})
            assert answered(document, response, 401)["error_msg"].startswith("missing")
            assert run_count(world, hook.pipeline_id) == before

    def test_a_forgejo_delivery_with_its_own_headers_only(
        self, world: World, hooks: dict[str, Hook], document: dict[str, Any]
    ) -> None:
        """Forgejo's X-Forgejo-Signature (bare hex HMAC-SHA256 of the raw body) authenticates,
        and X-Forgejo-Delivery deduplicates, without any of Gitea's copies."""
        hook = hooks["gitea"]
        body = body_of("gitea/push")
        headers = {
            "Content-Type": "application/json",
            "X-Forgejo-Event": "push",
            "X-Forgejo-Event-Type": "push",
            "X-Forgejo-Delivery": str(uuid.uuid4()),
            "X-Forgejo-Signature": sign(hook.token, body),
        }
        before = run_count(world, hook.pipeline_id)
        forged = {**headers, "X-Forgejo-Signature": sign("not-the-secret", body)}
        assert answered(document, world.client.post(hook.url, content=body, headers=forged), 401)
        assert run_count(world, hook.pipeline_id) == before
        first = answered(document, world.client.post(hook.url, content=body, headers=headers), 200)
        assert first["result"] == "started", first
        (latest,) = world.status(hook.pipeline_id)
        assert (latest["trigger_type"], latest["build_params"]["commit_id"]) == (
            "Push",
            "29be01c073851cf0db0c6a466e396b725a670453",
        )
        again = answered(document, world.client.post(hook.url, content=body, headers=headers), 200)
        assert again == {"result": "duplicate", "pipeline_run_id": first["pipeline_run_id"]}
        assert run_count(world, hook.pipeline_id) == before + 1

    def test_a_redelivery_starts_one_run(
        self, world: World, hooks: dict[str, Hook], document: dict[str, Any]
    ) -> None:
        hook = hooks["github"]
        delivery = str(uuid.uuid4())
        first = answered(document, hook.send("github/push", delivery=delivery), 200)
        count = run_count(world, hook.pipeline_id)
        again = answered(document, hook.send("github/push", delivery=delivery), 200)
        assert first["result"] == "started"
        assert again == {"result": "duplicate", "pipeline_run_id": first["pipeline_run_id"]}
        assert run_count(world, hook.pipeline_id) == count
        # The same delivery ID on another hook is another delivery.
        other = answered(document, hooks["gitea"].send("gitea/push", delivery=delivery), 200)
        assert other["result"] == "started"

    def test_a_disabled_event_is_ignored(self, world: World, document: dict[str, Any]) -> None:
        hook = hooked(world, "https://git.example.test/g.git", [{"type": "push", "enable": False}])
        answer = answered(document, hook.send("gitlab/push"), 200)
        assert answer == {"result": "ignored", "reason": "the trigger does not enable push events"}
        answer = answered(document, hook.send("gitlab/issue"), 200)
        assert answer["reason"] == "the trigger does not enable issue events"
        assert run_count(world, hook.pipeline_id) == 0

    def test_a_branch_filter_glob(self, world: World, document: dict[str, Any]) -> None:
        events = [{"type": "push", "enable": True, "branches": ["main", "release/*"]}]
        hook = hooked(world, "https://git.example.test/h.git", events)
        answer = answered(document, hook.send("gitlab/push"), 200)  # branch master
        assert answer["result"] == "ignored"
        assert "branch 'master' matches none" in answer["reason"]
        document_body = json.loads(body_of("gitlab/push"))
        document_body["ref"] = "refs/heads/release/2.0"
        answer = answered(
            document, hook.send("gitlab/push", body=json.dumps(document_body).encode()), 200
        )
        assert answer["result"] == "started"
        (latest,) = world.status(hook.pipeline_id)
        assert latest["pipeline_run_id"] == answer["pipeline_run_id"]
        assert latest["build_params"]["target_branch"] == "release/2.0"

    def test_a_branch_filter_on_merge_requests_takes_their_target_branch(
        self, world: World, document: dict[str, Any]
    ) -> None:
        events = [{"type": "merge_request", "enable": True, "branches": ["ma*"]}]
        hook = hooked(world, "https://git.example.test/mr.git", events)
        # real6543-main-patch-42541 → main: the target matches
        answer = answered(document, hook.send("gitlab/merge_request_open"), 200)
        assert answer["result"] == "started"
        (latest,) = world.status(hook.pipeline_id)
        assert (latest["trigger_type"], latest["build_params"]["target_branch"]) == ("MR", "main")
        # feature → master matches too; a target of develop does not
        assert answered(document, hook.send("gitea/pull_request_opened"), 200)["result"] == (
            "started"
        )
        pull = json.loads(body_of("github/pull_request_opened"))
        pull["pull_request"]["base"]["ref"] = "develop"
        pull["pull_request"]["head"]["ref"] = "main"
        sent = hook.send("github/pull_request_opened", body=json.dumps(pull).encode())
        answer = answered(document, sent, 200)
        assert answer == {
            "result": "ignored",
            "reason": "target branch 'develop' matches none of the trigger's branches",
        }
        assert run_count(world, hook.pipeline_id) == 2

    def test_a_github_form_body(
        self, world: World, hooks: dict[str, Hook], document: dict[str, Any]
    ) -> None:
        hook = hooks["github"]
        form = urlencode({"payload": body_of("github/push").decode()}).encode()
        response = hook.send(
            "github/push", body=form, **{"Content-Type": "application/x-www-form-urlencoded"}
        )
        answer = answered(document, response, 200)
        assert answer["result"] == "started"
        (latest,) = world.status(hook.pipeline_id)
        assert latest["pipeline_run_id"] == answer["pipeline_run_id"]
        assert latest["build_params"]["commit_id"] == "366701fde727cb7a9e7f21eb88264f59f6f9b89c"

    @pytest.mark.parametrize("event_header", [None, "Tag Push Hook"])
    def test_a_codearts_repo_delivery(
        self,
        world: World,
        hooks: dict[str, Hook],
        document: dict[str, Any],
        event_header: str | None,
    ) -> None:
        """CodeArts Repo sends GitLab's bodies with the secret in clear in X-Repo-Token (or
        X-Auth-Token, X-Gitlab-Token: the hook's choice), maybe with GitLab's event header."""
        hook = hooks["gitlab"]
        body = body_of("gitlab/tag_push")
        headers = {"Content-Type": "application/json"}
        if event_header is not None:
            headers["X-Gitlab-Event"] = event_header
        before = run_count(world, hook.pipeline_id)
        missing = world.client.post(hook.url, content=body, headers=headers)
        assert answered(document, missing, 401)["error_msg"].startswith("missing")
        for header in ("X-Repo-Token", "X-Auth-Token"):
            wrong = world.client.post(hook.url, content=body, headers={**headers, header: "no"})
            assert answered(document, wrong, 401)["error_code"]
        assert run_count(world, hook.pipeline_id) == before
        for header in ("X-Repo-Token", "X-Auth-Token", "X-Gitlab-Token"):
            signed = {**headers, header: hook.token}
            sent = world.client.post(hook.url, content=body, headers=signed)
            answer = answered(document, sent, 200)
            assert answer["result"] == "started", answer
            (latest,) = world.status(hook.pipeline_id)
            assert latest["pipeline_run_id"] == answer["pipeline_run_id"]
            assert latest["trigger_type"] == "CreateTag"
            params = latest["build_params"]
            assert (params["tag"], params["commit_id"], params["codehub_id"]) == (
                "v1.0.0",
                "2adc9465c4edfc33834e173fe89436a7cb899a1d",
                "4861503",
            )

    def test_an_issue_or_a_comment_builds_the_default_branch_and_keeps_its_text(
        self, world: World, document: dict[str, Any], git_repo: GitRepo
    ) -> None:
        """Issues and comments name no commit: the run builds the head of the repository's
        default branch, and its message stays the issue's title or the comment."""
        head = git_repo.head("main")
        hook = hooked(
            world,
            "https://git.example.test/issues.git",
            sources=[code_source(git_repo.path, default_branch="main")],
        )
        cases = [
            ("gitlab/issue", "project", "Issue", "found a bug"),
            ("github/issue_comment_created", "repository", "Note",
             "You are totally right! I'll get this fixed right away."),
            ("gitea/issues_opened", "repository", "Issue", "Problem"),
        ]  # fmt: skip
        for name, repository, event, text in cases:
            edited = json.loads(body_of(name))
            edited[repository]["default_branch"] = "main"
            answer = answered(document, hook.send(name, body=json.dumps(edited).encode()), 200)
            assert answer["result"] == "started", answer
            (latest,) = world.status(hook.pipeline_id)
            assert latest["pipeline_run_id"] == answer["pipeline_run_id"]
            params = latest["build_params"]
            assert (latest["trigger_type"], params["event_type"]) == (event, event)
            assert (params["commit_id"], params["target_branch"]) == (head, "main")
            assert params["message"] == text
            detail = world.detail(hook.pipeline_id, answer["pipeline_run_id"])
            chosen = detail["sources"][0]["params"]["build_params"]
            assert (chosen["commit_id"], chosen["message"]) == (head, text)

    def test_client_mistakes_are_4xx_with_an_error_body(
        self, world: World, hooks: dict[str, Hook], document: dict[str, Any]
    ) -> None:
        hook = hooks["gitlab"]
        unknown = world.client.post("/webhooks/" + "0" * 32, content=b"{}")
        assert answered(document, unknown, 404)["error_code"]
        bad_json = hook.send("gitlab/push", body=b"{not json")
        assert answered(document, bad_json, 400)["error_msg"] == "the body is not valid JSON"
        no_host = world.client.post(hook.url, content=b"{}", headers={"X-Other": "1"})
        assert "cannot tell which host" in answered(document, no_host, 401)["error_msg"]
        odd = hook.send("gitlab/push", body=b'{"object_kind": "push", "ref": [], "project": 1}')
        assert answered(document, odd, 200)["result"] == "ignored"

    def test_a_removed_trigger_or_deleted_pipeline_has_no_hook(
        self, world: World, document: dict[str, Any]
    ) -> None:
        hook = hooked(world, "https://git.example.test/d.git")
        assert update(world, hook.pipeline_id, triggers=[]).status_code == 200
        assert answered(document, hook.send("gitlab/push"), 404)["error_code"]
        hook = hooked(world, "https://git.example.test/f.git")
        response = world.client.delete(
            f"{world.base}/pipelines/{hook.pipeline_id}", headers=world.admin.headers
        )
        assert response.status_code == 200
        assert answered(document, hook.send("gitlab/push"), 404)["error_code"]

    def test_the_concurrency_limit_answers_ignored_with_the_run(
        self, world: World, document: dict[str, Any]
    ) -> None:
        pipeline_id = world.create_pipeline(
            triggers=[trigger("https://git.example.test/i.git")],
            concurrency_control={"concurrency_number": 1, "exceed_action": "ABORT", "enable": True},
        )
        (shown,) = pipeline_detail(world, pipeline_id)["triggers"]
        hook = Hook(world, pipeline_id, shown["hook_id"], shown["security_token"])
        assert answered(document, hook.send("gitlab/push"), 200)["result"] == "started"
        answer = answered(document, hook.send("gitlab/push"), 200)
        assert answer["result"] == "ignored"
        assert answer["pipeline_run_id"]
        assert "concurrency limit" in answer["reason"]


# -- deduplication under concurrency, and pruning ---------------------------------------------


@pytest.fixture
def webhooks(quiet_db: Database, quiet_settings: Settings) -> Webhooks:
    vault = Vault(quiet_settings.master_secret())
    return Webhooks(RunEngine(quiet_db, vault=vault), vault)


class TestDeduplication:
    def test_the_same_delivery_at_once_starts_one_run(
        self, world: World, webhooks: Webhooks
    ) -> None:
        hook = hooked(world, "https://git.example.test/j.git")
        body = body_of("github/push")
        headers = headers_of("github/push", hook.token)
        headers["X-GitHub-Delivery"] = str(uuid.uuid4())
        results: list[str] = []
        barrier = threading.Barrier(4)

        def deliver() -> None:
            barrier.wait()
            answer = webhooks.deliver(hook_id=hook.hook_id, headers=headers, body=body)
            results.append(answer.result)

        threads = [threading.Thread(target=deliver) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert sorted(results) == ["duplicate", "duplicate", "duplicate", "started"]
        assert run_count(world, hook.pipeline_id) == 1

    def test_old_deliveries_are_forgotten(self, world: World, quiet_db: Database) -> None:
        hook = hooked(world, "https://git.example.test/k.git")
        assert hook.send("gitlab/push", delivery="old-delivery").json()["result"] == "started"
        with quiet_db.reader() as session:
            run_id = hook_queries.read_delivery_run(
                session, hook_id=hook.hook_id, delivery_id="old-delivery"
            )
        assert run_id is not None
        eight_days_later = system_clock() + 8 * DAY_MS
        assert prune_deliveries(quiet_db, now=eight_days_later) >= 1
        again = hook.send("gitlab/push", delivery="old-delivery").json()
        assert again["result"] == "started"
        assert again["pipeline_run_id"] != run_id
