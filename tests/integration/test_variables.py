"""Pipeline variables over the real app: reserved names are refused, and secret values are kept
sealed in the database and opened only for the step that runs (`rotate-secrets` included)."""

import hashlib
import secrets
from typing import Any

import pytest
from typer.testing import CliRunner

from stageline.auth.rotation import rotate_secrets
from stageline.auth.vault import Vault, is_sealed
from stageline.cli.main import app as cli
from stageline.store.database import Database
from stageline.store.tables import Pipeline, PipelineRun
from tests.conftest import TEST_SECRET
from tests.factories import World, definition, shell_job, stage

INVALID = "DEVCP.00021400"
OLD_SECRET = b"the-master-secret-before-rotation"


def pipeline_body(variables: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "name": f"v-{secrets.token_hex(4)}",
        "is_publish": False,
        "definition": definition(stage("S", shell_job("J", "true"))),
        "variables": variables,
    }


def stored_variables(db: Database, pipeline_id: str) -> list[dict[str, Any]]:
    with db.reader() as session:
        pipeline = session.get(Pipeline, pipeline_id)
        assert pipeline is not None
        return list(pipeline.variables)


def run_variables(db: Database, run_id: str) -> list[dict[str, Any]]:
    with db.reader() as session:
        run = session.get(PipelineRun, run_id)
        assert run is not None
        return list(run.variables)


def store_variables(db: Database, pipeline_id: str, variables: list[dict[str, Any]]) -> None:
    """Write the pipeline's variables as they are, as an earlier version would have."""
    with db.writer() as session:
        pipeline = session.get(Pipeline, pipeline_id)
        assert pipeline is not None
        pipeline.variables = variables


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def checks_token(digest_variable: str = "DIGEST") -> str:
    """A job that succeeds only if $API_TOKEN is what the digest variable says: the step sees the
    secret in clear, while no definition or plain variable holds it."""
    script = f'test "$(printf %s "$API_TOKEN" | sha256sum | cut -c1-64)" = "${digest_variable}"'
    return definition(stage("S", shell_job("CHECK", script)))


# -- reserved names ------------------------------------------------------------------------


class TestReservedNames:
    @pytest.mark.parametrize(
        "name", ["PATH", "LD_PRELOAD", "BASH_ENV", "PYTHONPATH", "BRANCH", "STAGELINE_OUTPUTS"]
    )
    def test_a_pipeline_with_a_reserved_variable_is_refused(self, world: World, name: str) -> None:
        body = pipeline_body([{"name": "GREETING", "value": "hi"}, {"name": name, "value": "x"}])
        response = world.client.post(
            f"{world.base}/pipelines", json=body, headers=world.admin.headers
        )
        assert response.status_code == 400, response.text
        assert response.json()["error_code"] == INVALID
        assert response.json()["error_msg"].startswith(f"variables[1].name: '{name}' is reserved")

    def test_an_update_to_a_reserved_variable_is_refused(self, world: World) -> None:
        pipeline_id = world.create_pipeline(variables=[{"name": "GREETING", "value": "hi"}])
        body = pipeline_body([{"name": "LD_PRELOAD", "value": "/tmp/evil.so", "is_runtime": True}])
        response = world.client.put(
            f"{world.base}/pipelines/{pipeline_id}", json=body, headers=world.admin.headers
        )
        assert response.status_code == 400, response.text
        assert response.json()["error_msg"].startswith("variables[0].name: 'LD_PRELOAD'")
        assert [v["name"] for v in stored_variables(world.db, pipeline_id)] == ["GREETING"]

    def test_a_run_setting_a_reserved_runtime_variable_is_refused(self, world: World) -> None:
        """A pipeline stored before such names were refused may still declare one."""
        pipeline_id = world.create_pipeline()
        store_variables(
            world.db,
            pipeline_id,
            [
                {"name": "GREETING", "value": "hi", "is_runtime": True},
                {"name": "PATH", "value": "", "is_runtime": True},
            ],
        )
        response = world.client.post(
            f"{world.base}/pipelines/{pipeline_id}/run",
            json={"variables": [{"name": "PATH", "value": "/tmp/evil"}]},
            headers=world.developer.headers,
        )
        assert response.status_code == 400, response.text
        assert response.json()["error_msg"].startswith("variables[0].name: 'PATH' is reserved")

        bare = world.client.post(
            f"{world.base}/pipelines/{pipeline_id}/run", headers=world.developer.headers
        )
        assert bare.status_code == 400, bare.text
        assert bare.json()["error_msg"].startswith("the pipeline's variables[1].name: 'PATH'")
        assert world.status(pipeline_id) == []  # no run was started


# -- sealed at rest -------------------------------------------------------------------------


