"""Pipeline CRUD: create, list, detail, update, delete, and definition validation."""

import json
import secrets

import pytest

from tests.factories import PASSING, World, definition, shell_job, stage


class TestCreate:
    def test_a_created_pipeline_reads_back(self, world: World) -> None:
        name = f"web-{secrets.token_hex(3)}"
        pipeline_id = world.create_pipeline(
            name=name,
            description="builds the web app",
            variables=[{"name": "VERSION", "value": "1.0", "is_runtime": True}],
        )
        response = world.client.get(
            f"{world.base}/pipelines/{pipeline_id}", headers=world.viewer.headers
        )
        assert response.status_code == 200
        detail = response.json()
        assert detail["id"] == pipeline_id
        assert detail["name"] == name
        assert detail["description"] == "builds the web app"
        assert detail["definition"] == PASSING
        assert detail["project_id"] == world.project_id
        assert detail["creator_id"] == world.admin.user_id
        assert detail["creator_name"] == world.admin.display_name
        assert detail["variables"][0]["name"] == "VERSION"
        assert detail["variables"][0]["sequence"] == 1
        assert isinstance(detail["create_time"], int)

    @pytest.mark.parametrize(
        ("definition_text", "path"),
        [
            ("not json", "definition"),
            (
                json.dumps(
                    {
                        "stages": [
                            {"name": "S", "jobs": [{"name": "J", "steps": [{"task": "nope"}]}]}
                        ]
                    }
                ),
                "definition.stages[0].jobs[0].steps[0].task",
            ),
            (
                definition(stage("S", shell_job("A", "true"), shell_job("A", "true"))),
                "definition.stages[0].jobs[1].identifier",
            ),
            (
                definition(stage("S", shell_job("A", "true", depends_on=["MISSING"]))),
                "definition.stages[0].jobs[0].depends_on[0]",
            ),
            (
                definition(
                    stage(
                        "S",
                        shell_job("A", "true", depends_on=["B"]),
                        shell_job("B", "true", depends_on=["A"]),
                    )
                ),
                "definition.stages[0].jobs[0].depends_on",
            ),
        ],
    )
    def test_a_bad_definition_is_a_400_naming_the_field(
        self, world: World, definition_text: str, path: str
    ) -> None:
        body = {
            "name": f"bad-{secrets.token_hex(3)}",
            "is_publish": False,
            "definition": definition_text,
        }
        response = world.client.post(
            f"{world.base}/pipelines", json=body, headers=world.admin.headers
        )
        assert response.status_code == 400
        assert response.json()["error_msg"].startswith(f"{path}:")

    @pytest.mark.parametrize(
        ("patch", "path"),
        [
            ({"name": ""}, "name"),
            ({"name": "has space"}, "name"),
            ({"is_publish": "false"}, "is_publish"),
            ({"definition": None}, "definition"),
            ({"variables": [{"name": "A"}, {"name": "A"}]}, "variables[1].name"),
            ({"sources": [{"type": "svn"}]}, "sources[0].type"),
        ],
    )
    def test_a_bad_field_is_a_400_naming_it(
        self, world: World, patch: dict[str, object], path: str
    ) -> None:
        body = {
            "name": f"ok-{secrets.token_hex(3)}",
            "is_publish": False,
            "definition": PASSING,
            **patch,
        }
        response = world.client.post(
            f"{world.base}/pipelines", json=body, headers=world.admin.headers
        )
        assert response.status_code == 400, response.text
        assert response.json()["error_msg"].startswith(f"{path}:")

    def test_a_missing_required_field_is_named(self, world: World) -> None:
        response = world.client.post(
            f"{world.base}/pipelines", json={"name": "x"}, headers=world.admin.headers
        )
        assert response.status_code == 400
        assert response.json()["error_msg"].startswith(("is_publish:", "definition:"))

    def test_names_are_unique_within_a_project(self, world: World) -> None:
        name = f"dup-{secrets.token_hex(3)}"
        world.create_pipeline(name=name)
        body = {"name": name, "is_publish": False, "definition": PASSING}
        response = world.client.post(
            f"{world.base}/pipelines", json=body, headers=world.admin.headers
        )
        assert response.status_code == 409


class TestListUpdateDelete:
    def test_list_pages_filters_and_carries_latest_run(self, world: World) -> None:
        tag = secrets.token_hex(3)
        ran = world.create_pipeline(name=f"list-{tag}-a")
        idle = world.create_pipeline(name=f"list-{tag}-b")
        run_id = world.run(ran)
        world.wait_for(ran, run_id)
        response = world.client.post(
            f"{world.base}/pipelines/list",
            json={"name": f"list-{tag}", "sort_key": "name", "sort_dir": "asc", "limit": 10},
            headers=world.viewer.headers,
        )
        assert response.status_code == 200
        page = response.json()
        assert page["total"] == 2
        assert [p["pipeline_id"] for p in page["pipelines"]] == [ran, idle]
        latest = page["pipelines"][0]["latest_run"]
        assert latest["pipeline_run_id"] == run_id
        assert "id" in latest["stage_status_list"][0]
        assert page["pipelines"][1]["latest_run"] is None
        completed_only = world.client.post(
            f"{world.base}/pipelines/list",
            json={"name": f"list-{tag}", "status": ["COMPLETED"]},
            headers=world.viewer.headers,
        ).json()
        assert [p["pipeline_id"] for p in completed_only["pipelines"]] == [ran]

    def test_update_replaces_the_pipeline(self, world: World) -> None:
        pipeline_id = world.create_pipeline()
        new_definition = definition(stage("ONLY", shell_job("X", "echo updated")))
        body = {
            "name": f"renamed-{secrets.token_hex(3)}",
            "is_publish": True,
            "definition": new_definition,
        }
        response = world.client.put(
            f"{world.base}/pipelines/{pipeline_id}", json=body, headers=world.admin.headers
        )
        assert response.json() == {"pipeline_id": pipeline_id}
        detail = world.client.get(
            f"{world.base}/pipelines/{pipeline_id}", headers=world.viewer.headers
        ).json()
        assert (detail["name"], detail["is_publish"], detail["definition"]) == (
            body["name"],
            True,
            new_definition,
        )

    def test_a_deleted_pipeline_is_gone_everywhere(self, world: World) -> None:
        pipeline_id = world.create_pipeline()
        assert (
            world.client.delete(
                f"{world.base}/pipelines/{pipeline_id}", headers=world.admin.headers
            ).status_code
            == 200
        )
        for method, suffix in (("GET", ""), ("DELETE", ""), ("POST", "/run")):
            response = world.client.request(
                method, f"{world.base}/pipelines/{pipeline_id}{suffix}", headers=world.admin.headers
            )
            assert response.status_code == 404
            assert response.json()["error_code"] == "DEVPIPE.00011401"

    def test_another_projects_pipeline_is_not_found(
        self, world: World, client: object, db: object, settings: object
    ) -> None:
        other = World.create(world.client, world.db, world.settings)
        foreign = other.create_pipeline()
        response = world.client.get(
            f"{world.base}/pipelines/{foreign}", headers=world.admin.headers
        )
        assert response.status_code == 404
        run = world.client.post(
            f"{world.base}/pipelines/{foreign}/run", headers=world.admin.headers
        )
        assert run.status_code == 404
