"""The dashboard over plain HTTP: the edit page's validation, the Run form's endpoint, a step's
log stream, the login's redirect target, the pages' headers and the API document (which must
not list the dashboard). The browser tests (tests/browser) cover what needs JavaScript."""

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from fastapi.testclient import TestClient

from stageline.engine.clock import system_clock
from stageline.settings import Settings
from stageline.store.database import Database
from stageline.store.ids import new_id
from stageline.store.queries import pipelines as pipeline_queries
from stageline.store.tables import Pipeline
from stageline.web.app import create_app as create_dashboard_app
from tests.factories import PASSING, User, World, definition, shell_job, stage


@contextmanager
def logged_in(dashboard: str, user: User, *, next_path: str = "/") -> Iterator[httpx.Client]:
    with httpx.Client(base_url=dashboard, timeout=30) as client:
        response = client.post(
            "/login", data={"username": user.name, "password": user.password, "next": next_path}
        )
        assert response.status_code == 303, response.text
        assert response.headers["location"] == ("/" if next_path.startswith("//") else next_path)
        yield client


def csrf_of(html: str) -> str:
    match = re.search(r'data-csrf="([0-9a-f]+)"', html)
    assert match, html[:500]
    return match.group(1)


@pytest.fixture
def admin(dashboard: str, world: World) -> Iterator[httpx.Client]:
    with logged_in(dashboard, world.admin) as client:
        yield client


class TestEditPage:
    def test_a_yaml_error_is_shown_at_the_definition(
        self, admin: httpx.Client, world: World
    ) -> None:
        pipeline_id = world.create_pipeline()
        path = f"/projects/{world.project_id}/pipelines/{pipeline_id}/edit"
        page = admin.get(path)
        assert page.status_code == 200
        assert "stages:" in page.text
        form = {
            "csrf_token": csrf_of(page.text),
            "name": "renamed",
            "description": "",
            "variables": "[]",
            "format": "yaml",
            "definition": "stages:\n  - name: Build\n    jobs:\n      build:\n        steps: 3\n",
        }
        response = admin.post(path, data=form)
        assert response.status_code == 400
        assert re.search(r'data-field="definition">definition: line \d+', response.text)

    def test_a_json_definition_error_names_its_field_path(
        self, admin: httpx.Client, world: World
    ) -> None:
        pipeline_id = world.create_pipeline()
        path = f"/projects/{world.project_id}/pipelines/{pipeline_id}/edit"
        broken = json.loads(PASSING)
        broken["stages"][0]["jobs"][0]["depends_on"] = ["NOWHERE"]
        form = {
            "csrf_token": csrf_of(admin.get(path).text),
            "name": "renamed",
            "description": "",
            "variables": "[]",
            "format": "json",
            "definition": json.dumps(broken),
        }
        response = admin.post(path, data=form)
        assert response.status_code == 400
        assert 'data-field="definition">definition.stages[0].jobs[0].depends_on[0]' in response.text

    def test_a_valid_edit_is_saved_as_the_api_would(
        self, admin: httpx.Client, world: World
    ) -> None:
        pipeline_id = world.create_pipeline()
        path = f"/projects/{world.project_id}/pipelines/{pipeline_id}/edit"
        variables = [{"name": "GREETING", "value": "hi", "is_runtime": True}]
        form = {
            "csrf_token": csrf_of(admin.get(path).text),
            "name": f"renamed-{pipeline_id[:6]}",
            "description": "now described",
            "variables": json.dumps(variables),
            "format": "json",
            "definition": definition(stage("ONLY", shell_job("SAY", "echo $GREETING"))),
        }
        response = admin.post(path, data=form)
        assert response.status_code == 303, response.text
        shown = world.client.get(
            f"{world.base}/pipelines/{pipeline_id}", headers=world.viewer.headers
        ).json()
        assert shown["name"] == form["name"]
        assert shown["description"] == "now described"
        assert [v["name"] for v in shown["variables"]] == ["GREETING"]

    def test_a_save_without_the_csrf_token_is_refused(
        self, admin: httpx.Client, world: World
    ) -> None:
        pipeline_id = world.create_pipeline()
        path = f"/projects/{world.project_id}/pipelines/{pipeline_id}/edit"
        response = admin.post(path, data={"name": "x", "definition": PASSING, "format": "json"})
        assert response.status_code == 403
        assert response.json()["error_code"] == "DEVCP.00014031"

    def test_a_developer_may_not_edit(self, dashboard: str, world: World) -> None:
        pipeline_id = world.create_pipeline()
        with logged_in(dashboard, world.developer) as developer:
            response = developer.get(f"/projects/{world.project_id}/pipelines/{pipeline_id}/edit")
        assert response.status_code == 403
        assert set(response.json()) >= {"error_code", "error_msg"}


