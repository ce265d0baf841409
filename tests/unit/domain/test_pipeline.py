"""Tests for `stageline.domain.pipeline`: parsing and validating CodeArts pipeline definitions."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from stageline.domain.errors import InvalidInput, InvalidPipeline
from stageline.domain.pipeline import (
    AUTO_TRIGGER_TASK,
    CHECKPOINT_TASK,
    SHELL_SCRIPT_INPUT,
    SHELL_TASK,
    SUPPORTED_TASKS,
    JobSpec,
    PipelineSpec,
    Review,
    StageSpec,
    StepSpec,
    parse_definition,
    parse_duration,
    parse_resource,
    review_of,
)

Doc = dict[str, Any]


def shell_step(script: str = "echo hello", **fields: Any) -> Doc:
    step: Doc = {
        "name": "Shell",
        "task": SHELL_TASK,
        "inputs": [{"key": SHELL_SCRIPT_INPUT, "value": script}],
    }
    step.update(fields)
    return step


def job(name: Any = "Build", **fields: Any) -> Doc:
    doc: Doc = {"name": name, "steps": [shell_step()]}
    doc.update(fields)
    return doc


def stage(name: Any = "Stage", **fields: Any) -> Doc:
    doc: Doc = {"name": name, "jobs": [job()]}
    doc.update(fields)
    return doc


def definition(*stages: Doc) -> str:
    return json.dumps({"stages": list(stages)})


def parse_error(text: str) -> InvalidPipeline:
    with pytest.raises(InvalidPipeline) as info:
        parse_definition(text)
    return info.value


# The example definition from the brief, as CodeArts sends it (with its opaque keys).
EXAMPLE_DEFINITION = json.dumps(
    {
        "stages": [
            {
                "name": "Stage_1",
                "identifier": "STAGE_x",
                "sequence": 0,
                "type": None,
                "parallel": None,
                "run_condition": None,
                "depends_on": [],
                "run_always": False,
                "pre": [
                    {
                        "task": "official_devcloud_autoTrigger",
                        "sequence": 0,
                        "multi_step_editable": 0,
                    }
                ],
                "post": None,
                "jobs": [
                    {
                        "id": "",
                        "identifier": "JOB_EyJYf",
                        "name": "Build",
                        "sequence": 0,
                        "async": None,
                        "condition": "${{ default() }}",
                        "strategy": {"select_strategy": "selected"},
                        "timeout": "",
                        "resource": '{"type":"system","arch":"x86"}',
                        "exec_type": "AGENTLESS_JOB",
                        "depends_on": [],
                        "steps": [
                            {
                                "name": "Shell",
                                "task": "official_shell_plugin",
                                "business_type": "Normal",
                                "official_task_version": "0.0.1",
                                "multi_step_editable": 0,
                                "identifier": "STEP_x",
                                "sequence": 0,
                                "endpoint_ids": [],
                                "env": [],
                                "inputs": [
                                    {"key": "OFFICIAL_SHELL_SCRIPT_INPUT", "value": "echo hello"}
                                ],
                            }
                        ],
                    }
                ],
            }
        ]
    }
)


# --- valid definitions ---------------------------------------------------------------------


def test_public_constants_name_the_supported_tasks() -> None:
    assert frozenset({SHELL_TASK, AUTO_TRIGGER_TASK, CHECKPOINT_TASK}) == SUPPORTED_TASKS
    assert SHELL_TASK == "official_shell_plugin"
    assert AUTO_TRIGGER_TASK == "official_devcloud_autoTrigger"
    assert SHELL_SCRIPT_INPUT == "OFFICIAL_SHELL_SCRIPT_INPUT"


def test_documented_minimal_definition_has_no_stages() -> None:
    spec = parse_definition('{"stages":[]}')

    assert spec == PipelineSpec(stages=())
    assert list(spec.jobs()) == []
    assert spec.stage("STAGE_0") is None


def test_codearts_example_definition_parses_into_dataclasses() -> None:
    spec = parse_definition(EXAMPLE_DEFINITION)

    trigger = StepSpec(
        name=AUTO_TRIGGER_TASK,
        identifier="STEP_0_pre_0",
        task=AUTO_TRIGGER_TASK,
        sequence=0,
        inputs=(),
    )
    shell = StepSpec(
        name="Shell",
        identifier="STEP_x",
        task=SHELL_TASK,
        sequence=0,
        inputs=((SHELL_SCRIPT_INPUT, "echo hello"),),
        business_type="Normal",
        official_task_version="0.0.1",
        multi_step_editable=0,
    )
    build = JobSpec(
        name="Build",
        identifier="JOB_EyJYf",
        sequence=0,
        steps=(shell,),
        depends_on=(),
        condition="${{ default() }}",
        resource='{"type":"system","arch":"x86"}',
        timeout=None,
        is_async=False,
    )
    assert spec == PipelineSpec(
        stages=(
            StageSpec(
                name="Stage_1",
                identifier="STAGE_x",
                sequence=0,
                jobs=(build,),
                pre=(trigger,),
                post=(),
                depends_on=(),
                run_always=False,
            ),
        )
    )
    assert spec.stages[0].jobs[0].steps[0].script == "echo hello"


def test_full_definition_orders_stages_jobs_and_steps_by_sequence() -> None:
    text = definition(
        stage(
            "Deploy",
            identifier="deploy",
            sequence=5,
            depends_on=["build"],
            run_always=True,
            post=[shell_step("echo bye", identifier="cleanup")],
            jobs=[
                job(
                    "Push",
                    identifier="push",
                    sequence=2,
                    depends_on=["pack"],
                    timeout="30",
                    condition="${{ failure() }}",
                ),
                job("Pack", identifier="pack", sequence=1, **{"async": True}),
            ],
        ),
        stage(
            "Build",
            identifier="build",
            sequence=1,
            jobs=[
                job(
                    "Compile",
                    identifier="compile",
                    steps=[
                        shell_step("make test", name="Test", identifier="test", sequence=3),
                        shell_step("make", name="Make", identifier="make", sequence=1),
                    ],
                )
            ],
        ),
    )

    spec = parse_definition(text)

    assert [s.identifier for s in spec.stages] == ["build", "deploy"]
    assert [(s.identifier, j.identifier) for s, j in spec.jobs()] == [
        ("build", "compile"),
        ("deploy", "pack"),
        ("deploy", "push"),
    ]
    build, deploy = spec.stages
    assert [(st.name, st.sequence, st.script) for st in build.jobs[0].steps] == [
        ("Make", 1, "make"),
        ("Test", 3, "make test"),
    ]
    assert deploy.depends_on == ("build",)
    assert deploy.run_always is True
    assert build.run_always is False
    assert [st.identifier for st in deploy.post] == ["cleanup"]
    pack, push = deploy.jobs
    assert pack.is_async is True
    assert push.depends_on == ("pack",)
    assert push.timeout == "30"
    assert push.condition == "${{ failure() }}"
    assert spec.stage("deploy") is deploy
    assert spec.stage("nope") is None


def test_stage_without_sequence_is_ordered_by_array_index() -> None:
    spec = parse_definition(definition(stage("A"), stage("B"), stage("C")))

    assert [(s.name, s.sequence) for s in spec.stages] == [("A", 0), ("B", 1), ("C", 2)]


def test_missing_identifiers_are_generated_from_positions() -> None:
    text = definition(
        stage("First", pre=[{"task": AUTO_TRIGGER_TASK}]),
        stage(
            "Second",
            identifier="",
            jobs=[job("J0"), job("J1", steps=[shell_step(), shell_step()])],
            post=[shell_step()],
        ),
    )

    first, second = parse_definition(text).stages

    assert first.identifier == "STAGE_0"
    assert second.identifier == "STAGE_1"
    assert [p.identifier for p in first.pre] == ["STEP_0_pre_0"]
    assert [j.identifier for j in second.jobs] == ["JOB_1_0", "JOB_1_1"]
    assert [s.identifier for s in second.jobs[1].steps] == ["STEP_1_1_0", "STEP_1_1_1"]
    assert [p.identifier for p in second.post] == ["STEP_1_post_0"]


def test_step_name_defaults_to_its_task() -> None:
    step = shell_step()
    del step["name"]

    spec = parse_definition(definition(stage(jobs=[job(steps=[step])])))

    assert spec.stages[0].jobs[0].steps[0].name == SHELL_TASK


@pytest.mark.parametrize(
    ("value", "expected"),
    [("true", True), ("false", False), (True, True), (False, False), (None, False)],
)
def test_job_async_accepts_booleans_and_their_strings(value: object, expected: bool) -> None:
    spec = parse_definition(definition(stage(jobs=[job(**{"async": value})])))

    assert spec.stages[0].jobs[0].is_async is expected


def test_nulls_mean_empty_or_default() -> None:
    text = definition(
        stage(
            type=None,
            parallel=None,
            run_condition=None,
            pre=None,
            post=None,
            depends_on=None,
            run_always=None,
            jobs=[
                job(
                    depends_on=None,
                    condition=None,
                    timeout=None,
                    resource=None,
                    steps=[shell_step(identifier=None, sequence=None, business_type=None)],
                )
            ],
        )
    )

    (only,) = parse_definition(text).stages

    assert (only.pre, only.post, only.depends_on, only.run_always) == ((), (), (), False)
    (build,) = only.jobs
    assert (build.depends_on, build.condition, build.timeout, build.resource) == (
        (),
        None,
        None,
        None,
    )
    assert build.steps[0].business_type == "Normal"


def test_unknown_keys_are_ignored() -> None:
    text = json.dumps(
        {
            "stages": [
                stage(opaque={"x": 1}, jobs=[job(strategy=[1, 2], steps=[shell_step(x=1)])])
            ],
            "something": "else",
        }
    )

    assert len(parse_definition(text).stages) == 1


def test_step_input_returns_value_or_none_and_script_is_shell_only() -> None:
    step = StepSpec(
        name="s",
        identifier="s",
        task=SHELL_TASK,
        sequence=0,
        inputs=(("A", {"nested": [1]}), (SHELL_SCRIPT_INPUT, "ls")),
    )
    trigger = StepSpec(
        name="t",
        identifier="t",
        task=AUTO_TRIGGER_TASK,
        sequence=0,
        inputs=((SHELL_SCRIPT_INPUT, "ls"),),
    )

    assert step.input("A") == {"nested": [1]}
    assert step.input("missing") is None
    assert step.script == "ls"
    assert trigger.script is None


def test_invalid_pipeline_is_an_invalid_input_with_path_in_message() -> None:
    error = parse_error("[]")

    assert isinstance(error, InvalidInput)
    assert error.message == f"{error.path}: {error.problem}"


# --- invalid definitions -------------------------------------------------------------------


def _steps_with(*steps: Doc) -> str:
    return definition(stage(jobs=[job(steps=list(steps))]))


def _no_script_step() -> Doc:
    return {"task": SHELL_TASK, "inputs": [{"key": "OTHER", "value": "x"}]}


INVALID: list[tuple[str, str, str, str]] = [
    # (test id, definition text, expected path, expected problem substring)
    ("not json", "{stages: []", "definition", "is not valid JSON"),
    ("json nan", '{"stages": NaN}', "definition", "is not valid JSON"),
    ("not an object", "[]", "definition", "must be an object"),
    ("stages missing", "{}", "definition.stages", "is required"),
    ("stages not array", '{"stages": {}}', "definition.stages", "must be an array"),
    ("stage not object", '{"stages": [1]}', "definition.stages[0]", "must be an object"),
    (
        "stage missing name",
        json.dumps({"stages": [{"jobs": [job()]}]}),
        "definition.stages[0].name",
        "is required",
    ),
    ("stage name empty", definition(stage("")), "definition.stages[0].name", "1-128"),
    ("stage name too long", definition(stage("x" * 129)), "definition.stages[0].name", "1-128"),
    (
        "stage name padded",
        definition(stage("ok"), stage(" Build")),
        "definition.stages[1].name",
        "whitespace",
    ),
    ("stage name not string", definition(stage(7)), "definition.stages[0].name", "a string"),
    (
        "stage identifier not string",
        definition(stage(identifier=3)),
        "definition.stages[0].identifier",
        "a string",
    ),
    (
        "stage sequence negative",
        definition(stage(sequence=-1)),
        "definition.stages[0].sequence",
        ">= 0",
    ),
    (
        "stage sequence not integer",
        definition(stage(sequence="1")),
        "definition.stages[0].sequence",
        "an integer",
    ),
    (
        "stage sequence boolean",
        definition(stage(sequence=True)),
        "definition.stages[0].sequence",
        "an integer",
    ),
    (
        "duplicate stage sequence",
        definition(stage("A", sequence=3), stage("B", sequence=3)),
        "definition.stages[1].sequence",
        "duplicate sequence 3 (already used by definition.stages[0])",
    ),
    (
        "implicit sequence collides",
        definition(stage("A"), stage("B", sequence=0)),
        "definition.stages[1].sequence",
        "duplicate sequence 0",
    ),
    (
        "duplicate job sequence",
        definition(stage(jobs=[job("A", sequence=1), job("B", sequence=1)])),
        "definition.stages[0].jobs[1].sequence",
        "duplicate sequence 1",
    ),
    (
        "run_always not boolean",
        definition(stage(run_always="yes")),
        "definition.stages[0].run_always",
        "a boolean",
    ),
    (
        "stage jobs missing",
        json.dumps({"stages": [{"name": "S"}]}),
        "definition.stages[0].jobs",
        "is required",
    ),
    (
        "stage jobs not array",
        definition(stage(jobs={})),
        "definition.stages[0].jobs",
        "must be an array",
    ),
    (
        "pre not array",
        definition(stage(pre="x")),
        "definition.stages[0].pre",
        "must be an array",
    ),
    (
        "job missing name",
        definition(stage(jobs=[{"steps": [shell_step()]}])),
        "definition.stages[0].jobs[0].name",
        "is required",
    ),
    (
        "job name too long",
        definition(stage(jobs=[job("j" * 200)])),
        "definition.stages[0].jobs[0].name",
        "got 200",
    ),
    (
        "job steps missing",
        definition(stage(jobs=[{"name": "J"}])),
        "definition.stages[0].jobs[0].steps",
        "is required",
    ),
    (
        "job steps empty",
        definition(stage(jobs=[job(steps=[])])),
        "definition.stages[0].jobs[0].steps",
        "at least one step",
    ),
    (
        "job async bad string",
        definition(stage(jobs=[job(**{"async": "yes"})])),
        "definition.stages[0].jobs[0].async",
        '"true"/"false"',
    ),
    (
        "job timeout not string",
        definition(stage(jobs=[job(timeout=30)])),
        "definition.stages[0].jobs[0].timeout",
        "a string",
    ),
    (
        "job condition not string",
        definition(stage(jobs=[job(condition=[])])),
        "definition.stages[0].jobs[0].condition",
        "a string",
    ),
    (
        "step missing task",
        _steps_with({"name": "x"}),
        "definition.stages[0].jobs[0].steps[0].task",
        "is required",
    ),
    (
        "unknown task",
        definition(
            stage("A"),
            stage("B", jobs=[job(), job(steps=[shell_step(), shell_step(), {"task": "xyz"}])]),
        ),
        "definition.stages[1].jobs[1].steps[2].task",
        "unknown task 'xyz'",
    ),
    (
        "unknown task in post",
        definition(stage(post=[{"task": "official_maven"}])),
        "definition.stages[0].post[0].task",
        "unknown task 'official_maven'",
    ),
    (
        "shell step without script input",
        _steps_with(_no_script_step()),
        "definition.stages[0].jobs[0].steps[0].inputs",
        SHELL_SCRIPT_INPUT,
    ),
    (
        "shell step without inputs",
        _steps_with({"task": SHELL_TASK}),
        "definition.stages[0].jobs[0].steps[0].inputs",
        "non-empty string",
    ),
    (
        "shell step with blank script",
        _steps_with(shell_step("   ")),
        "definition.stages[0].jobs[0].steps[0].inputs",
        "non-empty string",
    ),
    (
        "shell step in pre without script",
        definition(stage(pre=[_no_script_step()])),
        "definition.stages[0].pre[0].inputs",
        "non-empty string",
    ),
    (
        "inputs not array",
        _steps_with(shell_step(inputs={"key": SHELL_SCRIPT_INPUT, "value": "ls"})),
        "definition.stages[0].jobs[0].steps[0].inputs",
        "must be an array",
    ),
    (
        "input not object",
        _steps_with(shell_step(inputs=[[SHELL_SCRIPT_INPUT, "ls"]])),
        "definition.stages[0].jobs[0].steps[0].inputs[0]",
        "must be an object",
    ),
    (
        "input key missing",
        _steps_with(shell_step(inputs=[{"value": "ls"}])),
        "definition.stages[0].jobs[0].steps[0].inputs[0].key",
        "is required",
    ),
    (
        "input key not string",
        _steps_with(shell_step(inputs=[{"key": 1, "value": "ls"}])),
        "definition.stages[0].jobs[0].steps[0].inputs[0].key",
        "a string",
    ),
    (
        "input value missing",
        _steps_with(shell_step(inputs=[{"key": SHELL_SCRIPT_INPUT}])),
        "definition.stages[0].jobs[0].steps[0].inputs[0].value",
        "is required",
    ),
    (
        "input key duplicated",
        _steps_with(
            shell_step(
                inputs=[
                    {"key": SHELL_SCRIPT_INPUT, "value": "ls"},
                    {"key": SHELL_SCRIPT_INPUT, "value": "pwd"},
                ]
            )
        ),
        "definition.stages[0].jobs[0].steps[0].inputs[1].key",
        f"duplicate input key '{SHELL_SCRIPT_INPUT}'",
    ),
    (
        "multi_step_editable not integer",
        _steps_with(shell_step(multi_step_editable="0")),
        "definition.stages[0].jobs[0].steps[0].multi_step_editable",
        "an integer",
    ),
    (
        "duplicate identifier stage vs job",
        definition(stage("A", identifier="SAME"), stage("B", jobs=[job(identifier="SAME")])),
        "definition.stages[1].jobs[0].identifier",
        "duplicate identifier 'SAME'",
    ),
    (
        "duplicate identifier job vs step",
        definition(stage(jobs=[job(identifier="X", steps=[shell_step(identifier="X")])])),
        "definition.stages[0].jobs[0].steps[0].identifier",
        "duplicate identifier 'X'",
    ),
    (
        "given identifier collides with generated one",
        definition(stage("A"), stage("B", identifier="STAGE_0")),
        "definition.stages[1].identifier",
        "duplicate identifier 'STAGE_0'",
    ),
    (
        "stage depends_on not array",
        definition(stage(depends_on="A")),
        "definition.stages[0].depends_on",
        "must be an array",
    ),
    (
        "stage depends_on entry not string",
        definition(stage(depends_on=[1])),
        "definition.stages[0].depends_on[0]",
        "a string",
    ),
    (
        "stage depends_on listed twice",
        definition(stage("A", identifier="A"), stage("B", depends_on=["A", "A"])),
        "definition.stages[1].depends_on[1]",
        "listed twice",
    ),
    (
        "unknown stage depends_on",
        definition(stage("A", identifier="A"), stage("B", depends_on=["A", "GHOST"])),
        "definition.stages[1].depends_on[1]",
        "unknown stage 'GHOST'",
    ),
    (
        "stage depends_on a job",
        definition(stage("A", jobs=[job(identifier="J")]), stage("B", depends_on=["J"])),
        "definition.stages[1].depends_on[0]",
        "unknown stage 'J'",
    ),
    (
        "unknown job depends_on",
        definition(stage(jobs=[job("A", identifier="A"), job("B", depends_on=["GHOST"])])),
        "definition.stages[0].jobs[1].depends_on[0]",
        "unknown job 'GHOST'",
    ),
    (
        "job depends_on a job of another stage",
        definition(
            stage("S1", identifier="S1", jobs=[job(identifier="J1")]),
            stage("S2", jobs=[job(identifier="J2", depends_on=["J1"])]),
        ),
        "definition.stages[1].jobs[0].depends_on[0]",
        "belongs to stage 'S1'",
    ),
    (
        "stage self-dependency",
        definition(stage("A", identifier="A", depends_on=["A"])),
        "definition.stages[0].depends_on",
        "dependency cycle: A -> A",
    ),
    (
        "job self-dependency",
        definition(stage(jobs=[job(identifier="J", depends_on=["J"])])),
        "definition.stages[0].jobs[0].depends_on",
        "dependency cycle: J -> J",
    ),
    (
        "stage 3-cycle",
        definition(
            stage("X", identifier="X", depends_on=["B"]),
            stage("A", identifier="A", depends_on=["B"]),
            stage("B", identifier="B", depends_on=["C"]),
            stage("C", identifier="C", depends_on=["A"]),
        ),
        "definition.stages[1].depends_on",
        "dependency cycle: A -> B -> C -> A",
    ),
    (
        "job 3-cycle",
        definition(
            stage(
                jobs=[
                    job("C", identifier="C", depends_on=["A"]),
                    job("A", identifier="A", depends_on=["B"]),
                    job("B", identifier="B", depends_on=["C"]),
                ]
            )
        ),
        "definition.stages[0].jobs[0].depends_on",
        "dependency cycle: C -> A -> B -> C",
    ),
]


def checkpoint_step(**inputs: Any) -> Doc:
    return {
        "task": CHECKPOINT_TASK,
        "inputs": [{"key": key, "value": value} for key, value in inputs.items()],
    }


LIFECYCLE_INVALID = [
    (
        "condition with a single =",
        definition(stage(jobs=[job(condition="${{ variables.env = 'prod' }}")])),
        "definition.stages[0].jobs[0].condition",
        "column",
    ),
    (
        "resource that is not JSON",
        definition(stage(jobs=[job(resource="gpu")])),
        "definition.stages[0].jobs[0].resource",
        "must be a JSON object string",
    ),
    (
        "resource with labels of the wrong type",
        definition(stage(jobs=[job(resource='{"labels": 3}')])),
        "definition.stages[0].jobs[0].resource",
        "labels must be",
    ),
    (
        "timeout without a number",
        definition(stage(jobs=[job(timeout="soon")])),
        "definition.stages[0].jobs[0].timeout",
        "is not a duration",
    ),
    (
        "review job with a second step",
        definition(stage(jobs=[job(steps=[checkpoint_step(), shell_step()])])),
        "definition.stages[0].jobs[0].steps",
        "a manual review job has one step",
    ),
    (
        "review with an unknown strategy",
        definition(stage(jobs=[job(steps=[checkpoint_step(check_strategy="most")])])),
        "definition.stages[0].jobs[0].steps[0].inputs",
        "check_strategy must be one of",
    ),
    (
        "review with a negative timeout",
        definition(stage(jobs=[job(steps=[checkpoint_step(timeout=-5)])])),
        "definition.stages[0].jobs[0].steps[0].inputs",
        "timeout must be a positive number of seconds",
    ),
    (
        "review with an unknown timeout strategy",
        definition(stage(jobs=[job(steps=[checkpoint_step(timeout_strategy="wait")])])),
        "definition.stages[0].jobs[0].steps[0].inputs",
        "timeout_strategy must be one of",
    ),
    (
        "artifacts input of the wrong type",
        definition(
            stage(
                jobs=[
                    job(
                        steps=[
                            shell_step(
                                inputs=[
                                    {"key": SHELL_SCRIPT_INPUT, "value": "true"},
                                    {"key": "artifacts", "value": 7},
                                ]
                            )
                        ]
                    )
                ]
            )
        ),
        "definition.stages[0].jobs[0].steps[0].inputs",
        "'artifacts' must be a string or a list of strings",
    ),
]


@pytest.mark.parametrize(
    ("text", "path", "problem"),
    [
        pytest.param(text, path, problem, id=name)
        for name, text, path, problem in [*INVALID, *LIFECYCLE_INVALID]
    ],
)
def test_invalid_definition_is_rejected_at_the_offending_path(
    text: str, path: str, problem: str
) -> None:
    error = parse_error(text)

    assert error.path == path
    assert problem in error.problem


def test_non_json_problem_includes_the_parser_reason() -> None:
    error = parse_error('{"stages": [}')

    assert error.problem.startswith("is not valid JSON (")
    assert "line 1 column" in error.problem


@pytest.mark.parametrize("text", [b'{"stages": []}', None, 3])
def test_non_string_definition_is_rejected(text: Any) -> None:
    assert parse_error(text).path == "definition"


def test_dependency_check_accepts_diamond_shapes() -> None:
    text = definition(
        stage("A", identifier="A"),
        stage("B", identifier="B", depends_on=["A"]),
        stage("C", identifier="C", depends_on=["A"]),
        stage("D", identifier="D", depends_on=["B", "C"]),
    )

    assert [s.depends_on for s in parse_definition(text).stages] == [
        (),
        ("A",),
        ("A",),
        ("B", "C"),
    ]


def test_parsed_specs_are_frozen() -> None:
    spec = parse_definition(definition(stage()))

    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.stages[0].name = "other"  # type: ignore[misc]


# -- the lifecycle fields of issue #3 -----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("30m", 1800), ("2h", 7200), ("30", 1800), (" 5 m ", 300)],
)
def test_durations_read_seconds_minutes_hours_and_bare_minutes(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "0", "0s", "1d", "-5m", "1.5h", "m"])
def test_durations_refuse_what_they_do_not_know(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("resource", "pool", "labels"),
    [
        (None, "default", ()),
        ('{"type": "system", "arch": "x86"}', "default", ()),
        ('{"pool": "gpu", "labels": ["cuda", "linux", "cuda"]}', "gpu", ("cuda", "linux")),
        ('{"labels": "linux, arm64"}', "default", ("arm64", "linux")),
    ],
)
def test_a_resource_names_the_pool_and_labels_of_the_agents_that_may_run_the_job(
    resource: str | None, pool: str, labels: tuple[str, ...]
) -> None:
    assert parse_resource(resource) == (pool, labels)


def test_review_inputs_have_defaults_and_accept_lists_or_comma_strings() -> None:
    assert review_of(()) == Review(
        approvers=(), check_strategy="all", timeout_seconds=86400, timeout_strategy="reject"
    )
    inputs = (("approvers", "ann, bob,\ncarl"), ("check_strategy", "any"), ("timeout", "60"))
    assert review_of(inputs) == Review(
        approvers=("ann", "bob", "carl"),
        check_strategy="any",
        timeout_seconds=60,
        timeout_strategy="reject",
    )
    assert review_of((("approvers", ["u1", " "]),)).approvers == ("u1",)


def test_a_review_job_exposes_its_checkpoint_step() -> None:
    spec = parse_definition(definition(stage(jobs=[job(steps=[checkpoint_step(timeout=60)])])))
    (only,) = spec.stages[0].jobs
    assert only.review is not None
    assert only.review.task == CHECKPOINT_TASK
