"""The JSON Schema kept for editors agrees with the parser: what one accepts the other does."""

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from stageline.schemas.pipeline_document import pipeline_to_yaml
from stageline.schemas.pipeline_yaml import json_schema_text, pipeline_from_yaml
from stageline.schemas.yaml_source import InvalidYaml
from tests.unit.schemas.test_pipeline_yaml import EVERYTHING, SMALL


def _validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(json_schema_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _schema_errors(text: str) -> list[str]:
    document: Any = yaml.safe_load(text)
    return [error.message for error in _validator().iter_errors(document)]


def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    _validator()


@pytest.mark.parametrize("text", [EVERYTHING, SMALL], ids=["everything", "small"])
def test_valid_pipelines_validate_against_the_schema(text: str) -> None:
    pipeline_from_yaml(text)
    assert _schema_errors(text) == []


ROOT = Path(__file__).resolve().parents[3]


def _documented() -> dict[str, str]:
    """The pipelines the README and examples/ show: they must stay valid."""
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", readme, re.S)
    assert blocks
    examples = {f"README[{i}]": text for i, text in enumerate(blocks)}
    examples.update({p.name: p.read_text() for p in sorted((ROOT / "examples").glob("*.yaml"))})
    return examples


@pytest.mark.parametrize(("where", "text"), list(_documented().items()))
def test_the_documented_pipelines_are_valid_and_round_trip(where: str, text: str) -> None:
    body = pipeline_from_yaml(text)
    assert pipeline_from_yaml(pipeline_to_yaml(body)) == body, where
    assert _schema_errors(text) == [], where


INVALID = {
    "unknown top key": ("name: small", "name: small\ncolour: red"),
    "name with spaces": ("name: small", "name: 'not a name'"),
    "unknown stage key": ("    jobs:\n", "    jobz:\n"),
    "stage without jobs": ("    jobs:\n      build:", "    needs: []\n    jobz:\n      build:"),
    "step without run or uses": ("- run: make\n", "- name: x\n"),
    "step with run and uses": ("- run: make\n", "- run: make\n            uses: x\n"),
    "unknown task": ("uses: official_shell_plugin", "uses: nope"),
    "bad timeout": ("timeout: 30m", "timeout: 30x"),
    "job without steps": ("          - run: make\n", "          []\n"),
    "secret with a value": ("  A: one", "  A: {secret: true, value: s3cret}"),
    "variable as a list": ("  A: one", "  A: [one]"),
    "bad variable name": ("  A: one", "  A-B: one"),
    "bad exceed action": ("stages:", "concurrency: {exceed_action: MAYBE}\nstages:"),
    "schedule uuid": ("stages:", "schedules: [{uuid: x, enable: false}]\nstages:"),
    "unknown source key": ("stages:", "sources: [{git_url: x, colour: red}]\nstages:"),
    "trigger event type": (
        "stages:",
        "triggers: [{git_url: x, events: [{type: pull, enable: true}]}]\nstages:",
    ),
}


@pytest.mark.parametrize(("old", "new"), list(INVALID.values()), ids=list(INVALID))
def test_invalid_pipelines_fail_both_the_schema_and_the_parser(old: str, new: str) -> None:
    text = SMALL.replace(old, new, 1)
    assert text != SMALL
    assert _schema_errors(text)
    with pytest.raises(InvalidYaml):
        pipeline_from_yaml(text)
