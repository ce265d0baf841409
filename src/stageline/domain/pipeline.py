"""Parse and validate a CodeArts Pipeline `definition` (manifest 3.0) into frozen dataclasses.

`parse_definition` turns the JSON string of stages -> jobs -> steps into a `PipelineSpec`, or
raises `InvalidPipeline` whose `path` names the offending field (e.g. `definition.stages[0].name`).

Every number and duration is bounded here, at create time, so that nothing later (a report, a
sweep, a 32-bit column) meets a value it cannot hold: one pipeline saved with an absurd timeout
must not be able to break the reports of the agent that runs it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from stageline.domain.conditions import InvalidCondition, parse_condition
from stageline.domain.errors import InvalidPipeline, excerpt

SHELL_TASK = "official_shell_plugin"
SHELL_SCRIPT_INPUT = "OFFICIAL_SHELL_SCRIPT_INPUT"
ARTIFACTS_INPUT = "artifacts"
"""Optional shell-step input: glob patterns (list, or comma/newline separated) to upload."""
AUTO_TRIGGER_TASK = "official_devcloud_autoTrigger"
CHECKPOINT_TASK = "official_devcloud_checkpoint"
"""Manual review: as a job's only step it pauses the job; in a stage's `pre` it gates the stage."""
SUPPORTED_TASKS: frozenset[str] = frozenset({SHELL_TASK, AUTO_TRIGGER_TASK, CHECKPOINT_TASK})
CHECK_STRATEGIES = frozenset({"all", "any"})
TIMEOUT_STRATEGIES = frozenset({"reject", "pass"})
DEFAULT_REVIEW_TIMEOUT_SECONDS = 24 * 3600
MAX_JOB_TIMEOUT_SECONDS = 7 * 24 * 3600
"""The longest a job's `timeout` may be: 7 days (`168h`, `10080m`, `604800s`)."""
MAX_REVIEW_TIMEOUT_SECONDS = 7 * 24 * 3600
"""The longest a manual review may wait for a decision: 7 days (604800 seconds)."""
DEFAULT_POOL = "default"
# ASCII digits only ("²".isdigit() is true, and int("²") fails); at most 12 of them, so that a
# thousand-digit number is refused by its shape instead of being converted first.
_DURATION = re.compile(r"^\s*([0-9]{1,12})\s*([smh]?)\s*$", re.ASCII)
_SECONDS = re.compile(r"^[0-9]{1,12}$", re.ASCII)
_DURATION_UNITS = {"s": 1, "": 60, "m": 60, "h": 3600}

NAME_MAX_LENGTH = 128
MAX_INTEGER = 2**31 - 1
"""The largest `sequence` or other integer a definition may hold (they live in 32-bit columns)."""
MAX_DEPTH = 32
"""How deeply arrays and objects may nest in a definition (stages -> jobs -> steps -> inputs
is 6 levels; the rest is room for input values)."""
RESOURCE_MAX_LENGTH = 4096
MAX_LIST_PARTS = 100
"""Stages of a definition, jobs of a stage, steps of a job (and of a stage's pre or post)."""
MAX_JOBS = 1000
MAX_STEPS = 10_000
"""Jobs and steps of a whole definition: each is a row of every run, so a definition that fits
in a request's 12 MB cannot make a run of hundreds of thousands of rows."""
MAX_LABELS = 32
LABEL_MAX_LENGTH = 64
_ROOT = "definition"

_T = TypeVar("_T")


@dataclass(frozen=True)
class StepSpec:
    """One step (plugin invocation) of a job, or of a stage's `pre`/`post` list."""

    name: str
    identifier: str
    task: str
    sequence: int
    inputs: tuple[tuple[str, Any], ...]
    business_type: str = "Normal"
    official_task_version: str | None = None
    multi_step_editable: int = 0

    def input(self, key: str) -> Any | None:
        """The value of input `key`, or None when the step has no such input."""
        for input_key, value in self.inputs:
            if input_key == key:
                return value
        return None

    @property
    def script(self) -> str | None:
        """The shell script of a `SHELL_TASK` step; None for any other task."""
        if self.task != SHELL_TASK:
            return None
        value = self.input(SHELL_SCRIPT_INPUT)
        return value if isinstance(value, str) else None


