"""The YAML form of a pipeline: every definition feature survives both round trips, and every
error names the line and column of the YAML it is about."""

import json
from typing import Any

import pytest

from stageline.domain.pipeline import parse_definition
from stageline.schemas.pipeline_document import changed_keys, document_of, pipeline_to_yaml
from stageline.schemas.pipeline_yaml import definition_from_yaml, pipeline_from_yaml
from stageline.schemas.pipelines import PipelineCreate
from stageline.schemas.yaml_source import InvalidYaml, load

EVERYTHING = """\
name: everything
description: Every feature the YAML form has
publish: true
group_id: 0123456789abcdef0123456789abcdef
env:
  GREETING: hello
  PORT: 8080
  DEPLOY_TOKEN:
    secret: true
  TARGET:
    value: staging
    type: enum
    options: [staging, prod]
    runtime: true
    description: where to deploy
  BUILD:
    type: autoIncrement
    value: '7'
    reset: true
    latest_value: '6'
sources:
  - git_url: https://example.com/app.git
    default_branch: main
    alias: app
    token_variable: DEPLOY_TOKEN
    pipeline_file: ci/pipeline.yaml
  - type: artifact
    artifact_type: generic
    package_name: app
    version_strategy: latest
    alias: pkg
triggers:
  - git_url: https://example.com/app.git
    git_type: gitea
    events:
      - {type: push, enable: true, branches: [main, release/*]}
      - {type: merge_request, enable: false}
schedules:
  - name: nightly
    type: fixed
    enable: true
    days_of_week: [1, 2, 3, 4, 5, 6, 7]
    time_zone: China Standard Time
    time: '02:00'
concurrency:
  concurrency_number: 2
  exceed_action: QUEUE
  enable: true
stages:
  - name: Build
    id: build
    pre:
      - uses: official_devcloud_autoTrigger
    jobs:
      compile:
        name: Compile
        timeout: 30m
        resource: {pool: linux, labels: [docker]}
        steps:
          - name: make
            id: make_step
            run: |
              echo "$GREETING"
              make
            with:
              artifacts: [dist/*.tar.gz]
      lint:
        sequence: 5
        async: true
        steps:
          - uses: official_shell_plugin
            version: 0.0.1
            business_type: Build
            multi_step_editable: 1
            with:
              OFFICIAL_SHELL_SCRIPT_INPUT: make lint
              extra: 3
      test:
        needs: [compile, lint]
        if: ${{ default() }}
        timeout: 90
        resource: '{"pool": "linux"}'
        steps:
          - run: make test
    post:
      - run: echo built
  - name: Review
    needs: [build]
    jobs:
      approve:
        steps:
          - uses: official_devcloud_checkpoint
            with:
              approvers: [alice, bob]
              check_strategy: any
              timeout: 3600
              timeout_strategy: pass
  - name: Clean up
    sequence: 7
    always: true
    jobs:
      tidy:
        if: ${{ always() }}
        steps:
          - run: echo tidy
"""


def _through_json(body: dict[str, Any]) -> dict[str, Any]:
    """The body as a client sends it and the server validates it."""
    return PipelineCreate.model_validate(body).model_dump(exclude_none=True)


class TestRoundTrip:
    def test_yaml_to_v5_to_yaml_gives_the_same_document(self) -> None:
        body = pipeline_from_yaml(EVERYTHING)
        again = pipeline_to_yaml(body)
        assert load(again).value == document_of(body)
        assert pipeline_from_yaml(again) == body
        assert load(again).value == _normalised(load(EVERYTHING).value)

    def test_v5_to_yaml_to_v5_gives_the_same_pipeline(self) -> None:
        body = pipeline_from_yaml(EVERYTHING)
        assert pipeline_from_yaml(pipeline_to_yaml(body)) == body
        assert _through_json(pipeline_from_yaml(pipeline_to_yaml(body))) == _through_json(body)

    def test_every_definition_feature_reaches_the_v5_definition(self) -> None:
        spec = parse_definition(pipeline_from_yaml(EVERYTHING)["definition"])
        build, review, cleanup = spec.stages
        assert build.identifier == "build"
        assert [s.task for s in build.pre] == ["official_devcloud_autoTrigger"]
        assert [s.script for s in build.post] == ["echo built"]
        compile_, test, lint = build.jobs  # ordered by sequence: lint has 5
        assert compile_.name == "Compile"
        assert compile_.resource == '{"pool":"linux","labels":["docker"]}'
        assert compile_.steps[0].identifier == "make_step"
        assert compile_.steps[0].script == 'echo "$GREETING"\nmake\n'
        assert compile_.steps[0].input("artifacts") == ["dist/*.tar.gz"]
        assert test.depends_on == ("compile", "lint")
        assert test.condition == "${{ default() }}"
        assert test.timeout == "90"
        assert test.resource == '{"pool": "linux"}'
        assert lint.is_async
        assert lint.sequence == 5
        assert lint.steps[0].official_task_version == "0.0.1"
        assert lint.steps[0].business_type == "Build"
        assert lint.steps[0].input("extra") == 3
        assert review.depends_on == ("build",)
        assert review.jobs[0].review is not None
        assert cleanup.run_always
        assert cleanup.sequence == 7

    def test_raw_v5_definitions_survive_a_trip_through_yaml(self) -> None:
        definition = {
            "stages": [
                {
                    "name": "S",
                    "depends_on": [],
                    "jobs": [
                        {
                            "name": "J",
                            "async": "true",
                            "steps": [
                                {
                                    "task": "official_shell_plugin",
                                    "inputs": [
                                        {"key": "artifacts", "value": "a"},
                                        {"key": "OFFICIAL_SHELL_SCRIPT_INPUT", "value": "x"},
                                    ],
                                }
                            ],
                        },
                        {"name": "K", "identifier": "k", "steps": [_shell("y")]},
                    ],
                }
            ]
        }
        text = json.dumps(definition)
        back = pipeline_from_yaml(
            pipeline_to_yaml({"name": "raw", "is_publish": False, "definition": text})
        )
        assert parse_definition(back["definition"]) == parse_definition(text)

    def test_variables_keep_their_order_and_secrets_have_no_value(self) -> None:
        body = pipeline_from_yaml(EVERYTHING)
        names = [v["name"] for v in body["variables"]]
        assert names == ["GREETING", "PORT", "DEPLOY_TOKEN", "TARGET", "BUILD"]
        secret = body["variables"][2]
        assert secret["is_secret"]
        assert secret["value"] == ""
        shown = {**body, "variables": [{**v, "value": "******"} if v["is_secret"] else v
                                       for v in body["variables"]]}  # fmt: skip
        assert "******" not in pipeline_to_yaml(shown)

    def test_a_repository_file_needs_no_name(self) -> None:
        text = "stages:\n  - name: S\n    jobs:\n      j:\n        steps:\n          - run: ls\n"
        spec = parse_definition(definition_from_yaml(text))
        assert spec.stages[0].jobs[0].steps[0].script == "ls"

    def test_changed_keys_name_what_differs(self) -> None:
        before = document_of(pipeline_from_yaml(EVERYTHING))
        after = document_of(pipeline_from_yaml(EVERYTHING.replace("make test", "make check")))
        assert changed_keys(before, after) == ["stages"]
        assert changed_keys(before, before) == []


