"""Pipelines as code: the YAML form of a pipeline, to and from the v5 PipelineDTO.

The YAML follows the CodeArts pipeline-as-code shape where one exists (`env`, `jobs.<job_id>`
with `name`, `needs`, `if`, `steps` of `name`/`uses`/`with`) and adds `stages` around the jobs,
a short `run:` form for shell steps, and the pipeline's sources, triggers, schedules and
concurrency under their v5 names. It maps one to one onto the v5 fields: `pipeline_from_yaml`
gives a validated PipelineCreate-shaped dict, and `schemas.pipeline_document` writes one back
from what ShowPipelineDetail answers. Every error names the YAML line and column: a field-path
error of the v5 validation is mapped back to the node it came from.

A secret variable is written `NAME: {secret: true}`, never with its value: the value is set
through the API or the web UI and kept when the YAML is applied again.
"""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources
from typing import Any

from pydantic import ValidationError

from stageline.domain.errors import InvalidInput, InvalidPipeline, excerpt
from stageline.domain.pipeline import SHELL_SCRIPT_INPUT, SHELL_TASK, parse_definition
from stageline.domain.schedules import parse_schedules
from stageline.domain.variables import reserved, reserved_problem
from stageline.schemas.pipelines import CodeSourceParams, PipelineCreate, PipelineTrigger
from stageline.schemas.yaml_source import Document, InvalidYaml, Mark, YamlPath, load

TOP_KEYS = (
    "name",
    "description",
    "publish",
    "group_id",
    "manifest_version",
    "env",
    "sources",
    "triggers",
    "schedules",
    "concurrency",
    "stages",
)
STAGE_KEYS = ("name", "id", "sequence", "needs", "always", "pre", "jobs", "post")
JOB_KEYS = ("name", "sequence", "needs", "if", "timeout", "resource", "async", "steps")
STEP_KEYS = ("name", "id", "sequence", "uses", "run", "with", "version", "business_type",
             "multi_step_editable")  # fmt: skip
VARIABLE_KEYS = (
    "value",
    "secret",
    "runtime",
    "type",
    "options",
    "description",
    "reset",
    "latest_value",
)
SOURCE_PARAM_KEYS = tuple(CodeSourceParams.model_fields)
TRIGGER_SERVER_KEYS = ("hook_id", "security_token", "callback_url")
TRIGGER_KEYS = tuple(k for k in PipelineTrigger.model_fields if k not in TRIGGER_SERVER_KEYS)
DEFAULT_MANIFEST = "3.0"
KEEP_SECRET = "******"
"""The value ShowPipelineDetail shows for a secret, which UpdatePipelineInfo reads as "keep
the stored value": what a secret variable applied from YAML is sent with."""
_V5_PATH = re.compile(r"^([A-Za-z_][\w.\[\]]*): ")


SCHEMA_FILE = "pipeline.schema.json"
"""The JSON Schema of the YAML form, beside this module; served at `/schemas/pipeline.json`."""


@cache
def json_schema_text() -> str:
    """The JSON Schema (draft 2020-12) of the YAML form, as kept in the package."""
    return resources.files("stageline.schemas").joinpath(SCHEMA_FILE).read_text("utf-8")


# -- YAML -> v5 ---------------------------------------------------------------------------------


def pipeline_from_yaml(text: str) -> dict[str, Any]:
    """The PipelineCreate body a pipeline file describes, validated as the API would (the
    definition, variables, schedules); `InvalidYaml` naming the line and column otherwise.
    Secret variables have an empty value: the caller keeps the stored one."""
    document = load(text)
    reader = _Reader(document)
    body = reader.pipeline(require_name=True)
    reader.validate(body)
    return body


def definition_from_yaml(text: str) -> str:
    """The `definition` JSON string of a pipeline file kept in a repository: only its stages
    are used (`name` may be left out); the rest is still checked."""
    document = load(text)
    reader = _Reader(document)
    body = reader.pipeline(require_name=False)
    reader.validate_definition(body["definition"])
    return str(body["definition"])


