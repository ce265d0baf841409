"""Pipelines as code end to end: `stageline pipeline apply` and `export` against the real
server, and a pipeline that takes its stages from a file in its repository."""

import secrets
from pathlib import Path

import pytest
from huaweicloudsdkcodeartspipeline.v2 import ShowPipelineDetailRequest

from stageline.cli.client import outcomes
from stageline.schemas.pipeline_yaml import definition_from_yaml, pipeline_from_yaml
from tests.gitrepos import GitRepo

from .conftest import Tenant
from .test_cli_client import Cli

pytestmark = pytest.mark.slow

PIPELINE = """\
name: {name}
description: applied from YAML
env:
  GREETING: hello
  API_TOKEN:
    secret: true
  TARGET:
    value: staging
    type: enum
    options: [staging, prod]
    runtime: true
concurrency:
  concurrency_number: 1
  exceed_action: QUEUE
  enable: true
stages:
  - name: Build
    id: build
    jobs:
      compile:
        name: Compile
        steps:
          - name: greet
            run: echo "$GREETING to $TARGET"
      test:
        needs: [compile]
        if: ${{{{ default() }}}}
        steps:
          - run: echo tested
"""


@pytest.fixture(scope="module")
def admin_cli(tenant: Tenant, tmp_path_factory: pytest.TempPathFactory) -> Cli:
    """Logged in as the admin (who may create pipelines), once per module."""
    logged_in = Cli(tenant, tmp_path_factory.mktemp("cli-admin") / "config.toml")
    result = logged_in.login("admin")
    assert result.returncode == 0, result.stderr
    return logged_in


