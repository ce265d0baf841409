"""Pipeline triggers: each gets a webhook (hook ID, callback URL) and a secret, sealed at rest,
kept across updates of the same trigger, validated field by field."""

import json
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient

from stageline.auth.rotation import rotate_secrets
from stageline.auth.vault import Vault
from stageline.settings import Settings
from stageline.store.database import Database
from stageline.store.queries import hooks as hook_queries
from stageline.store.tables import Pipeline
from tests.factories import World
from tests.hooks import ALL_EVENTS, hooked, pipeline_detail, trigger, update


@pytest.fixture(scope="module")
def world(quiet_client: TestClient, quiet_db: Database, quiet_settings: Settings) -> World:
    return World.create(quiet_client, quiet_db, quiet_settings)


def hooked_pipeline(world: World, hook_id: str) -> Pipeline | None:
    with world.db.reader() as session:
        return hook_queries.read_hooked_pipeline(session, hook_id=hook_id)


class TestTriggerConfiguration:
    def test_a_trigger_gets_a_hook_a_secret_and_a_callback_url(self, world: World) -> None:
        hook = hooked(world, "https://git.example.test/a.git")
        (shown,) = pipeline_detail(world, hook.pipeline_id)["triggers"]
        assert len(hook.hook_id) == 32
        assert shown["callback_url"] == f"https://ci.example.test/webhooks/{hook.hook_id}"
        assert len(hook.token) >= 43
        assert shown["pipeline_id"] == hook.pipeline_id
        assert shown["events"] == ALL_EVENTS
        assert shown["git_type"] == "gitlab"
        found = hooked_pipeline(world, hook.hook_id)
        assert found is not None
        assert found.id == hook.pipeline_id

    def test_the_secret_is_sealed_at_rest_and_shown_to_admins_only(self, world: World) -> None:
        hook = hooked(world, "https://git.example.test/b.git")
        with world.db.reader() as session:
            stored = session.get(Pipeline, hook.pipeline_id)
            assert stored is not None
            (kept,) = stored.triggers
        assert kept["security_token"].startswith("stageline-sealed:")
        assert hook.token not in json.dumps(kept)
        for user in ("developer", "viewer"):
            (shown,) = pipeline_detail(world, hook.pipeline_id, user)["triggers"]
            assert shown["security_token"] == "******"
            assert shown["callback_url"].endswith(hook.hook_id)

    def test_rotating_the_master_secret_reseals_webhook_secrets(self, world: World) -> None:
        hook = hooked(world, "https://git.example.test/rotated.git")
        old = Vault(b"the-master-secret-before-rotation")
        with world.db.writer() as session:
            pipeline = session.get(Pipeline, hook.pipeline_id)
            assert pipeline is not None
            pipeline.triggers = [{**pipeline.triggers[0], "security_token": old.seal("s3cret")}]
        current = Vault(
            world.settings.master_secret(), previous=[b"the-master-secret-before-rotation"]
        )
        rotation = rotate_secrets(world.db, current)
        assert rotation.triggers_rewritten >= 1
        assert f"pipeline {hook.pipeline_id}: trigger {hook.hook_id}" not in rotation.unreadable
        (shown,) = pipeline_detail(world, hook.pipeline_id)["triggers"]
        assert shown["security_token"] == "s3cret"
        assert rotate_secrets(world.db, current).triggers_rewritten == 0

    def test_an_update_keeps_the_hook_of_the_same_trigger(self, world: World) -> None:
        hook = hooked(world, "https://git.example.test/c.git")
        assert update(world, hook.pipeline_id).status_code == 200  # sent back as shown
        (shown,) = pipeline_detail(world, hook.pipeline_id)["triggers"]
        assert (shown["hook_id"], shown["security_token"]) == (hook.hook_id, hook.token)
        # The same repository without the server's fields keeps it too.
        given = trigger("https://git.example.test/c.git", [{"type": "push", "enable": False}])
        assert update(world, hook.pipeline_id, triggers=[given]).status_code == 200
        (shown,) = pipeline_detail(world, hook.pipeline_id)["triggers"]
        assert (shown["hook_id"], shown["security_token"]) == (hook.hook_id, hook.token)
        assert shown["callback_url"] == f"https://ci.example.test/webhooks/{hook.hook_id}"
        assert shown["events"] == [{"type": "push", "enable": False}]

    def test_another_repository_gets_a_new_hook_and_the_old_one_is_gone(self, world: World) -> None:
        hook = hooked(world, "https://git.example.test/d.git")
        given = trigger("https://git.example.test/other.git")
        assert update(world, hook.pipeline_id, triggers=[given]).status_code == 200
        (shown,) = pipeline_detail(world, hook.pipeline_id)["triggers"]
        assert shown["hook_id"] != hook.hook_id
        assert shown["security_token"] != hook.token
        assert len(shown["security_token"]) >= 43
        assert shown["callback_url"] == f"https://ci.example.test/webhooks/{shown['hook_id']}"
        assert hooked_pipeline(world, hook.hook_id) is None

    def test_a_hook_id_of_another_pipeline_is_not_taken(self, world: World) -> None:
        first = hooked(world, "https://git.example.test/e.git")
        copied = trigger("https://git.example.test/e.git", hook_id=first.hook_id)
        copied["security_token"] = first.token
        second = world.create_pipeline(triggers=[copied])
        (shown,) = pipeline_detail(world, second)["triggers"]
        assert shown["hook_id"] != first.hook_id
        assert shown["security_token"] != first.token

    def test_a_deleted_pipeline_has_no_hook(self, world: World) -> None:
        hook = hooked(world, "https://git.example.test/f.git")
        response = world.client.delete(
            f"{world.base}/pipelines/{hook.pipeline_id}", headers=world.admin.headers
        )
        assert response.status_code == 200
        assert hooked_pipeline(world, hook.hook_id) is None

    @pytest.mark.parametrize(
        ("triggers", "path"),
        [
            ([{"events": []}], "triggers[0].git_url"),
            ([trigger("u", [{"type": "pull", "enable": True}])], "triggers[0].events[0].type"),
            ([trigger("u", [{"type": "push", "enable": "yes"}])], "triggers[0].events[0].enable"),
            ([trigger("u", [{"type": "push", "enable": True, "branches": "main"}])],
             "triggers[0].events[0].branches"),
            ([trigger("u", [{"type": "push", "enable": True}] * 2)],
             "triggers[0].events[1].type: event type 'push' is listed twice"),
            ([trigger("u", [{"type": "tag_push", "enable": True, "branches": ["main"]}])],
             "triggers[0].events[0].branches: only push and merge_request"),
            ([trigger("u"), trigger("u")], "triggers[1].git_url: another trigger"),
            ([{**trigger("u"), "git_type": "svn"}], "triggers[0].git_type"),
        ],
    )  # fmt: skip
    def test_invalid_triggers_are_refused_by_field(
        self, world: World, triggers: list[dict[str, Any]], path: str
    ) -> None:
        response = world.client.post(
            f"{world.base}/pipelines",
            json={
                "name": f"bad-{uuid.uuid4().hex[:8]}",
                "is_publish": False,
                "definition": '{"stages": []}',
                "triggers": triggers,
            },
            headers=world.admin.headers,
        )
        assert response.status_code == 400, response.text
        assert response.json()["error_msg"].startswith(path), response.json()
