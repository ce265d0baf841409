"""The YAML form of a pipeline written from the v5 one (ShowPipelineDetail's answer or a
PipelineCreate body): `pipeline_to_yaml`, and `changed_keys` to tell what applying a file
would change. `schemas.pipeline_yaml` reads the form back; what it reads, this writes alike."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import yaml

from stageline.domain.pipeline import SHELL_SCRIPT_INPUT, SHELL_TASK
from stageline.schemas.pipeline_yaml import (
    DEFAULT_MANIFEST,
    SOURCE_PARAM_KEYS,
    TOP_KEYS,
    TRIGGER_KEYS,
)


def document_of(pipeline: Mapping[str, Any]) -> dict[str, Any]:
    """The YAML document (as plain values) of a pipeline as ShowPipelineDetail answers it, or
    of a PipelineCreate body. Secret values are left out; so is what the server fills in
    (schedule `uuid`s, trigger hooks and their secrets)."""
    doc: dict[str, Any] = {}
    if pipeline.get("name"):
        doc["name"] = pipeline["name"]
    if pipeline.get("description"):
        doc["description"] = pipeline["description"]
    if pipeline.get("is_publish"):
        doc["publish"] = True
    if pipeline.get("group_id"):
        doc["group_id"] = pipeline["group_id"]
    manifest = pipeline.get("manifest_version") or DEFAULT_MANIFEST
    if manifest != DEFAULT_MANIFEST:
        doc["manifest_version"] = manifest
    variables = sorted(
        enumerate(pipeline.get("variables") or []),
        key=lambda pair: (pair[1].get("sequence") or pair[0] + 1, pair[0]),
    )
    if variables:
        doc["env"] = {v["name"]: _variable_doc(v) for _, v in variables}
    sources = [_source_doc(s) for s in pipeline.get("sources") or []]
    if sources:
        doc["sources"] = sources
    triggers = [  # what the server adds (hook, secret, pipeline_id) is not the pipeline's
        {k: v for k, v in t.items() if k in TRIGGER_KEYS and v is not None}
        for t in pipeline.get("triggers") or []
    ]
    if triggers:
        doc["triggers"] = triggers
    schedules = [
        {k: v for k, v in s.items() if k != "uuid"} for s in pipeline.get("schedules") or []
    ]
    if schedules:
        doc["schedules"] = schedules
    concurrency = {
        k: v for k, v in (pipeline.get("concurrency_control") or {}).items() if v is not None
    }
    if concurrency:
        doc["concurrency"] = concurrency
    doc["stages"] = stages_doc(pipeline["definition"])
    return doc


def _variable_doc(variable: Mapping[str, Any]) -> Any:
    spec: dict[str, Any] = {}
    if variable.get("is_secret"):
        spec["secret"] = True
    elif variable.get("value"):
        spec["value"] = variable["value"]
    if variable.get("type", "string") != "string":
        spec["type"] = variable["type"]
    if variable.get("limits"):
        spec["options"] = [str(limit) for limit in variable["limits"]]
    if variable.get("is_runtime"):
        spec["runtime"] = True
    if variable.get("is_reset"):
        spec["reset"] = True
    if variable.get("description"):
        spec["description"] = variable["description"]
    if variable.get("latest_value") is not None:
        spec["latest_value"] = variable["latest_value"]
    if set(spec) <= {"value"}:
        return spec.get("value", "")
    return spec


def _source_doc(source: Mapping[str, Any]) -> dict[str, Any]:
    item: dict[str, Any] = {}
    if source.get("type", "code") != "code":
        item["type"] = source["type"]
    params = source.get("params") or {}
    item.update({k: params[k] for k in SOURCE_PARAM_KEYS if params.get(k) is not None})
    return item


def stages_doc(definition: str) -> list[dict[str, Any]]:
    """The `stages` of the YAML form of a `definition` JSON string (assumed valid)."""
    stages = json.loads(definition).get("stages") or []
    return [_stage_doc(stage, index) for index, stage in enumerate(stages)]


def _stage_doc(stage: Mapping[str, Any], index: int) -> dict[str, Any]:
    doc: dict[str, Any] = {"name": stage["name"]}
    if stage.get("identifier"):
        doc["id"] = stage["identifier"]
    if stage.get("sequence") is not None and stage["sequence"] != index:
        doc["sequence"] = stage["sequence"]
    if stage.get("depends_on"):
        doc["needs"] = list(stage["depends_on"])
    if stage.get("run_always"):
        doc["always"] = True
    if stage.get("pre"):
        doc["pre"] = [_step_doc(step, i) for i, step in enumerate(stage["pre"])]
    doc["jobs"] = {
        job.get("identifier") or f"JOB_{index}_{j}": _job_doc(job, j)
        for j, job in enumerate(stage.get("jobs") or [])
    }
    if stage.get("post"):
        doc["post"] = [_step_doc(step, i) for i, step in enumerate(stage["post"])]
    return doc


def _job_doc(job: Mapping[str, Any], index: int) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    if job.get("name") != job.get("identifier"):
        doc["name"] = job["name"]
    if job.get("sequence") is not None and job["sequence"] != index:
        doc["sequence"] = job["sequence"]
    if job.get("depends_on"):
        doc["needs"] = list(job["depends_on"])
    if job.get("condition"):
        doc["if"] = job["condition"]
    if job.get("timeout"):
        doc["timeout"] = job["timeout"]
    if job.get("resource"):
        doc["resource"] = _resource_doc(job["resource"])
    if job.get("async") in (True, "true"):
        doc["async"] = True
    doc["steps"] = [_step_doc(step, i) for i, step in enumerate(job.get("steps") or [])]
    return doc


def _resource_doc(resource: str) -> Any:
    """A mapping when the JSON string is exactly the compact form of one, else the string."""
    try:
        value = json.loads(resource)
    except ValueError:
        return resource
    compact = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return value if isinstance(value, dict) and compact == resource else resource


def _step_doc(step: Mapping[str, Any], index: int) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    if step.get("name"):
        doc["name"] = step["name"]
    if step.get("identifier"):
        doc["id"] = step["identifier"]
    if step.get("sequence") is not None and step["sequence"] != index:
        doc["sequence"] = step["sequence"]
    inputs = [(i["key"], i.get("value")) for i in step.get("inputs") or []]
    if (
        step.get("task") == SHELL_TASK
        and inputs
        and inputs[0][0] == SHELL_SCRIPT_INPUT
        and isinstance(inputs[0][1], str)
    ):
        doc["run"] = inputs[0][1]
        inputs = inputs[1:]
    else:
        doc["uses"] = step.get("task")
    if inputs:
        doc["with"] = dict(inputs)
    if step.get("official_task_version"):
        doc["version"] = step["official_task_version"]
    if step.get("business_type"):
        doc["business_type"] = step["business_type"]
    if step.get("multi_step_editable"):
        doc["multi_step_editable"] = step["multi_step_editable"]
    return doc


class _Dumper(yaml.SafeDumper):
    """Block style, scripts of several lines as literal blocks (`|`), keys in our order."""


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _text)

SCHEMA_COMMENT = "# yaml-language-server: $schema={url}\n"


def dump_document(doc: Mapping[str, Any], *, schema_url: str | None = None) -> str:
    text = yaml.dump(
        dict(doc),
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=100,
    )
    return (SCHEMA_COMMENT.format(url=schema_url) if schema_url else "") + text


def pipeline_to_yaml(pipeline: Mapping[str, Any], *, schema_url: str | None = None) -> str:
    """The YAML form of a pipeline (ShowPipelineDetail's answer or a PipelineCreate body)."""
    return dump_document(document_of(pipeline), schema_url=schema_url)


def changed_keys(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """The top-level keys of two YAML documents whose values differ, in document order."""
    return [key for key in TOP_KEYS if before.get(key) != after.get(key)]