def _write(tmp_path: Path, text: str, name: str = "pipeline.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


class TestApplyAndExport:
    def test_apply_creates_then_changes_nothing_then_updates_what_changed(
        self, admin_cli: Cli, tmp_path: Path
    ) -> None:
        name = f"pac-{secrets.token_hex(4)}"
        file = _write(tmp_path, PIPELINE.format(name=name))
        created = admin_cli.json("pipeline", "apply", "-f", file, "--json")
        assert created["action"] == "created"
        assert created["name"] == name
        assert admin_cli.json("pipeline", "apply", "-f", file, "--json")["action"] == "unchanged"
        text = admin_cli.ok("pipeline", "apply", "-f", file)
        assert text == f"unchanged pipeline {name} ({created['pipeline_id']})\n"

        changed = PIPELINE.format(name=name).replace("echo tested", "echo checked")
        changed = changed.replace("GREETING: hello", "GREETING: hi")
        file = _write(tmp_path, changed)
        text = admin_cli.ok("pipeline", "apply", "-f", file)
        assert text == f"updated pipeline {name} ({created['pipeline_id']}): env, stages\n"

    def test_export_then_apply_changes_nothing(self, admin_cli: Cli, tmp_path: Path) -> None:
        name = f"pac-{secrets.token_hex(4)}"
        admin_cli.ok("pipeline", "apply", "-f", _write(tmp_path, PIPELINE.format(name=name)))
        exported = tmp_path / "exported.yaml"
        result = admin_cli("pipeline", "export", name, "-o", str(exported))
        assert result.returncode == 0, result.stderr
        text = exported.read_text()
        assert text.startswith("# yaml-language-server: $schema=")
        assert "/schemas/pipeline.json\n" in text.splitlines(keepends=True)[0]
        assert "API_TOKEN:\n    secret: true\n" in text
        assert admin_cli.ok("pipeline", "export", name) == text
        as_json = admin_cli.json("--json", "pipeline", "export", name)
        assert (as_json["name"], as_json["file"], as_json["yaml_content"]) == (name, None, text)
        applied = admin_cli.json("pipeline", "apply", "-f", str(exported), "--json")
        assert applied["action"] == "unchanged"

    def test_the_official_sdk_reads_the_yaml_fields(
        self, admin_cli: Cli, tenant: Tenant, tmp_path: Path
    ) -> None:
        name = f"pac-{secrets.token_hex(4)}"
        text = PIPELINE.format(name=name)
        pipeline_id = admin_cli.json("pipeline", "apply", "-f", _write(tmp_path, text), "--json")[
            "pipeline_id"
        ]
        detail = tenant.client("viewer").show_pipeline_detail(
            ShowPipelineDetailRequest(project_id=tenant.project_id, pipeline_id=pipeline_id)
        )
        body = pipeline_from_yaml(text)
        assert pipeline_from_yaml(detail.yaml_content) == body
        assert definition_from_yaml(detail.yaml_definition) == body["definition"]

    def test_a_secret_set_through_the_api_is_kept_by_apply(
        self, admin_cli: Cli, tenant: Tenant, tmp_path: Path
    ) -> None:
        name = f"pac-{secrets.token_hex(4)}"
        file = _write(tmp_path, PIPELINE.format(name=name))
        pipeline_id = admin_cli.json("pipeline", "apply", "-f", file, "--json")["pipeline_id"]
        path = f"/v5/{tenant.project_id}/api/pipelines/{pipeline_id}"
        detail = tenant.raw("GET", path).json()
        detail["variables"][1]["value"] = "s3cret-value"
        assert tenant.raw("PUT", path, json_body=detail).status_code == 200
        changed = PIPELINE.format(name=name).replace("echo tested", "echo $API_TOKEN | wc -c")
        applied = admin_cli.json("pipeline", "apply", "-f", _write(tmp_path, changed), "--json")
        assert applied["changed"] == ["stages"]
        result = admin_cli("run", name, "--follow")
        assert result.returncode == outcomes.OK, result.stdout + result.stderr
        assert "13" in result.stdout  # the secret's 12 characters and a newline

    def test_an_error_in_the_file_names_its_line_and_column(
        self, admin_cli: Cli, tmp_path: Path
    ) -> None:
        broken = PIPELINE.format(name="broken").replace("needs: [compile]", "needs: [compil]")
        file = _write(tmp_path, broken)
        result = admin_cli("pipeline", "apply", "-f", file)
        assert result.returncode == outcomes.ERROR
        assert result.stderr == (
            f"error: {file}:26:17: stages[0].jobs.test.needs[0]: unknown job 'compil'\n"
        )

    def test_an_error_only_the_server_finds_names_the_line_too(
        self, admin_cli: Cli, tmp_path: Path
    ) -> None:
        text = PIPELINE.format(name=f"pac-{secrets.token_hex(4)}").replace(
            "stages:", "sources:\n  - git_url: https://example.com/a.git\n"
            "    token_variable: GREETING\nstages:", 1
        )  # fmt: skip
        result = admin_cli("pipeline", "apply", "-f", _write(tmp_path, text))
        assert result.returncode == outcomes.ERROR
        assert "token_variable: 'GREETING' is not a secret variable" in result.stderr


IN_REPOSITORY = """\
name: {name}
sources:
  - git_url: {url}
    default_branch: main
    pipeline_file: .stageline/pipeline.yaml
stages:
  - name: Stored
    jobs:
      stored:
        steps:
          - run: echo "the stored stages ran"
"""
REPOSITORY_FILE = """\
stages:
  - name: Build
    jobs:
      build:
        steps:
          - run: echo "{text}"
"""


class TestPipelineFileInTheRepository:
    def test_a_push_that_changes_the_file_changes_the_next_run(
        self, admin_cli: Cli, tmp_path: Path
    ) -> None:
        repo = GitRepo(tmp_path / "repo")
        path = ".stageline/pipeline.yaml"
        repo.commit("ci: build", {path: REPOSITORY_FILE.format(text="built from v1")})
        name = f"pac-{secrets.token_hex(4)}"
        text = IN_REPOSITORY.format(name=name, url=repo.file_url)
        admin_cli.ok("pipeline", "apply", "-f", _write(tmp_path, text))

        first = admin_cli("run", name, "--follow")
        assert first.returncode == outcomes.OK, first.stdout + first.stderr
        assert "[build] built from v1" in first.stdout
        assert "stored stages" not in first.stdout

        repo.commit("ci: v2", {path: REPOSITORY_FILE.format(text="built from v2")})
        second = admin_cli("run", name, "--follow")
        assert second.returncode == outcomes.OK, second.stdout + second.stderr
        assert "[build] built from v2" in second.stdout

        broken = REPOSITORY_FILE.format(text="x").replace("- run:", "- rum:")
        commit = repo.commit("ci: broken", {path: broken})
        third = admin_cli("run", name, "--follow")
        assert third.returncode == outcomes.RUN_FAILED
        problem = (
            f"{path} at {commit[:12]}: line 6, column 13: stages[0].jobs.build.steps[0].rum:"
            " unknown key 'rum'"
        )
        assert problem in third.stdout
        # the run's log says so too, afterwards
        [line] = admin_cli.ok("logs", f"{name}#3").splitlines()
        assert line.startswith(problem)
        assert admin_cli.json("logs", f"{name}#3", "--json")["message"].startswith(problem)


AT_A_REF = """\
name: {name}
env:
  TARGET:
    value: staging
    runtime: true
sources:
  - git_url: {url}
    default_branch: main
    alias: app
  - git_url: {lib_url}
    default_branch: main
    alias: lib
stages:
  - name: Build
    jobs:
      build:
        steps:
          - run: echo "built branch=$BRANCH tag=$TAG commit=$COMMIT_ID for $TARGET"
          - run: echo "with lib $LIB_REPO_COMMIT_ID"
"""


class TestRunAtARef:
    def test_run_builds_the_branch_tag_or_commit_asked_for_with_its_variables(
        self, admin_cli: Cli, tmp_path: Path
    ) -> None:
        repo = GitRepo(tmp_path / "repo")
        first = repo.commit("one", {"a.txt": "1"})
        second = repo.commit("two", {"a.txt": "2"})
        feature = repo.commit("feature", {"b.txt": "3"}, branch="feature")
        repo.tag("v1", first)
        lib = GitRepo(tmp_path / "lib")
        lib_head = lib.commit("lib", {"lib.txt": "1"})
        name = f"ref-{secrets.token_hex(4)}"
        text = AT_A_REF.format(name=name, url=repo.file_url, lib_url=lib.file_url)
        admin_cli.ok("pipeline", "apply", "-f", _write(tmp_path, text))

        def built(*args: str) -> str:
            result = admin_cli("run", name, *args, "--follow")
            assert result.returncode == outcomes.OK, result.stdout + result.stderr
            lines = result.stdout.splitlines()
            assert f"[build] with lib {lib_head}" in lines  # the other source is there too
            [line] = [x for x in lines if x.startswith("[build] built")]
            return line

        assert built() == f"[build] built branch=main tag= commit={second} for staging"
        assert built("--branch", "feature", "--var", "TARGET=prod") == (
            f"[build] built branch=feature tag= commit={feature} for prod"
        )
        assert f"tag=v1 commit={first} " in built("--tag", "v1")
        assert (
            built("--commit", first) == f"[build] built branch=main tag= commit={first} for staging"
        )

        # the latest run was of main; --branch filters the status table by it
        [row] = admin_cli.ok("status", name, "--branch", "main").splitlines()[1:]
        assert row.split()[:5] == [name, "#4", "COMPLETED", "✓", "Manual"]
        assert row.split()[5] == "main"
        assert admin_cli.json("status", name, "--branch", "feature", "--json") == []
