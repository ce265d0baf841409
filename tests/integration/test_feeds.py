"""Feeds for dashboards and monitors, over real HTTP on each database: batch status as a
conditional GET, the branch= and status= filters, cc.xml, badges, and feed tokens."""

import json
import secrets
from datetime import datetime
from typing import Any
from urllib.parse import urlparse
from xml.etree import ElementTree

import httpx
import pytest
from typer.testing import CliRunner

from stageline.auth import feed_tokens
from stageline.cli.main import app as cli
from stageline.engine.clock import system_clock
from tests.conftest import TEST_SECRET
from tests.factories import World, definition, shell_job, stage
from tests.gitrepos import GitRepo
from tests.integration.test_schedules import daily_slot, every_day

ONLY_MAIN_PASSES = definition(stage("BUILD", shell_job("CHECK", 'test "$BRANCH" = main')))
FAILING = definition(stage("BUILD", shell_job("BREAK", "exit 3")))
FAILS_THEN_HANGS = definition(
    stage("BUILD", shell_job("ONCE", 'if [ "$RUN_NUMBER" = 1 ]; then exit 3; fi; sleep 60'))
)
CC_ACTIVITIES = {"Sleeping", "Building", "CheckingModifications"}
CC_STATUSES = {"Success", "Failure", "Exception", "Unknown"}


def code_source(url: str) -> dict[str, Any]:
    return {
        "type": "code",
        "params": {"git_type": "gitlab", "git_url": url, "default_branch": "main"},
    }


def on_branch(url: str, branch: str) -> dict[str, Any]:
    """A RunPipeline body building `branch` of `url`."""
    source = code_source(url)
    source["params"]["build_params"] = {"build_type": "branch", "target_branch": branch}
    return {"sources": [source]}


def feed_token(world: World) -> str:
    made = feed_tokens.create_feed_token(
        world.db, project_id=world.project_id, note="test", now=system_clock()
    )
    return made.token