@dataclass(frozen=True)
class Review:
    """The inputs of a manual review (`CHECKPOINT_TASK`) step."""

    approvers: tuple[str, ...]
    """User IDs or names who may pass or refuse; empty means any developer of the project."""
    check_strategy: str
    """`all`: every approver must pass; `any`: one suffices."""
    timeout_seconds: int
    timeout_strategy: str
    """`reject` (FAILED) or `pass` (COMPLETED) when nobody decided in time."""


def review_of(inputs: Mapping[str, Any] | tuple[tuple[str, Any], ...]) -> Review:
    """Read a checkpoint's inputs (already validated at create time, so defaults fill gaps)."""
    values = dict(inputs)
    return Review(
        approvers=_names(values.get("approvers")),
        check_strategy=str(values.get("check_strategy") or "all"),
        timeout_seconds=_review_seconds(values.get("timeout")) or DEFAULT_REVIEW_TIMEOUT_SECONDS,
        timeout_strategy=str(values.get("timeout_strategy") or "reject"),
    )


def _review_seconds(value: object) -> int | None:
    """A review's `timeout` in seconds (an integer or a string of digits), at most the cap;
    None when absent or not a positive number. A value saved before the cap is held to it."""
    if isinstance(value, str) and _SECONDS.match(value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return None
    return min(value, MAX_REVIEW_TIMEOUT_SECONDS)


def _names(value: object) -> tuple[str, ...]:
    """A list, or a comma/newline separated string, of names; blanks dropped."""
    items = value if isinstance(value, list) else re.split(r"[,\n]", str(value or ""))
    return tuple(str(item).strip() for item in items if str(item).strip())


def artifact_patterns(inputs: Mapping[str, Any] | tuple[tuple[str, Any], ...]) -> tuple[str, ...]:
    return _names(dict(inputs).get(ARTIFACTS_INPUT))


def parse_duration(text: str, *, maximum: int = MAX_JOB_TIMEOUT_SECONDS) -> int:
    """`90s`, `30m`, `2h`, or a bare number of minutes, in seconds, at most `maximum`;
    ValueError otherwise."""
    match = _DURATION.match(text)
    if match is None or int(match.group(1)) == 0:
        raise ValueError(
            f"'{excerpt(text)}' is not a duration such as 90s, 30m, 2h or 30 (minutes)"
        )
    seconds = int(match.group(1)) * _DURATION_UNITS[match.group(2)]
    if seconds > maximum:
        raise ValueError(
            f"'{excerpt(text)}' is longer than the most allowed, {maximum}s ({maximum // 3600}h)"
        )
    return seconds


def job_timeout_seconds(text: str) -> int:
    """A stored job's `timeout` in seconds. Definitions are checked when they are saved; one
    saved before a limit existed is held to the limit here rather than failing a report."""
    try:
        return parse_duration(text)
    except ValueError:
        return MAX_JOB_TIMEOUT_SECONDS


_RESOURCE_SHAPE = 'must be a JSON object string such as {"pool": "default"}'


def parse_resource(text: str | None) -> tuple[str, tuple[str, ...]]:
    """The agent pool and labels a job's `resource` JSON asks for (other keys are ignored)."""
    if not text:
        return DEFAULT_POOL, ()
    if len(text) > RESOURCE_MAX_LENGTH:
        raise ValueError(f"must be at most {RESOURCE_MAX_LENGTH} characters (got {len(text)})")
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise ValueError(_RESOURCE_SHAPE) from None
    if not isinstance(value, dict):
        raise ValueError(_RESOURCE_SHAPE)
    try:
        _check_depth(value, "resource")
    except InvalidPipeline as error:
        raise ValueError(error.problem) from None
    pool = value.get("pool") or DEFAULT_POOL
    if not isinstance(pool, str) or len(pool) > 64:
        raise ValueError("pool must be a string of at most 64 characters")
    labels = value.get("labels")
    if labels is not None and not isinstance(labels, list | str):
        raise ValueError("labels must be a list of strings or a comma separated string")
    if isinstance(labels, list) and not all(isinstance(label, str) for label in labels):
        raise ValueError("labels must be a list of strings or a comma separated string")
    names = tuple(sorted(set(_names(labels))))
    if len(names) > MAX_LABELS or any(len(name) > LABEL_MAX_LENGTH for name in names):
        raise ValueError(
            f"labels: at most {MAX_LABELS}, each at most {LABEL_MAX_LENGTH} characters"
        )
    return pool, names


@dataclass(frozen=True)
class JobSpec:
    name: str
    identifier: str
    sequence: int
    steps: tuple[StepSpec, ...]
    depends_on: tuple[str, ...] = ()
    condition: str | None = None
    resource: str | None = None
    timeout: str | None = None
    is_async: bool = False

    @property
    def review(self) -> StepSpec | None:
        """The checkpoint step of a manual review job, else None."""
        return next((s for s in self.steps if s.task == CHECKPOINT_TASK), None)


@dataclass(frozen=True)
class StageSpec:
    name: str
    identifier: str
    sequence: int
    jobs: tuple[JobSpec, ...]
    pre: tuple[StepSpec, ...] = ()
    post: tuple[StepSpec, ...] = ()
    depends_on: tuple[str, ...] = ()
    run_always: bool = False


@dataclass(frozen=True)
class PipelineSpec:
    stages: tuple[StageSpec, ...]

    def stage(self, identifier: str) -> StageSpec | None:
        """The stage with this identifier, or None."""
        for stage in self.stages:
            if stage.identifier == identifier:
                return stage
        return None

    def jobs(self) -> Iterator[tuple[StageSpec, JobSpec]]:
        """Every job with its stage, in stage order then job order."""
        for stage in self.stages:
            for job in stage.jobs:
                yield stage, job


def parse_definition(text: str) -> PipelineSpec:
    """Parse a CodeArts `definition` JSON string; raise `InvalidPipeline` on the first problem."""
    if not isinstance(text, str):
        raise InvalidPipeline(_ROOT, f"must be a JSON string (got {type(text).__name__})")
    try:
        document = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        reason = (
            f"{exc.msg} at line {exc.lineno} column {exc.colno}"
            if isinstance(exc, json.JSONDecodeError)
            else str(exc) or type(exc).__name__
        )
        raise InvalidPipeline(_ROOT, f"is not valid JSON ({reason})") from None
    _check_depth(document, _ROOT)
    return _Parser().parse(document)


# --- internals -----------------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def _check_depth(document: object, root: str, limit: int = MAX_DEPTH) -> None:
    """Refuse arrays and objects nested deeper than `limit`, and text holding a NUL character
    (PostgreSQL stores neither in text nor in JSON), naming where; without recursion, so that
    the check itself cannot run out of stack."""
    pending: list[tuple[object, str, int]] = [(document, root, 1)]
    while pending:
        value, path, depth = pending.pop()
        if isinstance(value, str):
            if "\x00" in value:
                raise InvalidPipeline(path, "must not hold a NUL character (\\u0000)")
            continue
        if isinstance(value, dict):
            if any("\x00" in key for key in value):
                raise InvalidPipeline(path, "keys must not hold a NUL character (\\u0000)")
            children: list[tuple[object, str]] = [(v, f"{path}.{k}") for k, v in value.items()]
        elif isinstance(value, list):
            children = [(v, f"{path}[{i}]") for i, v in enumerate(value)]
        else:
            continue
        if depth > limit:
            raise InvalidPipeline(path, f"nests arrays and objects deeper than {limit} levels")
        pending.extend((child, child_path, depth + 1) for child, child_path in children)


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _wrong_type(path: str, expected: str, value: object) -> InvalidPipeline:
    return InvalidPipeline(path, f"must be {expected} (got {_json_type(value)})")


def _object(value: object, path: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise _wrong_type(path, "an object", value)
    return value


def _array(value: object, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise _wrong_type(path, "an array", value)
    return value


def _parts(value: object, path: str, what: str) -> list[Any]:
    """An array of a definition's stages, jobs or steps: at most MAX_LIST_PARTS of them."""
    parts = _array(value, path)
    if len(parts) > MAX_LIST_PARTS:
        raise InvalidPipeline(path, f"at most {MAX_LIST_PARTS} {what}, not {len(parts)}")
    return parts


def _optional_array(obj: Mapping[str, Any], key: str, path: str) -> list[Any]:
    value = obj.get(key)
    return [] if value is None else _array(value, f"{path}.{key}")


def _optional_str(obj: Mapping[str, Any], key: str, path: str) -> str | None:
    """A string field where null, absent and "" all mean "not set"."""
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _wrong_type(f"{path}.{key}", "a string", value)
    return value or None


def _optional_int(obj: Mapping[str, Any], key: str, path: str, default: int) -> int:
    """An integer field within 0..MAX_INTEGER (null/absent = `default`)."""
    value = obj.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise _wrong_type(f"{path}.{key}", "an integer", value)
    if value < 0:
        raise InvalidPipeline(f"{path}.{key}", f"must be >= 0 (got {excerpt(str(value))})")
    if value > MAX_INTEGER:
        raise InvalidPipeline(
            f"{path}.{key}", f"must be at most {MAX_INTEGER} (got {excerpt(str(value))})"
        )
    return value


def _optional_bool(obj: Mapping[str, Any], key: str, path: str, *, strings: bool) -> bool:
    """A boolean field (null/absent = False); with `strings`, "true"/"false" are accepted too."""
    value = obj.get(key)
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if strings and isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    expected = 'a boolean or "true"/"false"' if strings else "a boolean"
    raise _wrong_type(f"{path}.{key}", expected, value)


def _name(obj: Mapping[str, Any], path: str) -> str:
    path = f"{path}.name"
    value = obj.get("name")
    if value is None:
        raise InvalidPipeline(path, "is required")
    if not isinstance(value, str):
        raise _wrong_type(path, "a string", value)
    if not 1 <= len(value) <= NAME_MAX_LENGTH:
        raise InvalidPipeline(
            path, f"must be 1-{NAME_MAX_LENGTH} characters long (got {len(value)})"
        )
    if value != value.strip():
        raise InvalidPipeline(path, "must not start or end with whitespace")
    return value


def _sequence(obj: Mapping[str, Any], path: str, index: int) -> int:
    return _optional_int(obj, "sequence", path, index)


def _ordered(items: list[tuple[int, _T]], path: str, *, unique: bool) -> tuple[_T, ...]:
    """Order (sequence, item) pairs by sequence then position, rejecting repeats when `unique`."""
    if unique:
        first: dict[int, int] = {}
        for index, (sequence, _) in enumerate(items):
            if sequence in first:
                raise InvalidPipeline(
                    f"{path}[{index}].sequence",
                    f"duplicate sequence {sequence} (already used by {path}[{first[sequence]}])",
                )
            first[sequence] = index
    indexed = sorted(range(len(items)), key=lambda i: (items[i][0], i))
    return tuple(items[i][1] for i in indexed)


@dataclass(frozen=True)
class _Node:
    """A stage or job awaiting dependency checks: its identifier, path and raw depends_on."""

    identifier: str
    path: str
    depends_on: tuple[str, ...]


class _Parser:
    """One parse: carries the shared identifier namespace across stages, jobs and steps."""

    def __init__(self) -> None:
        self._identifiers: dict[str, str] = {}
        self._jobs = 0
        self._steps_seen = 0

    def parse(self, document: object) -> PipelineSpec:
        root = _object(document, _ROOT)
        path = f"{_ROOT}.stages"
        if "stages" not in root:
            raise InvalidPipeline(path, "is required")
        raw_stages = _parts(root["stages"], path, "stages")

        stages: list[tuple[int, StageSpec]] = []
        stage_nodes: list[_Node] = []
        job_nodes: list[list[_Node]] = []
        for index, raw in enumerate(raw_stages):
            stage, stage_node, jobs = self._stage(raw, f"{path}[{index}]", index)
            stages.append((stage.sequence, stage))
            stage_nodes.append(stage_node)
            job_nodes.append(jobs)

        stage_of_job = {
            job.identifier: stage.identifier
            for stage, jobs in zip(stage_nodes, job_nodes, strict=True)
            for job in jobs
        }

        def explain_stage(dep: str) -> str | None:
            if dep in stage_of_job:
                job, owner = excerpt(dep), excerpt(stage_of_job[dep])
                return f"unknown stage '{job}' ('{job}' is a job of stage '{owner}')"
            return None

        _check_dependencies(stage_nodes, "stage", explain_stage)
        for stage_node, jobs in zip(stage_nodes, job_nodes, strict=True):

            def explain_job(dep: str, own: str = stage_node.identifier) -> str | None:
                other = stage_of_job.get(dep)
                if other is None or other == own:
                    return None
                job, other = excerpt(dep), excerpt(other)
                return (
                    f"unknown job '{job}' in this stage ('{job}' belongs to stage '{other}'; "
                    "a job may depend only on jobs of its own stage)"
                )

            _check_dependencies(jobs, "job", explain_job)

        return PipelineSpec(stages=_ordered(stages, path, unique=True))

    def _claim(self, identifier: str, path: str) -> None:
        first = self._identifiers.get(identifier)
        if first is not None:
            raise InvalidPipeline(
                f"{path}.identifier",
                f"duplicate identifier '{excerpt(identifier)}' (also used by {first})",
            )
        self._identifiers[identifier] = path

    def _identifier(self, obj: Mapping[str, Any], path: str, generated: str) -> str:
        identifier = _optional_str(obj, "identifier", path) or generated
        self._claim(identifier, path)
        return identifier

    def _stage(self, raw: object, path: str, index: int) -> tuple[StageSpec, _Node, list[_Node]]:
        obj = _object(raw, path)
        name = _name(obj, path)
        identifier = self._identifier(obj, path, f"STAGE_{index}")
        sequence = _sequence(obj, path, index)
        depends_on = _string_list(obj, "depends_on", path)
        run_always = _optional_bool(obj, "run_always", path, strings=False)
        pre = self._steps(obj, "pre", path, f"STEP_{index}_pre", required=False)

        jobs_path = f"{path}.jobs"
        if obj.get("jobs") is None:
            raise InvalidPipeline(jobs_path, "is required")
        jobs: list[tuple[int, JobSpec]] = []
        job_nodes: list[_Node] = []
        for job_index, raw_job in enumerate(_parts(obj["jobs"], jobs_path, "jobs")):
            job_path = f"{jobs_path}[{job_index}]"
            self._jobs += 1
            if self._jobs > MAX_JOBS:
                raise InvalidPipeline(job_path, f"a pipeline has at most {MAX_JOBS} jobs")
            job = self._job(raw_job, job_path, index, job_index)
            jobs.append((job.sequence, job))
            job_nodes.append(_Node(job.identifier, job_path, job.depends_on))

        post = self._steps(obj, "post", path, f"STEP_{index}_post", required=False)
        stage = StageSpec(
            name=name,
            identifier=identifier,
            sequence=sequence,
            jobs=_ordered(jobs, jobs_path, unique=True),
            pre=pre,
            post=post,
            depends_on=depends_on,
            run_always=run_always,
        )
        return stage, _Node(identifier, path, depends_on), job_nodes

    def _job(self, raw: object, path: str, stage_index: int, index: int) -> JobSpec:
        obj = _object(raw, path)
        name = _name(obj, path)
        identifier = self._identifier(obj, path, f"JOB_{stage_index}_{index}")
        sequence = _sequence(obj, path, index)
        depends_on = _string_list(obj, "depends_on", path)
        condition = _optional_str(obj, "condition", path)
        try:
            parse_condition(condition)
        except InvalidCondition as error:
            raise InvalidPipeline(f"{path}.condition", error.message) from None
        resource = _optional_str(obj, "resource", path)
        try:
            parse_resource(resource)
        except ValueError as error:
            raise InvalidPipeline(f"{path}.resource", str(error)) from None
        timeout = _optional_str(obj, "timeout", path)
        if timeout is not None:
            try:
                parse_duration(timeout)
            except ValueError as error:
                raise InvalidPipeline(f"{path}.timeout", str(error)) from None
        is_async = _optional_bool(obj, "async", path, strings=True)
        steps = self._steps(obj, "steps", path, f"STEP_{stage_index}_{index}", required=True)
        if len(steps) > 1 and any(step.task == CHECKPOINT_TASK for step in steps):
            raise InvalidPipeline(
                f"{path}.steps", f"a manual review job has one step, the {CHECKPOINT_TASK} step"
            )
        return JobSpec(
            name=name,
            identifier=identifier,
            sequence=sequence,
            steps=steps,
            depends_on=depends_on,
            condition=condition,
            resource=resource,
            timeout=timeout,
            is_async=is_async,
        )

    def _steps(
        self, obj: Mapping[str, Any], key: str, path: str, id_prefix: str, *, required: bool
    ) -> tuple[StepSpec, ...]:
        list_path = f"{path}.{key}"
        if required:
            if obj.get(key) is None:
                raise InvalidPipeline(list_path, "is required")
            raw_steps = _parts(obj[key], list_path, "steps")
            if not raw_steps:
                raise InvalidPipeline(list_path, "must contain at least one step")
        else:
            raw_steps = [] if obj.get(key) is None else _parts(obj[key], list_path, "steps")
        self._steps_seen += len(raw_steps)
        if self._steps_seen > MAX_STEPS:
            raise InvalidPipeline(list_path, f"a pipeline has at most {MAX_STEPS} steps")
        steps = [
            self._step(raw, f"{list_path}[{index}]", f"{id_prefix}_{index}", index)
            for index, raw in enumerate(raw_steps)
        ]
        return _ordered([(step.sequence, step) for step in steps], list_path, unique=False)

    def _step(self, raw: object, path: str, generated_id: str, index: int) -> StepSpec:
        obj = _object(raw, path)
        task_path = f"{path}.task"
        task = obj.get("task")
        if task is None:
            raise InvalidPipeline(task_path, "is required")
        if not isinstance(task, str):
            raise _wrong_type(task_path, "a string", task)
        if task not in SUPPORTED_TASKS:
            raise InvalidPipeline(task_path, f"unknown task '{excerpt(task)}'")
        name = _optional_str(obj, "name", path) or task
        identifier = self._identifier(obj, path, generated_id)
        sequence = _sequence(obj, path, index)
        inputs = _inputs(obj, path)
        multi_step_editable = _optional_int(obj, "multi_step_editable", path, 0)
        step = StepSpec(
            name=name,
            identifier=identifier,
            task=task,
            sequence=sequence,
            inputs=inputs,
            business_type=_optional_str(obj, "business_type", path) or "Normal",
            official_task_version=_optional_str(obj, "official_task_version", path),
            multi_step_editable=multi_step_editable,
        )
        if task == SHELL_TASK:
            script = step.input(SHELL_SCRIPT_INPUT)
            if not isinstance(script, str) or not script.strip():
                raise InvalidPipeline(
                    f"{path}.inputs",
                    f"a shell step needs a non-empty string '{SHELL_SCRIPT_INPUT}' input",
                )
            patterns = step.input(ARTIFACTS_INPUT)
            if patterns is not None and not isinstance(patterns, str | list):
                raise InvalidPipeline(
                    f"{path}.inputs", f"'{ARTIFACTS_INPUT}' must be a string or a list of strings"
                )
        if task == CHECKPOINT_TASK:
            _check_review(step, path)
        return step


def _check_review(step: StepSpec, path: str) -> None:
    inputs = f"{path}.inputs"
    strategy = step.input("check_strategy")
    if strategy is not None and strategy not in CHECK_STRATEGIES:
        raise InvalidPipeline(inputs, f"check_strategy must be one of {sorted(CHECK_STRATEGIES)}")
    on_timeout = step.input("timeout_strategy")
    if on_timeout is not None and on_timeout not in TIMEOUT_STRATEGIES:
        raise InvalidPipeline(
            inputs, f"timeout_strategy must be one of {sorted(TIMEOUT_STRATEGIES)}"
        )
    timeout = step.input("timeout")
    if timeout is not None:
        if _review_seconds(timeout) is None:
            raise InvalidPipeline(inputs, "timeout must be a positive number of seconds")
        seconds = int(timeout)
        if seconds > MAX_REVIEW_TIMEOUT_SECONDS:
            raise InvalidPipeline(
                inputs,
                f"timeout must be at most {MAX_REVIEW_TIMEOUT_SECONDS} seconds (7 days)"
                f" (got {excerpt(str(timeout))})",
            )
    approvers = step.input("approvers")
    if approvers is not None and not isinstance(approvers, str | list):
        raise InvalidPipeline(inputs, "approvers must be a list or a comma separated string")


def _string_list(obj: Mapping[str, Any], key: str, path: str) -> tuple[str, ...]:
    items: list[str] = []
    for index, value in enumerate(_optional_array(obj, key, path)):
        item_path = f"{path}.{key}[{index}]"
        if not isinstance(value, str):
            raise _wrong_type(item_path, "a string", value)
        if not value:
            raise InvalidPipeline(item_path, "must not be empty")
        if value in items:
            raise InvalidPipeline(item_path, f"'{excerpt(value)}' is listed twice")
        items.append(value)
    return tuple(items)


def _inputs(obj: Mapping[str, Any], path: str) -> tuple[tuple[str, Any], ...]:
    pairs: list[tuple[str, Any]] = []
    seen: set[str] = set()
    for index, raw in enumerate(_optional_array(obj, "inputs", path)):
        item_path = f"{path}.inputs[{index}]"
        item = _object(raw, item_path)
        key = item.get("key")
        if key is None:
            raise InvalidPipeline(f"{item_path}.key", "is required")
        if not isinstance(key, str):
            raise _wrong_type(f"{item_path}.key", "a string", key)
        if not key:
            raise InvalidPipeline(f"{item_path}.key", "must not be empty")
        if key in seen:
            raise InvalidPipeline(f"{item_path}.key", f"duplicate input key '{excerpt(key)}'")
        if "value" not in item:
            raise InvalidPipeline(f"{item_path}.value", "is required")
        seen.add(key)
        pairs.append((key, item["value"]))
    return tuple(pairs)


def _check_dependencies(
    nodes: list[_Node], kind: str, explain_unknown: Callable[[str], str | None]
) -> None:
    """Reject unknown targets, then self-dependencies and cycles, among one set of siblings."""
    known = {node.identifier for node in nodes}
    for node in nodes:
        for index, dep in enumerate(node.depends_on):
            if dep not in known:
                problem = explain_unknown(dep) or f"unknown {kind} '{excerpt(dep)}'"
                raise InvalidPipeline(f"{node.path}.depends_on[{index}]", problem)

    position = {node.identifier: index for index, node in enumerate(nodes)}
    by_id = {node.identifier: node for node in nodes}
    done: set[str] = set()
    for start in nodes:
        if start.identifier in done:
            continue
        # Iterative DFS; `stack` holds the current path, each entry with its next edge to try.
        stack: list[tuple[_Node, int]] = [(start, 0)]
        on_path = {start.identifier}
        while stack:
            node, edge = stack[-1]
            if edge == len(node.depends_on):
                stack.pop()
                on_path.discard(node.identifier)
                done.add(node.identifier)
                continue
            stack[-1] = (node, edge + 1)
            target = node.depends_on[edge]
            if target in on_path:
                ids = [entry.identifier for entry, _ in stack]
                cycle = ids[ids.index(target) :]
                # Report from the cycle member listed first, so the message is deterministic.
                first = min(range(len(cycle)), key=lambda i: position[cycle[i]])
                cycle = cycle[first:] + cycle[:first]
                raise InvalidPipeline(
                    f"{by_id[cycle[0]].path}.depends_on",
                    "dependency cycle: " + " -> ".join([*cycle, cycle[0]]),
                )
            if target not in done:
                on_path.add(target)
                stack.append((by_id[target], 0))