class TestSealedAtRest:
    def test_a_secret_is_stored_sealed_and_the_step_gets_it_in_clear(self, world: World) -> None:
        secret = f"tok-{secrets.token_hex(8)}"
        pipeline_id = world.create_pipeline(
            checks_token(),
            variables=[
                {"name": "API_TOKEN", "value": secret, "is_secret": True},
                {"name": "DIGEST", "value": sha256(secret)},
            ],
        )
        stored = stored_variables(world.db, pipeline_id)
        assert secret not in repr(stored)
        assert is_sealed(stored[0]["value"])
        assert stored[1]["value"] == sha256(secret)  # plain variables stay as they are

        run_id = world.run(pipeline_id)
        assert world.wait_for(pipeline_id, run_id)["status"] == "COMPLETED"
        resolved = run_variables(world.db, run_id)
        assert secret not in repr(resolved)
        assert Vault(TEST_SECRET.encode()).open(resolved[0]["value"]) == secret

    def test_a_secret_given_at_run_time_is_stored_sealed(self, world: World) -> None:
        secret = f"runtime-{secrets.token_hex(8)}"
        pipeline_id = world.create_pipeline(
            checks_token(),
            variables=[
                {"name": "API_TOKEN", "value": "", "is_secret": True, "is_runtime": True},
                {"name": "DIGEST", "value": "", "is_runtime": True},
            ],
        )
        given = [
            {"name": "API_TOKEN", "value": secret},
            {"name": "DIGEST", "value": sha256(secret)},
        ]
        run_id = world.run(pipeline_id, {"variables": given})
        assert world.wait_for(pipeline_id, run_id)["status"] == "COMPLETED"
        resolved = run_variables(world.db, run_id)
        assert secret not in repr(resolved)
        assert is_sealed(resolved[0]["value"])

    def test_a_condition_compares_the_secret_in_clear(self, world: World) -> None:
        secret = secrets.token_hex(6)
        jobs = (
            shell_job("MATCH", "true", condition=f"${{{{ variables.API_TOKEN == '{secret}' }}}}"),
            shell_job("OTHER", "true", condition="${{ variables.API_TOKEN == 'nope' }}"),
        )
        pipeline_id = world.create_pipeline(
            definition(stage("S", *jobs)),
            variables=[{"name": "API_TOKEN", "value": secret, "is_secret": True}],
        )
        run_id = world.run(pipeline_id)
        detail = world.wait_for(pipeline_id, run_id)
        assert [job["status"] for job in detail["stages"][0]["jobs"]] == ["COMPLETED", "SKIPPED"]

    def test_a_secret_stored_in_clear_by_an_earlier_version_keeps_working(
        self, world: World
    ) -> None:
        secret = f"legacy-{secrets.token_hex(8)}"
        pipeline_id = world.create_pipeline(checks_token())
        legacy: list[dict[str, Any]] = [
            {"name": "API_TOKEN", "value": secret, "is_secret": True},
            {"name": "DIGEST", "value": sha256(secret)},
        ]
        store_variables(world.db, pipeline_id, legacy)
        path = f"{world.base}/pipelines/{pipeline_id}"
        shown = world.client.get(path, headers=world.viewer.headers).json()
        assert [v["value"] for v in shown["variables"]] == ["******", sha256(secret)]

        run_id = world.run(pipeline_id)
        assert world.wait_for(pipeline_id, run_id)["status"] == "COMPLETED"
        assert secret not in repr(run_variables(world.db, run_id))  # the run's copy is sealed

        # Written back with the mask, the kept value is sealed on the way.
        update = {k: shown[k] for k in ("name", "is_publish", "definition", "variables")}
        response = world.client.put(path, json=update, headers=world.admin.headers)
        assert response.status_code == 200, response.text
        stored = stored_variables(world.db, pipeline_id)
        assert is_sealed(stored[0]["value"])
        assert Vault(TEST_SECRET.encode()).open(stored[0]["value"]) == secret


# -- rotation -------------------------------------------------------------------------------


class TestRotation:
    def test_rotation_seals_anew_what_an_old_key_or_no_key_sealed(self, world: World) -> None:
        old, current = Vault(OLD_SECRET), Vault(TEST_SECRET.encode())
        in_clear = world.create_pipeline(variables=[{"name": "A", "value": "x"}])
        store_variables(world.db, in_clear, [{"name": "A", "value": "clear", "is_secret": True}])
        under_old = world.create_pipeline()
        run_id = world.run(under_old)
        world.wait_for(under_old, run_id)
        store_variables(
            world.db, under_old, [{"name": "B", "value": old.seal("old"), "is_secret": True}]
        )
        with world.db.writer() as session:
            run = session.get(PipelineRun, run_id)
            assert run is not None
            run.variables = [{"name": "B", "value": old.seal("old"), "is_secret": True}]

        without_old = rotate_secrets(world.db, current)
        assert f"pipeline {under_old}: B" in without_old.unreadable
        assert current.open(stored_variables(world.db, in_clear)[0]["value"]) == "clear"

        rotation = rotate_secrets(world.db, Vault(TEST_SECRET.encode(), previous=[OLD_SECRET]))
        assert rotation.unreadable == []
        assert current.open(stored_variables(world.db, under_old)[0]["value"]) == "old"
        assert current.open(run_variables(world.db, run_id)[0]["value"]) == "old"
        again = rotate_secrets(world.db, Vault(TEST_SECRET.encode(), previous=[OLD_SECRET]))
        assert again.rewritten == {"pipeline": 0, "run": 0}  # nothing left to do

    def test_the_command_reads_the_old_key_from_the_environment(
        self, world: World, database_url: str
    ) -> None:
        pipeline_id = world.create_pipeline()
        sealed_old = Vault(OLD_SECRET).seal("rotated")
        store_variables(
            world.db, pipeline_id, [{"name": "C", "value": sealed_old, "is_secret": True}]
        )
        env = {"STAGELINE_SECRET_KEY": TEST_SECRET}
        refused = CliRunner().invoke(
            cli, ["admin", "rotate-secrets", "--database-url", database_url, "--json"], env=env
        )
        assert refused.exit_code == 1
        assert f"pipeline {pipeline_id}: C" in refused.output

        env["STAGELINE_OLD_SECRET_KEY"] = OLD_SECRET.decode()
        result = CliRunner().invoke(
            cli, ["admin", "rotate-secrets", "--database-url", database_url, "--json"], env=env
        )
        assert result.exit_code == 0, result.output
        value = stored_variables(world.db, pipeline_id)[0]["value"]
        assert Vault(TEST_SECRET.encode()).open(value) == "rotated"