class _Reader:
    """One conversion: the document, and for each v5 path made so far the YAML path it came
    from (to place the v5 validation's errors)."""

    def __init__(self, document: Document) -> None:
        self.document = document
        self.origins: dict[str, YamlPath] = {}

    # errors

    def error(self, path: YamlPath, problem: str, *, key: bool = False) -> InvalidYaml:
        return self.document.error(path, problem, key=key)

    def placed(self, message: str) -> InvalidYaml:
        """A v5 validation message (`definition.stages[0].name: is required`) at its YAML."""
        match = _V5_PATH.match(message)
        if match is None:
            return InvalidYaml(message, mark=Mark(1, 1))
        v5_path, problem = match.group(1), message[match.end() :]
        return self.at_v5(v5_path, problem)

    def at_v5(self, v5_path: str, problem: str) -> InvalidYaml:
        probe = v5_path
        while probe:
            if probe in self.origins:
                # the rest of the v5 path (`[0]`, `.exceed_action`) is often the YAML's too
                path = self.origins[probe]
                for part in _parts(v5_path[len(probe) :]):
                    if (*path, part) not in self.document.values:
                        break
                    path = (*path, part)
                return self.error(path, problem)
            cut = max(probe.rfind("."), probe.rfind("["))
            probe = probe[:cut] if cut > 0 else ""
        return InvalidYaml(f"{v5_path}: {problem}", mark=Mark(1, 1))

    def origin(self, v5_path: str, yaml_path: YamlPath) -> None:
        self.origins[v5_path] = yaml_path

    # shapes

    def mapping(self, value: object, path: YamlPath, keys: tuple[str, ...]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.error(path, f"must be a mapping (got {_kind(value)})")
        for key in value:
            if key not in keys:
                raise self.error(
                    (*path, key), f"unknown key '{excerpt(key)}' (known: {', '.join(keys)})",
                    key=True,
                )  # fmt: skip
        return value

    def sequence(self, value: object, path: YamlPath) -> list[Any]:
        if not isinstance(value, list):
            raise self.error(path, f"must be a list (got {_kind(value)})")
        return value

    def text(self, value: object, path: YamlPath) -> str:
        if not isinstance(value, str):
            raise self.error(path, f"must be a string (got {_kind(value)})")
        return value

    def flag(self, value: object, path: YamlPath) -> bool:
        if not isinstance(value, bool):
            raise self.error(path, f"must be true or false (got {_kind(value)})")
        return value

    def names(self, value: object, path: YamlPath) -> list[str]:
        """`needs`: one name or a list of names."""
        items = [value] if isinstance(value, str) else self.sequence(value, path)
        return [self.text(item, (*path, i)) for i, item in enumerate(items)]

    def scalar_text(self, value: object, path: YamlPath) -> str:
        """A variable's value: any scalar, as text (`true`, `8080`)."""
        if isinstance(value, bool):
            return "true" if value else "false"
        if value is None:
            return ""
        if isinstance(value, str | int | float):
            return str(value)
        raise self.error(path, f"must be a string, a number or a boolean (got {_kind(value)})")

    # the pipeline

    def pipeline(self, *, require_name: bool) -> dict[str, Any]:
        root = self.mapping(self.document.value, (), TOP_KEYS)
        body: dict[str, Any] = {}
        if "name" in root:
            body["name"] = self.text(root["name"], ("name",))
            self.origin("name", ("name",))
        elif require_name:
            raise self.error((), "'name' is required")
        if root.get("description") is not None:
            body["description"] = self.text(root["description"], ("description",))
            self.origin("description", ("description",))
        body["is_publish"] = self.flag(root.get("publish", False), ("publish",))
        self.origin("is_publish", ("publish",))
        if root.get("group_id") is not None:
            body["group_id"] = self.text(root["group_id"], ("group_id",))
            self.origin("group_id", ("group_id",))
        manifest = root.get("manifest_version", DEFAULT_MANIFEST)
        body["manifest_version"] = self.text(manifest, ("manifest_version",))
        self.origin("manifest_version", ("manifest_version",))
        body["variables"] = self.variables(root.get("env"))
        body["sources"] = self.sources(root.get("sources"))
        body["triggers"] = self.free_list(root.get("triggers"), "triggers", TRIGGER_KEYS)
        body["schedules"] = self.free_list(root.get("schedules"), "schedules", None)
        if root.get("concurrency") is not None:
            path: YamlPath = ("concurrency",)
            body["concurrency_control"] = self.mapping(
                root["concurrency"], path, ("concurrency_number", "exceed_action", "enable")
            )
            self.origin("concurrency_control", path)
        if "stages" not in root:
            raise self.error((), "'stages' is required")
        body["definition"] = self.definition(root["stages"])
        return body

    def variables(self, value: object) -> list[dict[str, Any]]:
        if value is None:
            return []
        env = self.mapping(value, ("env",), tuple(value) if isinstance(value, dict) else ())
        variables = []
        for index, (name, raw) in enumerate(env.items()):
            path: YamlPath = ("env", name)
            self.origin(f"variables[{index}]", path)
            self.origin(f"variables[{index}].name", path)
            if reserved(name):
                raise self.error(path, reserved_problem(name), key=True)
            variable: dict[str, Any] = {
                "name": name,
                "sequence": index + 1,
                "type": "string",
                "value": "",
                "is_secret": False,
                "description": "",
                "is_runtime": False,
                "limits": [],
                "is_reset": False,
                "latest_value": None,
            }
            if not isinstance(raw, dict):
                variable["value"] = self.scalar_text(raw, path)
                variables.append(variable)
                continue
            spec = self.mapping(raw, path, VARIABLE_KEYS)
            secret = self.flag(spec.get("secret", False), (*path, "secret"))
            if secret and spec.get("value") not in (None, ""):
                raise self.error(
                    (*path, "value"),
                    "a secret's value is never written in YAML: set it through the API or the"
                    " web UI (it is kept when this file is applied again)",
                )
            for key, field in (("value", "value"), ("latest_value", "latest_value")):
                if spec.get(key) is not None:
                    variable[field] = self.scalar_text(spec[key], (*path, key))
                    self.origin(f"variables[{index}].{field}", (*path, key))
            for key, field in (("runtime", "is_runtime"), ("reset", "is_reset")):
                if key in spec:
                    variable[field] = self.flag(spec[key], (*path, key))
            variable["is_secret"] = secret
            if spec.get("type") is not None:
                variable["type"] = self.text(spec["type"], (*path, "type"))
                self.origin(f"variables[{index}].type", (*path, "type"))
            if spec.get("description") is not None:
                variable["description"] = self.text(spec["description"], (*path, "description"))
                self.origin(f"variables[{index}].description", (*path, "description"))
            if spec.get("options") is not None:
                options = self.sequence(spec["options"], (*path, "options"))
                variable["limits"] = [
                    self.scalar_text(o, (*path, "options", i)) for i, o in enumerate(options)
                ]
                self.origin(f"variables[{index}].limits", (*path, "options"))
            variables.append(variable)
        return variables

    def sources(self, value: object) -> list[dict[str, Any]]:
        if value is None:
            return []
        sources = []
        for index, raw in enumerate(self.sequence(value, ("sources",))):
            path: YamlPath = ("sources", index)
            item = self.mapping(raw, path, ("type", *SOURCE_PARAM_KEYS))
            params = {key: item[key] for key in SOURCE_PARAM_KEYS if item.get(key) is not None}
            self.origin(f"sources[{index}]", path)
            for key in params:
                self.origin(f"sources[{index}].params.{key}", (*path, key))
            sources.append({"type": item.get("type", "code"), "params": params})
        return sources

    def free_list(
        self, value: object, key: str, keys: tuple[str, ...] | None
    ) -> list[dict[str, Any]]:
        """Triggers and schedules: their v5 objects, less what the server fills in."""
        if value is None:
            return []
        items = []
        for index, raw in enumerate(self.sequence(value, (key,))):
            path: YamlPath = (key, index)
            allowed = keys if keys is not None else tuple(raw) if isinstance(raw, dict) else ()
            item = self.mapping(raw, path, tuple(k for k in allowed if k != "uuid"))
            self.origin(f"{key}[{index}]", path)
            for field in item:
                self.origin(f"{key}[{index}].{field}", (*path, field))
            items.append(dict(item))
        return items

    # the definition

    def definition(self, value: object) -> str:
        stages = []
        for index, raw in enumerate(self.sequence(value, ("stages",))):
            stages.append(self.stage(raw, ("stages", index), f"definition.stages[{index}]"))
        self.origin("definition.stages", ("stages",))
        self.origin("definition", ("stages",))
        return json.dumps({"stages": stages}, ensure_ascii=False, separators=(",", ":"))

    def stage(self, raw: object, path: YamlPath, v5: str) -> dict[str, Any]:
        item = self.mapping(raw, path, STAGE_KEYS)
        self.origin(v5, path)
        if "name" not in item:
            raise self.error(path, "'name' is required")
        stage: dict[str, Any] = {"name": item["name"]}
        self.origin(f"{v5}.name", (*path, "name"))
        if "id" in item:
            stage["identifier"] = item["id"]
            self.origin(f"{v5}.identifier", (*path, "id"))
        stage["sequence"] = item.get("sequence", path[-1])
        self.origin(f"{v5}.sequence", (*path, "sequence"))
        # what is empty or false is left out, as the writer leaves it out: one v5 form
        if item.get("needs") is not None:
            needs = self.names(item["needs"], (*path, "needs"))
            if needs:
                stage["depends_on"] = needs
            self.origin(f"{v5}.depends_on", (*path, "needs"))
        if item.get("always") is not None and self.flag(item["always"], (*path, "always")):
            stage["run_always"] = True
        for key in ("pre", "post"):
            if item.get(key) is not None:
                steps = self.steps(item[key], (*path, key), f"{v5}.{key}")
                if steps:
                    stage[key] = steps
        if item.get("jobs") is None:
            raise self.error(path, "'jobs' is required")
        jobs_path = (*path, "jobs")
        jobs = self.mapping(item["jobs"], jobs_path, tuple(item["jobs"] or ()))
        self.origin(f"{v5}.jobs", jobs_path)
        stage["jobs"] = [
            self.job(job_id, raw_job, (*jobs_path, job_id), f"{v5}.jobs[{index}]", index)
            for index, (job_id, raw_job) in enumerate(jobs.items())
        ]
        return stage

    def job(self, job_id: str, raw: object, path: YamlPath, v5: str, index: int) -> dict[str, Any]:
        item = self.mapping(raw, path, JOB_KEYS)
        self.origin(v5, path)
        self.origin(f"{v5}.identifier", path)
        job: dict[str, Any] = {
            "name": item.get("name", job_id),
            "identifier": job_id,
            "sequence": item.get("sequence", index),
        }
        self.origin(f"{v5}.name", (*path, "name") if "name" in item else path)
        self.origin(f"{v5}.sequence", (*path, "sequence"))
        if item.get("needs") is not None:
            needs = self.names(item["needs"], (*path, "needs"))
            if needs:
                job["depends_on"] = needs
            self.origin(f"{v5}.depends_on", (*path, "needs"))
        if item.get("if") is not None:
            job["condition"] = item["if"]
            self.origin(f"{v5}.condition", (*path, "if"))
        if item.get("timeout") is not None:
            timeout = item["timeout"]
            job["timeout"] = str(timeout) if isinstance(timeout, int) else timeout
            self.origin(f"{v5}.timeout", (*path, "timeout"))
        if item.get("resource") is not None:
            resource = item["resource"]
            job["resource"] = (
                json.dumps(resource, ensure_ascii=False, separators=(",", ":"))
                if isinstance(resource, dict)
                else resource
            )
            self.origin(f"{v5}.resource", (*path, "resource"))
        if item.get("async") is not None and self.flag(item["async"], (*path, "async")):
            job["async"] = True
        if item.get("steps") is None:
            raise self.error(path, "'steps' is required")
        job["steps"] = self.steps(item["steps"], (*path, "steps"), f"{v5}.steps")
        return job

    def steps(self, value: object, path: YamlPath, v5: str) -> list[dict[str, Any]]:
        self.origin(v5, path)
        return [
            self.step(raw, (*path, index), f"{v5}[{index}]", index)
            for index, raw in enumerate(self.sequence(value, path))
        ]

    def step(self, raw: object, path: YamlPath, v5: str, index: int) -> dict[str, Any]:
        item = self.mapping(raw, path, STEP_KEYS)
        self.origin(v5, path)
        step: dict[str, Any] = {}
        if "name" in item:
            step["name"] = item["name"]
            self.origin(f"{v5}.name", (*path, "name"))
        if "id" in item:
            step["identifier"] = item["id"]
            self.origin(f"{v5}.identifier", (*path, "id"))
        step["sequence"] = item.get("sequence", index)
        self.origin(f"{v5}.sequence", (*path, "sequence"))
        given = item.get("with")
        inputs = self.mapping(given, (*path, "with"), tuple(given)) if given is not None else {}
        self.origin(f"{v5}.inputs", (*path, "with") if given is not None else path)
        pairs = list(inputs.items())
        if "run" in item:
            if "uses" in item:
                raise self.error((*path, "uses"), "a step has either 'run' or 'uses', not both")
            if SHELL_SCRIPT_INPUT in inputs:
                raise self.error(
                    (*path, "with", SHELL_SCRIPT_INPUT), "the script is given by 'run'", key=True
                )
            step["task"] = SHELL_TASK
            pairs.insert(0, (SHELL_SCRIPT_INPUT, item["run"]))
            self.origin(f"{v5}.inputs", (*path, "run"))
        elif "uses" in item:
            step["task"] = item["uses"]
            self.origin(f"{v5}.task", (*path, "uses"))
        else:
            raise self.error(path, "a step needs 'run' (a shell script) or 'uses' (a task)")
        step["inputs"] = [{"key": key, "value": value} for key, value in pairs]
        if item.get("version") is not None:
            step["official_task_version"] = item["version"]
            self.origin(f"{v5}.official_task_version", (*path, "version"))
        if item.get("business_type") is not None:
            step["business_type"] = item["business_type"]
            self.origin(f"{v5}.business_type", (*path, "business_type"))
        if item.get("multi_step_editable") is not None:
            step["multi_step_editable"] = item["multi_step_editable"]
            self.origin(f"{v5}.multi_step_editable", (*path, "multi_step_editable"))
        return step

    # validation, as the API does it

    def validate_definition(self, definition: str) -> None:
        try:
            parse_definition(definition)
        except InvalidPipeline as error:
            raise self.at_v5(error.path, error.problem) from None

    def validate(self, body: dict[str, Any]) -> None:
        try:
            PipelineCreate.model_validate(body)
        except ValidationError as error:
            first = error.errors()[0]
            where = "".join(
                f"[{part}]" if isinstance(part, int) else f".{part}" for part in first["loc"]
            ).lstrip(".")
            raise self.at_v5(where, first["msg"]) from None
        self.validate_definition(body["definition"])
        schedules = [{**s, "uuid": f"S{index}"} for index, s in enumerate(body["schedules"])]
        try:
            parse_schedules(schedules)
        except InvalidInput as error:
            raise self.placed(error.message) from None


def _parts(suffix: str) -> list[str | int]:
    """`[0].key` -> [0, "key"]."""
    return [
        int(index) if index else name
        for index, name in re.findall(r"\[(\d+)\]|\.?([^.\[\]]+)", suffix)
    ]


def _kind(value: object) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "a mapping"