def get_status(world: World, query: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return world.client.get(
        f"{world.base}/pipelines/status?{query}",
        headers=world.viewer.headers if headers is None else headers,
    )


def cc_projects(body: bytes) -> list[dict[str, str]]:
    """The Project elements of a cc.xml document, held to cctray.org's schema: a strict XML
    parse, a <Projects> root of empty <Project> elements, every required attribute present and
    from its enumeration, times with a zone, absolute web URLs."""
    root = ElementTree.fromstring(body)
    assert body.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    assert root.tag == "Projects"
    projects = []
    for element in root:
        assert element.tag == "Project"
        assert len(element) == 0
        attributes = dict(element.attrib)
        assert {"name", "activity", "lastBuildStatus", "lastBuildTime", "webUrl"} <= set(attributes)
        assert set(attributes) <= {
            "name",
            "activity",
            "lastBuildStatus",
            "lastBuildLabel",
            "lastBuildTime",
            "nextBuildTime",
            "webUrl",
        }
        assert attributes["activity"] in CC_ACTIVITIES
        assert attributes["lastBuildStatus"] in CC_STATUSES
        assert datetime.fromisoformat(attributes["lastBuildTime"]).tzinfo is not None
        assert urlparse(attributes["webUrl"]).scheme == "https"
        projects.append(attributes)
    return projects


class TestConditionalPolling:
    def test_the_get_answers_the_posts_array_with_an_etag_and_a_304_while_nothing_changes(
        self, world: World
    ) -> None:
        first, second = world.create_pipeline(), world.create_pipeline()
        world.wait_for(first, world.run(first))
        world.wait_for(second, world.run(second))
        unknown = secrets.token_hex(16)
        posted = world.client.post(
            f"{world.base}/pipelines/status",
            json=[second, unknown, first],
            headers=world.viewer.headers,
        )

        got = get_status(world, f"pipeline_ids={second},{unknown},{first},{second}")

        assert got.status_code == 200, got.text
        assert got.content == posted.content
        assert [item["pipeline_id"] for item in got.json()] == [second, first]
        assert got.headers["content-type"] == "application/json"
        etag = got.headers["ETag"]
        assert etag.startswith('"')
        assert etag.endswith('"')
        assert not etag.startswith("W/")
        assert posted.headers["ETag"] == etag

        again = get_status(
            world, f"pipeline_ids={second},{first}", {**world.viewer.headers, "If-None-Match": etag}
        )
        assert again.status_code == 304
        assert again.content == b""
        assert again.headers["ETag"] == etag
        listed = {**world.viewer.headers, "If-None-Match": f'"other", W/{etag}'}
        assert get_status(world, f"pipeline_ids={second},{first}", listed).status_code == 304

        world.wait_for(first, world.run(first))
        changed = get_status(
            world, f"pipeline_ids={second},{first}", {**world.viewer.headers, "If-None-Match": etag}
        )
        assert changed.status_code == 200
        assert changed.headers["ETag"] != etag
        assert changed.json()[1]["run_number"] == 2

    def test_a_post_sends_the_etag_and_answers_in_full_whatever_if_none_match_says(
        self, world: World
    ) -> None:
        pipeline_id = world.create_pipeline()
        world.wait_for(pipeline_id, world.run(pipeline_id))
        url = f"{world.base}/pipelines/status"
        first = world.client.post(url, json=[pipeline_id], headers=world.viewer.headers)
        headers = {**world.viewer.headers, "If-None-Match": first.headers["ETag"]}
        second = world.client.post(url, json=[pipeline_id], headers=headers)
        assert second.status_code == 200
        assert second.content == first.content

    def test_an_empty_list_answers_an_empty_array(self, world: World) -> None:
        response = get_status(world, "pipeline_ids=")
        assert response.status_code == 200
        assert response.json() == []

    @pytest.mark.parametrize(
        ("query", "message"),
        [
            ("", "pipeline_ids: Field required"),
            ("pipeline_ids=abc", "pipeline_ids[0]: 'abc' does not match ^[0-9a-zA-Z]{32}$"),
            (f"pipeline_ids={'a' * 32},,", "pipeline_ids[1]: '' does not match"),
            (f"pipeline_ids={'a' * 32}%0A", "pipeline_ids[0]:"),
            (f"pipeline_ids={','.join(['a' * 32] * 101)}", "pipeline_ids: at most 100"),
            (f"pipeline_ids={'a' * 32}&status=DONE", "status[0]: 'DONE' is not a run status"),
            (f"pipeline_ids={'a' * 32}&status=FAILED,", "status[1]: '' is not a run status"),
            (f"pipeline_ids={'a' * 32}&branch=", "branch: 1 to 255 characters"),
            (f"pipeline_ids={'a' * 32}&branch={'b' * 256}", "branch: 1 to 255 characters"),
        ],
    )
    def test_a_bad_query_is_a_400_naming_the_parameter(
        self, world: World, query: str, message: str
    ) -> None:
        response = get_status(world, query)
        assert response.status_code == 400, response.text
        assert response.json()["error_code"] == "DEVCP.00021400"
        assert response.json()["error_msg"].startswith(message)
        assert response.headers["X-Request-Id"]

    def test_the_post_validates_its_filters_alike(self, world: World) -> None:
        response = world.client.post(
            f"{world.base}/pipelines/status?status=failed",
            json=[],
            headers=world.viewer.headers,
        )
        assert response.status_code == 400
        assert response.json()["error_msg"].startswith("status[0]: 'failed' is not a run status")


class TestFilters:
    def test_status_keeps_the_pipelines_whose_latest_run_is_in_one_of_them(
        self, world: World
    ) -> None:
        passing, failing = world.create_pipeline(), world.create_pipeline(FAILING)
        world.wait_for(passing, world.run(passing))
        world.wait_for(failing, world.run(failing))
        ids = f"{passing},{failing}"
        for query, expected in (
            ("status=FAILED", [failing]),
            ("status=COMPLETED", [passing]),
            ("status=RUNNING,CANCELED", []),
            ("status=FAILED,COMPLETED", [passing, failing]),
        ):
            got = get_status(world, f"pipeline_ids={ids}&{query}")
            assert [item["pipeline_id"] for item in got.json()] == expected, query
            posted = world.client.post(
                f"{world.base}/pipelines/status?{query}",
                json=[passing, failing],
                headers=world.viewer.headers,
            )
            assert posted.content == got.content

    def test_branch_answers_the_latest_run_that_built_it(
        self, world: World, git_repo: GitRepo
    ) -> None:
        git_repo.commit("feature work", {"README.md": "feature\n"}, branch="feature")
        pipeline_id = world.create_pipeline(ONLY_MAIN_PASSES, sources=[code_source(git_repo.path)])
        on_main = world.run(pipeline_id, on_branch(git_repo.path, "main"))
        world.wait_for(pipeline_id, on_main)
        on_feature = world.run(pipeline_id, on_branch(git_repo.path, "feature"))
        world.wait_for(pipeline_id, on_feature)
        other = world.create_pipeline()  # never built main
        world.wait_for(other, world.run(other))
        ids = f"pipeline_ids={pipeline_id},{other}"

        (latest,) = get_status(world, f"pipeline_ids={pipeline_id}").json()
        assert (latest["pipeline_run_id"], latest["status"]) == (on_feature, "FAILED")
        (main,) = get_status(world, f"{ids}&branch=main").json()
        assert (main["pipeline_run_id"], main["status"]) == (on_main, "COMPLETED")
        assert main["build_params"]["target_branch"] == "main"
        assert get_status(world, f"{ids}&branch=main&status=FAILED").json() == []
        assert get_status(world, f"{ids}&branch=nowhere").json() == []
        posted = world.client.post(
            f"{world.base}/pipelines/status?branch=feature",
            json=[pipeline_id, other],
            headers=world.viewer.headers,
        )
        assert [item["pipeline_run_id"] for item in posted.json()] == [on_feature]

        badge = world.client.get(
            f"/badges/{world.project_id}/{pipeline_id}.svg?branch=main",
            headers=world.viewer.headers,
        )
        assert ">passing</text>" in badge.text
        cc = world.client.get(
            f"/cc.xml?project_id={world.project_id}&pipeline_ids={pipeline_id}&branch=main",
            headers=world.viewer.headers,
        )
        (project,) = cc_projects(cc.content)
        assert project["name"].endswith(" :: main")
        assert (project["lastBuildStatus"], project["lastBuildLabel"]) == ("Success", "1")


class TestCcXml:
    def test_every_pipeline_of_the_project_as_a_cctray_project(self, world: World) -> None:
        passing = world.create_pipeline(name=f"a-pass-{secrets.token_hex(3)}")
        failing = world.create_pipeline(FAILING, name=f"b-fail-{secrets.token_hex(3)}")
        never = world.create_pipeline(name=f"c-never-构建-{secrets.token_hex(3)}")
        pass_run = world.run(passing)
        world.wait_for(passing, pass_run)
        world.wait_for(failing, world.run(failing))

        for path in ("/cc.xml", "/cctray.xml"):
            response = world.client.get(
                f"{path}?project_id={world.project_id}", headers=world.viewer.headers
            )
            assert response.status_code == 200, response.text
            assert response.headers["content-type"] == "application/xml"
            assert response.headers["ETag"]
            by_name = {p["name"]: p for p in cc_projects(response.content)}
            assert len(by_name) == 3
            names = sorted(by_name)
            first, second, third = (by_name[name] for name in names)
            assert first["activity"] == "Sleeping"
            assert (first["lastBuildStatus"], first["lastBuildLabel"]) == ("Success", "1")
            (item,) = world.status(passing)
            assert first["webUrl"] == item["detail_url"]
            assert first["lastBuildTime"].endswith("Z")
            end = datetime.fromisoformat(first["lastBuildTime"]).timestamp()
            assert end == item["end_time"] // 1000
            assert second["lastBuildStatus"] == "Failure"
            assert third["name"].startswith("c-never-构建-")
            assert third["lastBuildStatus"] == "Unknown"
            assert "lastBuildLabel" not in third
            assert third["webUrl"].endswith(f"/pipelines/{never}")

        only = world.client.get(
            f"/cc.xml?project_id={world.project_id}&pipeline_ids={failing}",
            headers=world.viewer.headers,
        )
        assert [p["lastBuildStatus"] for p in cc_projects(only.content)] == ["Failure"]
        again = world.client.get(
            f"/cc.xml?project_id={world.project_id}&pipeline_ids={failing}",
            headers={**world.viewer.headers, "If-None-Match": only.headers["ETag"]},
        )
        assert again.status_code == 304

    def test_while_a_run_builds_the_last_build_is_the_previous_finished_run(
        self, world: World
    ) -> None:
        pipeline_id = world.create_pipeline(FAILS_THEN_HANGS)
        world.wait_for(pipeline_id, world.run(pipeline_id))
        running = world.run(pipeline_id)
        world.wait_for(pipeline_id, running, {"RUNNING"})
        try:
            cc = world.client.get(
                f"/cc.xml?project_id={world.project_id}&pipeline_ids={pipeline_id}",
                headers=world.viewer.headers,
            )
            (project,) = cc_projects(cc.content)
            assert project["activity"] == "Building"
            assert (project["lastBuildStatus"], project["lastBuildLabel"]) == ("Failure", "1")
            assert project["webUrl"].endswith(f"/runs/{running}")
            badge = world.client.get(
                f"/badges/{world.project_id}/{pipeline_id}.svg", headers=world.viewer.headers
            )
            assert ">running</text>" in badge.text
        finally:
            world.client.post(
                f"{world.base}/pipelines/{pipeline_id}/pipeline-runs/{running}/stop",
                headers=world.developer.headers,
            )

    @pytest.mark.parametrize(
        "path", ["/cc.xml?project_id={project}", "/badges/{project}/{pipeline}.svg?"]
    )
    def test_status_is_no_filter_of_cc_xml_or_badges(self, world: World, path: str) -> None:
        url = path.format(project=world.project_id, pipeline="a" * 32) + "&status=FAILED"
        response = world.client.get(url, headers=world.viewer.headers)
        assert response.status_code == 400
        assert response.json()["error_msg"].startswith("status: not a filter of this feed")

    def test_a_scheduled_pipeline_says_when_it_builds_next(self, world: World) -> None:
        time, next_ms = daily_slot()
        scheduled = world.create_pipeline(
            name=f"nightly-{secrets.token_hex(3)}", schedules=[every_day(time)]
        )
        disabled = world.create_pipeline(
            name=f"off-{secrets.token_hex(3)}", schedules=[every_day(time, enable=False)]
        )
        response = world.client.get(
            f"/cc.xml?project_id={world.project_id}&pipeline_ids={scheduled},{disabled}",
            headers=world.viewer.headers,
        )
        by_name = {p["name"]: p for p in cc_projects(response.content)}
        (on,) = (p for name, p in by_name.items() if name.startswith("nightly-"))
        (off,) = (p for name, p in by_name.items() if name.startswith("off-"))
        assert datetime.fromisoformat(on["nextBuildTime"]).timestamp() * 1000 == next_ms
        assert "nextBuildTime" not in off

    def test_a_cctray_clients_parser_reads_it(self, world: World) -> None:
        """BuildNotify's own feed parser (the tray monitor on PyPI), where it is installed."""
        cctray = pytest.importorskip("buildnotifylib.core.cctray")
        pipeline_id = world.create_pipeline()
        world.wait_for(pipeline_id, world.run(pipeline_id))
        response = world.client.get(
            f"/cc.xml?project_id={world.project_id}", headers=world.viewer.headers
        )

        class Server:
            url = "https://ci.example.test/cc.xml"
            prefix = None
            timezone = "None"
            excluded_projects: tuple[str, ...] = ()

        (project,) = cctray.parse(response.content, Server())
        assert (str(project.status), str(project.activity)) == ("Success", "Sleeping")
        assert project.last_build_label == "1"
        assert project.build_time is not None
        assert project.build_time.tzinfo is not None
        assert project.url.startswith("https://ci.example.test/projects/")

    def test_without_credentials_a_401_with_a_challenge(self, world: World) -> None:
        response = world.client.get(f"/cc.xml?project_id={world.project_id}")
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer ")
        assert response.json()["error_code"] == "APIGW.0301"
        assert response.headers["X-Request-Id"]

    def test_bad_queries_are_400s(self, world: World) -> None:
        headers = world.viewer.headers
        missing = world.client.get("/cc.xml", headers=headers)
        assert missing.status_code == 400
        assert missing.json()["error_msg"].startswith("project_id:")
        bad = world.client.get(
            f"/cc.xml?project_id={world.project_id}&pipeline_ids=nope", headers=headers
        )
        assert bad.status_code == 400
        assert bad.json()["error_msg"].startswith("pipeline_ids[0]:")


class TestBadges:
    def test_a_flat_svg_of_the_latest_run_that_proxies_revalidate(self, world: World) -> None:
        passing, failing = world.create_pipeline(), world.create_pipeline(FAILING)
        world.wait_for(passing, world.run(passing))
        world.wait_for(failing, world.run(failing))
        url = f"/badges/{world.project_id}/{passing}.svg"
        response = world.client.get(url, headers=world.viewer.headers)

        assert response.status_code == 200
        assert response.headers["content-type"] == "image/svg+xml; charset=utf-8"
        assert response.headers["Cache-Control"] == "no-cache, max-age=0, must-revalidate"
        svg = ElementTree.fromstring(response.content)
        assert svg.tag == "{http://www.w3.org/2000/svg}svg"
        assert svg.attrib["height"] == "20"
        assert svg.attrib["aria-label"] == "build: passing"
        assert 'fill="#4c1"' in response.text
        assert 'fill="#555"' in response.text
        etag = response.headers["ETag"]
        again = world.client.get(url, headers={**world.viewer.headers, "If-None-Match": etag})
        assert (again.status_code, again.content) == (304, b"")

        red = world.client.get(
            f"/badges/{world.project_id}/{failing}.svg?label=a%20<b>", headers=world.viewer.headers
        )
        assert ElementTree.fromstring(red.content).attrib["aria-label"] == "a <b>: failing"
        assert 'fill="#e05d44"' in red.text
        assert int(ElementTree.fromstring(red.content).attrib["width"]) > int(svg.attrib["width"])

    def test_an_unknown_or_never_run_pipeline_shows_unknown(self, world: World) -> None:
        never = world.create_pipeline()
        for pipeline_id in (never, secrets.token_hex(16)):
            response = world.client.get(
                f"/badges/{world.project_id}/{pipeline_id}.svg", headers=world.viewer.headers
            )
            assert response.status_code == 200
            assert ">unknown</text>" in response.text
            assert 'fill="#9f9f9f"' in response.text

    def test_a_malformed_pipeline_id_or_label_is_a_400(self, world: World) -> None:
        for path in ("not-an-id.svg", f"{'a' * 32}.svg?label=", f"{'a' * 32}.svg?label={'x' * 65}"):
            response = world.client.get(
                f"/badges/{world.project_id}/{path}", headers=world.viewer.headers
            )
            assert response.status_code == 400, path
            assert response.json()["error_code"] == "DEVCP.00021400"


class TestFeedTokens:
    def test_a_feed_token_reads_every_feed_of_its_project(self, world: World) -> None:
        pipeline_id = world.create_pipeline()
        world.wait_for(pipeline_id, world.run(pipeline_id))
        token = feed_token(world)
        for url in (
            f"/badges/{world.project_id}/{pipeline_id}.svg?token={token}",
            f"/cc.xml?project_id={world.project_id}&token={token}",
            f"/cctray.xml?project_id={world.project_id}&token={token}",
            f"{world.base}/pipelines/status?pipeline_ids={pipeline_id}&token={token}",
        ):
            response = world.client.get(url)
            assert response.status_code == 200, (url, response.text)
        bearer = world.client.get(
            f"/cc.xml?project_id={world.project_id}", headers={"Authorization": f"Bearer {token}"}
        )
        assert bearer.status_code == 200

    def test_an_iam_token_works_as_a_bearer_token_and_roles_still_count(self, world: World) -> None:
        url = f"/cc.xml?project_id={world.project_id}"
        bearer = {"Authorization": f"Bearer {world.viewer.token}"}
        assert world.client.get(url, headers=bearer).status_code == 200
        outsider = world.client.get(url, headers=world.outsider.headers)
        assert outsider.status_code == 403
        unknown = world.client.get(
            f"/cc.xml?project_id={secrets.token_hex(16)}", headers=world.viewer.headers
        )
        assert unknown.status_code == 404
        iam_in_url = world.client.get(f"{url}&token={world.viewer.token}")
        assert iam_in_url.status_code == 401  # IAM tokens never travel in URLs

    def test_a_feed_token_is_refused_everywhere_else(
        self, world: World, client: httpx.Client, db: Any, settings: Any
    ) -> None:
        pipeline_id = world.create_pipeline()
        world.wait_for(pipeline_id, world.run(pipeline_id))
        token = feed_token(world)
        other = World.create(client, db, settings)
        foreign = other.create_pipeline()

        post = world.client.post(f"{world.base}/pipelines/status?token={token}", json=[pipeline_id])
        assert post.status_code == 401
        for headers in ({"X-Auth-Token": token}, {"Authorization": f"Bearer {token}"}):
            post = world.client.post(
                f"{world.base}/pipelines/status", json=[pipeline_id], headers=headers
            )
            assert post.status_code == 401, headers
            detail = world.client.get(f"{world.base}/pipelines/{pipeline_id}", headers=headers)
            assert detail.status_code == 401, headers
        run = world.client.post(f"{world.base}/pipelines/{pipeline_id}/run?token={token}", json={})
        assert run.status_code == 401

        badge = world.client.get(f"/badges/{other.project_id}/{foreign}.svg?token={token}")
        assert badge.status_code == 403
        assert badge.json()["error_msg"] == "the feed token belongs to another project"
        cc = world.client.get(f"/cc.xml?project_id={other.project_id}&token={token}")
        assert cc.status_code == 403
        status = world.client.get(
            f"{other.base}/pipelines/status?pipeline_ids={foreign}&token={token}"
        )
        assert status.status_code == 403

    @pytest.mark.parametrize("tampered", ["slf_nonsense", "slf_" + "0" * 32 + "_" + "x" * 43])
    def test_a_wrong_token_is_a_401_with_a_challenge(self, world: World, tampered: str) -> None:
        response = world.client.get(
            f"/badges/{world.project_id}/{'a' * 32}.svg", params={"token": tampered}
        )
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer ")

    def test_a_token_with_a_wrong_secret_is_refused(self, world: World) -> None:
        token = feed_token(world)
        forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
        response = world.client.get(f"/cc.xml?project_id={world.project_id}&token={forged}")
        assert response.status_code == 401
        assert world.client.get(f"/cc.xml?project_id={world.project_id}&token={token}").is_success

    def test_the_command_line_creates_lists_and_revokes_them(
        self, world: World, database_url: str
    ) -> None:
        env = {"STAGELINE_SECRET_KEY": TEST_SECRET}
        made = CliRunner().invoke(
            cli,
            [
                "admin",
                "create-feed-token",
                world.project_id,
                "--note",
                "office TV",
                "--database-url",
                database_url,
                "--json",
            ],
            env=env,
        )
        assert made.exit_code == 0, made.output
        created = json.loads(made.output)
        token, token_id = created["token"], created["token_id"]
        assert token.startswith(f"slf_{token_id}_")

        listed = CliRunner().invoke(
            cli,
            [
                "admin",
                "list-feed-tokens",
                world.project_id,
                "--database-url",
                database_url,
                "--json",
            ],
            env=env,
        )
        assert listed.exit_code == 0, listed.output
        (row,) = json.loads(listed.output)["feed_tokens"]
        assert (row["token_id"], row["note"]) == (token_id, "office TV")
        assert token not in listed.output

        revoked = CliRunner().invoke(
            cli,
            ["admin", "revoke-feed-token", token_id, "--database-url", database_url, "--json"],
            env=env,
        )
        assert revoked.exit_code == 0, revoked.output
        # never checked by the server before, so no cache holds it
        response = world.client.get(f"/cc.xml?project_id={world.project_id}&token={token}")
        assert response.status_code == 401
        again = CliRunner().invoke(
            cli, ["admin", "revoke-feed-token", token_id, "--database-url", database_url], env=env
        )
        assert again.exit_code == 1
        unknown_project = CliRunner().invoke(
            cli,
            ["admin", "create-feed-token", secrets.token_hex(16), "--database-url", database_url],
            env=env,
        )
        assert unknown_project.exit_code == 1
        assert "not found" in unknown_project.output


def test_the_api_document_declares_the_feeds_conditional_answers(world: World) -> None:
    paths = world.client.get("/openapi.json").json()["paths"]
    feeds = [
        paths["/v5/{project_id}/api/pipelines/status"]["get"],
        paths["/cc.xml"]["get"],
        paths["/cctray.xml"]["get"],
        paths["/badges/{project_id}/{pipeline_id}.svg"]["get"],
    ]
    for operation in feeds:
        responses = operation["responses"]
        assert "ETag" in responses["200"]["headers"], operation["operationId"]
        assert "304" in responses
        assert "WWW-Authenticate" in responses["401"]["headers"]
        assert "token" in {p["name"] for p in operation["parameters"]}
    post = paths["/v5/{project_id}/api/pipelines/status"]["post"]
    assert {"branch", "status"} <= {p["name"] for p in post["parameters"]}
    assert "ETag" in post["responses"]["200"]["headers"]