def _shell(script: str) -> dict[str, Any]:
    return {
        "task": "official_shell_plugin",
        "inputs": [{"key": "OFFICIAL_SHELL_SCRIPT_INPUT", "value": script}],
    }


def _normalised(doc: dict[str, Any]) -> dict[str, Any]:
    """What the writer writes for EVERYTHING: scalars as text, `needs` as lists, flow maps as
    block ones; the rest as written."""
    return document_of(pipeline_from_yaml(pipeline_to_yaml(pipeline_from_yaml(EVERYTHING))))


def _error(text: str) -> InvalidYaml:
    with pytest.raises(InvalidYaml) as refused:
        pipeline_from_yaml(text)
    return refused.value


SMALL = """\
name: small
env:
  A: one
stages:
  - name: Build
    jobs:
      build:
        steps:
          - run: make
      test:
        needs: [build]
        timeout: 30m
        steps:
          - uses: official_shell_plugin
            with:
              OFFICIAL_SHELL_SCRIPT_INPUT: make test
"""


class TestErrors:
    @pytest.mark.parametrize(
        ("old", "new", "line", "column", "message"),
        [
            ("needs: [build]", "needs: [build, nope]", 11, 24, "unknown job 'nope'"),
            ("timeout: 30m", "timeout: 30x", 12, 18, "'30x' is not a duration"),
            ("  A: one", "  PATH: one", 3, 3, "'PATH' is reserved"),
            ("    jobs:\n", "    jobz:\n", 6, 5, "unknown key 'jobz'"),
            ("- run: make\n", "- rum: make\n", 9, 13, "unknown key 'rum'"),
            ("- run: make\n", "- name: x\n", 9, 13, "a step needs 'run'"),
            ("uses: official_shell_plugin", "uses: nope", 14, 19, "unknown task 'nope'"),
            ("make test\n", "''\n", 16, 15, "a shell step needs a non-empty string"),
            ("needs: [build]", "needs: [test]", 11, 16, "dependency cycle"),
            ("name: small", "name: 'not a name'", 1, 7, "String should match pattern"),
            ("  A: one", "  A: [one]", 3, 6, "must be a string, a number or a boolean"),
            ("  A: one", "  A: {secret: true, value: s3cret}", 3, 28, "never written in YAML"),
            ("  A: one", "  A: one\n  A: two", 4, 3, "duplicate key 'A'"),
            ("stages:", "stages: [\n", 6, 3, "not valid YAML"),
            ("name: small", "name: &n small\ndescription: *n", 1, 7, "aliases"),
        ],
    )
    def test_an_error_names_the_line_and_column(
        self, old: str, new: str, line: int, column: int, message: str
    ) -> None:
        text = SMALL.replace(old, new, 1)
        assert text != SMALL
        error = _error(text)
        assert message in error.message
        assert (error.mark.line, error.mark.column) == (line, column), error.message
        assert error.message.startswith(f"line {line}, column {column}: ")

    def test_a_missing_name_or_stages_is_at_the_top(self) -> None:
        assert _error("stages: []\n").message == "line 1, column 1: (document): 'name' is required"
        assert "'stages' is required" in _error("name: x\n").message

    def test_an_empty_file_is_refused(self) -> None:
        assert "empty" in _error("# nothing\n").message