class TestRunForm:
    def test_a_run_of_chosen_stages_with_runtime_variables(
        self, dashboard: str, world: World
    ) -> None:
        pipeline_id = world.create_pipeline(
            definition(
                stage("FIRST", shell_job("ONE", "echo one $WHO")),
                stage("SECOND", shell_job("TWO", "echo two")),
            ),
            variables=[{"name": "WHO", "value": "nobody", "is_runtime": True}],
        )
        with logged_in(dashboard, world.developer) as developer:
            page = developer.get(f"/projects/{world.project_id}/pipelines/{pipeline_id}")
            assert 'id="run-open"' in page.text
            response = developer.post(
                f"/projects/{world.project_id}/pipelines/{pipeline_id}/run",
                json={"variables": [{"name": "WHO", "value": "me"}], "choose_stages": ["FIRST"]},
                headers={"X-CSRF-Token": csrf_of(page.text)},
            )
            assert response.status_code == 200, response.text
            started = response.json()
            run_id = started["pipeline_run_id"]
            detail = world.wait_for(pipeline_id, run_id)
            assert [s["status"] for s in detail["stages"]] == ["COMPLETED", "UNSELECTED"]
            assert developer.get(started["url"]).status_code == 200
            step = detail["stages"][0]["jobs"][0]["steps"][0]["id"]
            stream = developer.get(f"{started['url']}/steps/{step}/log")
        assert stream.headers["content-type"].startswith("text/event-stream")
        assert 'data: ["one me"]' in stream.text
        assert "event: end" in stream.text


class TestWallAtScale:
    def test_a_thousand_pipelines_are_one_page_of_tiles(
        self, admin: httpx.Client, world: World
    ) -> None:
        now = system_clock()
        with world.db.writer() as session:
            for index in range(1000):
                pipeline_queries.insert_pipeline(
                    session,
                    Pipeline(
                        id=new_id(),
                        project_id=world.project_id,
                        name=f"bulk-{index:04d}",
                        description="",
                        is_publish=False,
                        manifest_version="3.0",
                        definition=PASSING,
                        sources=[],
                        variables=[],
                        schedules=[],
                        triggers=[],
                        creator_id=world.admin.user_id,
                        updater_id=world.admin.user_id,
                        created_at=now,
                        updated_at=now,
                        run_counter=0,
                        deleted=False,
                    ),
                )
        ran = world.create_pipeline()
        world.wait_for(ran, world.run(ran))
        page = admin.get(f"/projects/{world.project_id}")
        assert page.status_code == 200
        assert page.text.count('<article class="tile"') == 1001
        assert page.text.count('data-status="COMPLETED"') >= 2  # the tile and its badge


