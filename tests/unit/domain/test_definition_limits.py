"""Every number, duration and nesting level of a definition is bounded when it is saved.

A value that the parser let through once broke every report of its job later (an integer too
large for the database) and, through the shared agent, other projects' jobs: so each bound is
refused here with the path of the field, never met by the engine.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from stageline.domain.errors import InvalidPipeline, excerpt
from stageline.domain.pipeline import (
    CHECKPOINT_TASK,
    MAX_DEPTH,
    MAX_INTEGER,
    MAX_JOB_TIMEOUT_SECONDS,
    MAX_REVIEW_TIMEOUT_SECONDS,
    SHELL_SCRIPT_INPUT,
    SHELL_TASK,
    job_timeout_seconds,
    parse_definition,
    parse_duration,
    review_of,
)

Doc = dict[str, Any]


def _job(**fields: Any) -> Doc:
    step = {"task": SHELL_TASK, "inputs": [{"key": SHELL_SCRIPT_INPUT, "value": "true"}]}
    return {"name": "job", "steps": [step], **fields}


def _definition(job: Doc) -> str:
    return json.dumps({"stages": [{"name": "stage", "jobs": [job]}]})


def _error(text: str) -> InvalidPipeline:
    with pytest.raises(InvalidPipeline) as info:
        parse_definition(text)
    return info.value


def test_the_poison_timeout_is_refused_naming_the_job() -> None:
    error = _error(_definition(_job(timeout="99999999999999999999h")))
    assert error.path == "definition.stages[0].jobs[0].timeout"


@pytest.mark.parametrize("timeout", ["169h", "10081m", "604801s", "10081", "999999999h"])
def test_a_job_timeout_over_seven_days_is_refused(timeout: str) -> None:
    error = _error(_definition(_job(timeout=timeout)))
    assert error.path == "definition.stages[0].jobs[0].timeout"
    assert "604800s" in error.problem


@pytest.mark.parametrize("timeout", ["168h", "10080m", "604800s", "10080"])
def test_a_job_timeout_of_exactly_seven_days_is_taken(timeout: str) -> None:
    spec = parse_definition(_definition(_job(timeout=timeout)))
    assert parse_duration(spec.stages[0].jobs[0].timeout or "") == MAX_JOB_TIMEOUT_SECONDS


def test_unicode_digits_are_not_a_duration() -> None:
    error = _error(_definition(_job(timeout="²h")))
    assert error.path == "definition.stages[0].jobs[0].timeout"


def test_a_timeout_stored_before_the_limit_is_held_to_it() -> None:
    assert job_timeout_seconds("99999999999999999999h") == MAX_JOB_TIMEOUT_SECONDS
    assert job_timeout_seconds("2h") == 7200


def _review(timeout: object) -> str:
    step = {"task": CHECKPOINT_TASK, "inputs": [{"key": "timeout", "value": timeout}]}
    return _definition({"name": "review", "steps": [step]})


@pytest.mark.parametrize(
    "timeout", [MAX_REVIEW_TIMEOUT_SECONDS + 1, str(MAX_REVIEW_TIMEOUT_SECONDS + 1), 10**30]
)
def test_a_review_timeout_over_seven_days_is_refused(timeout: object) -> None:
    error = _error(_review(timeout))
    assert error.path == "definition.stages[0].jobs[0].steps[0].inputs"
    assert "at most 604800 seconds" in error.problem


@pytest.mark.parametrize("timeout", ["99999999999999999999", "²", "1.5", 0, -3, True])
def test_a_review_timeout_that_is_no_positive_number_is_refused(timeout: object) -> None:
    error = _error(_review(timeout))
    assert error.path == "definition.stages[0].jobs[0].steps[0].inputs"


def test_a_stored_review_timeout_is_held_to_the_limit() -> None:
    assert review_of({"timeout": 10**30}).timeout_seconds == MAX_REVIEW_TIMEOUT_SECONDS
    assert review_of({"timeout": "600"}).timeout_seconds == 600


@pytest.mark.parametrize(
    ("field", "value", "path"),
    [
        ("sequence", 2**63, "definition.stages[0].jobs[0].sequence"),
        ("sequence", MAX_INTEGER + 1, "definition.stages[0].jobs[0].sequence"),
    ],
)
def test_integers_beyond_32_bits_are_refused(field: str, value: int, path: str) -> None:
    error = _error(_definition(_job(**{field: value})))
    assert error.path == path
    assert str(MAX_INTEGER) in error.problem


def test_a_step_integer_beyond_32_bits_is_refused() -> None:
    job = _job()
    job["steps"][0]["multi_step_editable"] = 2**64
    error = _error(_definition(job))
    assert error.path == "definition.stages[0].jobs[0].steps[0].multi_step_editable"


def test_a_resource_nested_5000_levels_deep_is_refused() -> None:
    error = _error(_definition(_job(resource="[" * 5000 + "]" * 5000)))
    assert error.path == "definition.stages[0].jobs[0].resource"


def test_a_resource_object_nested_deeply_is_refused() -> None:
    nested = '{"pool": "default", "x": ' + "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1) + "}"
    error = _error(_definition(_job(resource=nested)))
    assert error.path == "definition.stages[0].jobs[0].resource"


def test_resource_labels_must_be_strings() -> None:
    error = _error(_definition(_job(resource='{"labels": [{"a": 1}]}')))
    assert error.path == "definition.stages[0].jobs[0].resource"


def test_a_definition_nested_too_deeply_is_refused_where_it_happens() -> None:
    job = _job()
    job["steps"][0]["inputs"].append({"key": "deep", "value": json.loads("[" * 40 + "]" * 40)})
    error = _error(_definition(job))
    assert error.path.startswith("definition.stages[0].jobs[0].steps[0].inputs[1].value")
    assert f"deeper than {MAX_DEPTH}" in error.problem


def test_a_definition_nested_5000_levels_deep_is_a_parse_error() -> None:
    error = _error("[" * 5000 + "]" * 5000)
    assert error.path == "definition"


def test_quoted_input_is_cut_short() -> None:
    error = _error(_definition(_job(steps=[{"task": "x" * 2_000_000}])))
    assert len(error.message) < 200
    assert excerpt("y" * 100) == "y" * 64 + "…"
