"""Pipelines as code over the API: `yaml_content`/`yaml_definition` are answered on read and
accepted on create and update; the JSON Schema is served to editors without a login."""

import json
import secrets
from typing import Any

from stageline.domain.pipeline import parse_definition
from stageline.schemas.pipeline_document import document_of
from stageline.schemas.pipeline_yaml import pipeline_from_yaml
from tests.factories import World
from tests.unit.schemas.test_pipeline_yaml import EVERYTHING

YAML = """\
name: {name}
description: from YAML
env:
  GREETING: hello
  TOKEN:
    secret: true
stages:
  - name: Build
    jobs:
      build:
        steps:
          - run: echo "$GREETING"
"""


def _detail(world: World, pipeline_id: str) -> dict[str, Any]:
    response = world.client.get(
        f"{world.base}/pipelines/{pipeline_id}", headers=world.admin.headers
    )
    assert response.status_code == 200, response.text
    detail: dict[str, Any] = response.json()
    return detail


def _create(world: World, body: dict[str, Any]) -> Any:
    return world.client.post(f"{world.base}/pipelines", json=body, headers=world.admin.headers)


class TestYamlFields:
    def test_a_pipeline_created_from_yaml_content_reads_back_as_the_same_yaml(
        self, world: World
    ) -> None:
        name = f"y-{secrets.token_hex(3)}"
        response = _create(world, {"yaml_content": YAML.format(name=name)})
        assert response.status_code == 200, response.text
        detail = _detail(world, response.json()["pipeline_id"])
        assert detail["name"] == name
        assert detail["description"] == "from YAML"
        assert [v["name"] for v in detail["variables"]] == ["GREETING", "TOKEN"]
        assert pipeline_from_yaml(detail["yaml_content"]) == pipeline_from_yaml(
            YAML.format(name=name)
        )
        assert detail["yaml_definition"].startswith("stages:\n")

    def test_a_secret_set_through_the_api_survives_an_update_from_yaml(self, world: World) -> None:
        name = f"y-{secrets.token_hex(3)}"
        pipeline_id = _create(world, {"yaml_content": YAML.format(name=name)}).json()["pipeline_id"]
        detail = _detail(world, pipeline_id)
        body = {
            "name": name,
            "is_publish": False,
            "definition": detail["definition"],
            "variables": [
                detail["variables"][0],
                {**detail["variables"][1], "value": "s3cret"},
            ],
        }
        url = f"{world.base}/pipelines/{pipeline_id}"
        assert world.client.put(url, json=body, headers=world.admin.headers).status_code == 200
        again = {"yaml_content": YAML.format(name=name).replace("hello", "hi")}
        response = world.client.put(url, json=again, headers=world.admin.headers)
        assert response.status_code == 200, response.text
        variables = _detail(world, pipeline_id)["variables"]
        assert [v["value"] for v in variables] == ["hi", "******"]
        run_id = world.run(pipeline_id)
        assert world.wait_for(pipeline_id, run_id)["status"] == "COMPLETED"

    def test_a_detail_sent_back_changed_keeps_the_change_not_its_yaml(self, world: World) -> None:
        name = f"y-{secrets.token_hex(3)}"
        pipeline_id = _create(world, {"yaml_content": YAML.format(name=name)}).json()["pipeline_id"]
        detail = _detail(world, pipeline_id)
        detail["description"] = "changed through the API"
        url = f"{world.base}/pipelines/{pipeline_id}"
        assert world.client.put(url, json=detail, headers=world.admin.headers).status_code == 200
        assert _detail(world, pipeline_id)["description"] == "changed through the API"

    def test_yaml_definition_replaces_the_definition(self, world: World) -> None:
        stages = (
            "stages:\n  - name: S\n    jobs:\n      only:\n        steps:\n          - run: ls\n"
        )
        body = {"name": f"y-{secrets.token_hex(3)}", "is_publish": False}
        response = _create(world, {**body, "yaml_definition": stages})
        assert response.status_code == 200, response.text
        detail = _detail(world, response.json()["pipeline_id"])
        spec = parse_definition(detail["definition"])
        assert [job.identifier for _, job in spec.jobs()] == ["only"]
        assert json.loads(detail["definition"])["stages"][0]["name"] == "S"

    def test_broken_yaml_is_refused_naming_its_line_and_column(self, world: World) -> None:
        text = YAML.format(name="broken").replace("- run:", "- rum:")
        response = _create(world, {"yaml_content": text})
        assert response.status_code == 400
        message = response.json()["error_msg"]
        assert message.startswith(
            "body: line 12, column 13: stages[0].jobs.build.steps[0].rum: unknown key 'rum'"
        )


class TestEveryFeatureThroughTheServer:
    def test_a_pipeline_of_every_feature_reads_back_as_the_document_it_was_made_from(
        self, world: World
    ) -> None:
        text = EVERYTHING.replace("name: everything", f"name: all-{secrets.token_hex(3)}")
        text = text.replace("group_id: 0123456789abcdef0123456789abcdef\n", "")
        response = _create(world, {"yaml_content": text})
        assert response.status_code == 200, response.text
        detail = _detail(world, response.json()["pipeline_id"])
        assert document_of(detail) == document_of(pipeline_from_yaml(text))
        assert pipeline_from_yaml(detail["yaml_content"]) == pipeline_from_yaml(text)


class TestSchemaRoute:
    def test_the_schema_is_served_without_a_login_and_may_be_cached(self, world: World) -> None:
        response = world.client.get("/schemas/pipeline.json")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/schema+json")
        assert "max-age" in response.headers["cache-control"]
        assert response.json()["title"] == "Stageline pipeline"
        etag = response.headers["etag"]
        again = world.client.get("/schemas/pipeline.json", headers={"If-None-Match": etag})
        assert again.status_code == 304


class TestSchedulesFromYaml:
    def test_an_unchanged_schedule_keeps_its_uuid_when_the_yaml_is_applied_again(
        self, world: World
    ) -> None:
        schedule = (
            "schedules:\n  - name: nightly\n    type: fixed\n    enable: true\n"
            "    days_of_week: [1, 2]\n    time: '02:00'\n    time_zone: UTC\nstages:"
        )
        text = YAML.format(name=f"y-{secrets.token_hex(3)}").replace("stages:", schedule)
        pipeline_id = _create(world, {"yaml_content": text}).json()["pipeline_id"]
        [before] = _detail(world, pipeline_id)["schedules"]
        url = f"{world.base}/pipelines/{pipeline_id}"
        again = {"yaml_content": text.replace('echo "$GREETING"', "echo changed")}
        assert world.client.put(url, json=again, headers=world.admin.headers).status_code == 200
        [after] = _detail(world, pipeline_id)["schedules"]
        assert after["uuid"] == before["uuid"]
        moved = {"yaml_content": text.replace("'02:00'", "'03:00'")}
        assert world.client.put(url, json=moved, headers=world.admin.headers).status_code == 200
        [moved_schedule] = _detail(world, pipeline_id)["schedules"]
        assert moved_schedule["uuid"] != before["uuid"]