class TestPages:
    def test_pages_allow_nothing_but_this_server(self, admin: httpx.Client, world: World) -> None:
        response = admin.get(f"/projects/{world.project_id}")
        assert response.status_code == 200
        policy = response.headers["content-security-policy"]
        assert "default-src 'self'" in policy
        assert "script-src 'self'" in policy

    def test_the_login_never_redirects_off_the_site(self, dashboard: str, world: World) -> None:
        with logged_in(dashboard, world.viewer, next_path="//evil.example/") as client:
            assert client.get("/login?next=//evil.example/").headers["location"] == "/"

    def test_the_cookie_is_secure_when_the_public_base_url_is_https(
        self, settings: Settings, db: Database, world: World
    ) -> None:
        assert settings.effective_public_base_url.startswith("https://")
        app = create_dashboard_app(settings, db=db)
        client = TestClient(app, base_url="https://ci.example.test", follow_redirects=False)
        response = client.post(
            "/login", data={"username": world.viewer.name, "password": world.viewer.password}
        )
        assert response.status_code == 303
        cookie = response.headers["set-cookie"].lower()
        assert "httponly" in cookie
        assert "samesite=lax" in cookie
        assert "; secure" in cookie

    def test_a_login_posted_from_another_site_is_refused(
        self, dashboard: str, world: World
    ) -> None:
        response = httpx.post(
            f"{dashboard}/login",
            data={"username": world.viewer.name, "password": world.viewer.password},
            headers={"Origin": "https://evil.example"},
        )
        assert response.status_code == 403
        assert "stageline_session" not in response.cookies

    def test_the_api_document_does_not_list_the_dashboard(self, dashboard: str) -> None:
        paths = httpx.get(f"{dashboard}/openapi.json").json()["paths"]
        assert paths
        assert not [p for p in paths if p.startswith(("/projects", "/login", "/logout", "/static"))]
        assert "/" not in paths


class TestStreams:
    @pytest.mark.parametrize(
        ("query", "headers"),
        [("?after=99999999999999999999999", {}), ("?after=x", {}), ("", {"Last-Event-ID": "1e3"})],
    )
    def test_a_bad_resumption_point_is_a_400_before_the_stream_starts(
        self, admin: httpx.Client, world: World, query: str, headers: dict[str, str]
    ) -> None:
        response = admin.get(f"/projects/{world.project_id}/wall/stream{query}", headers=headers)
        assert response.status_code == 400, response.text
        assert "is not an event ID" in response.json()["error_msg"]

    def test_a_run_stream_ends_once_its_pipeline_is_deleted(
        self, admin: httpx.Client, world: World
    ) -> None:
        pipeline_id = world.create_pipeline(definition(stage("S", shell_job("J", "sleep 30"))))
        run_id = world.run(pipeline_id)
        path = f"/projects/{world.project_id}/pipelines/{pipeline_id}/runs/{run_id}/stream"
        with admin.stream("GET", path) as response:
            assert response.status_code == 200
            lines = response.iter_lines()
            assert next(line for line in lines if line.startswith("data: "))
            deleted = world.client.delete(
                f"{world.base}/pipelines/{pipeline_id}", headers=world.admin.headers
            )
            assert deleted.status_code == 200
            # It ends, rather than failing on every change that follows (a bound: the client's
            # read timeout), and the page's reconnection is then refused with a 404.
            list(lines)
        assert admin.get(path).status_code == 404

    def test_a_pipeline_pages_stream_tells_of_runs_changed_since_the_page_was_rendered(
        self, admin: httpx.Client, world: World
    ) -> None:
        pipeline_id = world.create_pipeline()
        page = admin.get(f"/projects/{world.project_id}/pipelines/{pipeline_id}")
        match = re.search(r'data-stream="([^"]+)"', page.text)
        assert match is not None
        world.wait_for(pipeline_id, world.run(pipeline_id))
        with admin.stream("GET", match[1]) as response:
            assert response.status_code == 200
            events = (line for line in response.iter_lines() if line.startswith("data: "))
            assert next(events) == "data: {}"
        unknown = f"/projects/{world.project_id}/pipelines/{new_id()}/stream"
        assert admin.get(unknown).status_code == 404
        assert admin.get(match[1].replace("after=", "after=x")).status_code == 400
