"""What crosses between the server and a build agent: a job to run, and reports coming back.

Nothing else crosses this seam. The agent receives a `JobAssignment` from a claim, runs it, and
reports `AgentEvent`s numbered from 1 within the claim (`dispatch_id`), so the server applies
each exactly once and in order however often the agent has to resend them.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator, with_config

from stageline.schemas.common import MAX_INT32, NUL

JobOutcome = Literal["COMPLETED", "FAILED", "CANCELED"]

SENT_WHOLE = ConfigDict(json_schema_serialization_defaults_required=True)
"""An assignment goes out as `dataclasses.asdict`, every field present: /openapi.json says so."""


@with_config(SENT_WHOLE)
@dataclass(frozen=True)
class StepAssignment:
    step_run_id: str
    name: str
    task: str
    script: str | None
    """The shell script of an `official_shell_plugin` step; None for steps with nothing to run."""
    log_offset: int = 0
    """Lines the step already logged in an earlier dispatch; this one numbers its lines on."""
    artifacts: tuple[str, ...] = ()
    """Glob patterns, relative to the workspace, of files to upload once the step completed."""


@with_config(SENT_WHOLE)
@dataclass(frozen=True)
class SourceCheckout:
    """A code source of the run, checked out into the job's workspace before its first step."""

    url: str
    commit: str | None
    """The commit the run fixed when it was made; None when its repository could not be read
    then, and the head of `ref` is checked out instead."""
    ref: str | None
    """The branch or tag the run builds (`refs/heads/…`, `refs/tags/…`), if it names one."""
    directory: str = ""
    """Where, relative to the workspace: "" (the workspace itself) when the run has one code
    source, else the source's alias."""
    token_variable: str | None = None
    """The variable of `JobAssignment.env` whose value is the token that reads an https URL."""


@with_config(SENT_WHOLE)
@dataclass(frozen=True)
class JobAssignment:
    job_run_id: str
    run_id: str
    pipeline_id: str
    name: str
    steps: tuple[StepAssignment, ...]
    env: dict[str, str]
    """Variables and run metadata every step sees in its environment."""
    secrets: tuple[str, ...] = field(default=())
    """Values masked as *** wherever they occur in log lines."""
    dispatch_id: str = ""
    """This claim; every report names it, and reports of an older claim are refused."""
    lease_seconds: float = 60.0
    """How long the claim lives without a heartbeat before the job is redispatched."""
    checkouts: tuple[SourceCheckout, ...] = ()
    """The run's code sources, checked out in this order before the first step runs (its
    log shows the git commands); a checkout that fails fails that step and the job."""


class JobEvents(Protocol):
    """Where the executor reports progress; the agent turns each call into an `AgentEvent`."""

    def job_started(self, job_run_id: str) -> None: ...

    def step_started(self, job_run_id: str, step_run_id: str) -> None: ...

    def step_log(self, step_run_id: str, lines: Sequence[str]) -> None: ...

    def step_outputs(self, step_run_id: str, outputs: Sequence[tuple[str, str]]) -> None: ...

    def upload_artifact(self, step_run_id: str, name: str, path: Path) -> str | None:
        """Store a file of the step on the server; None when stored, else why it was not."""
        ...

    def step_finished(
        self, step_run_id: str, outcome: JobOutcome, *, exit_code: int | None, message: str | None
    ) -> None: ...

    def job_finished(self, job_run_id: str, outcome: JobOutcome, message: str | None) -> None: ...


# -- the agent protocol on the wire (JSON; see `api.routes.agents`) ----------------------------

EventKind = Literal[
    "job_started", "step_started", "step_log", "step_outputs", "step_finished", "job_finished"
]
NEEDS_STEP = frozenset({"step_started", "step_log", "step_outputs", "step_finished"})
NEEDS_OUTCOME = frozenset({"step_finished", "job_finished"})


MAX_HEARTBEAT_JOBS = 256
"""Most jobs one heartbeat may name; an agent running more sends several heartbeats."""
MAX_LINES_PER_EVENT = 1000
"""Most log lines one step_log event may carry (the agent sends 100)."""
AgentId = Annotated[str, Field(min_length=1, max_length=64)]
"""A job, step or dispatch ID as the agent sends it back (the server made it: 32 characters)."""


def _replace_nul(value: Any) -> Any:
    """`value` with every NUL character replaced by U+FFFD: PostgreSQL cannot store NUL, and a
    step that prints one must still have its log (an agent's reports are cleaned, not refused,
    since a refused report would cost the job its later ones)."""
    if isinstance(value, str):
        return value.replace(NUL, "\ufffd")
    if isinstance(value, dict):
        return {_replace_nul(key): _replace_nul(child) for key, child in value.items()}
    if isinstance(value, list):
        return [_replace_nul(child) for child in value]
    return value


class AgentWire(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        return _replace_nul(data)


class OutputPair(AgentWire):
    key: Annotated[str, Field(min_length=1, max_length=256)]
    value: Annotated[str, Field(max_length=65_536)]


class AgentEvent(AgentWire):
    seq: Annotated[int, Field(ge=1, le=MAX_INT32)]
    kind: EventKind
    step_run_id: AgentId | None = None
    first_line: Annotated[int | None, Field(ge=0, le=MAX_INT32)] = None
    """Number of the first of `lines` in the step's log (step_log)."""
    lines: Annotated[list[str], Field(max_length=MAX_LINES_PER_EVENT)] = []
    outputs: Annotated[list[OutputPair], Field(max_length=256)] = []
    outcome: JobOutcome | None = None
    exit_code: Annotated[int | None, Field(ge=-MAX_INT32 - 1, le=MAX_INT32)] = None
    message: Annotated[str | None, Field(max_length=4096)] = None

    @model_validator(mode="after")
    def _complete(self) -> "AgentEvent":
        if self.kind in NEEDS_STEP and not self.step_run_id:
            raise ValueError(f"a {self.kind} event needs step_run_id")
        if self.kind in NEEDS_OUTCOME and self.outcome is None:
            raise ValueError(f"a {self.kind} event needs an outcome")
        if self.kind == "step_log" and self.first_line is None:
            raise ValueError("a step_log event needs first_line")
        return self


class EventBatch(AgentWire):
    dispatch_id: Annotated[str, Field(max_length=64)]
    events: Annotated[list[AgentEvent], Field(max_length=1000)]


class EventsApplied(AgentWire):
    applied: int
    """The highest event number the server has applied; the agent forgets those."""
    cancel: bool
    """The job ended on the server (stopped, timed out): kill it and report what happened."""


class ClaimRequest(AgentWire):
    agent: Annotated[str, Field(min_length=1, max_length=96)]
    """The agent's instance name (host and process), shown as who runs the job."""
    pool: Annotated[str, Field(min_length=1, max_length=64)] = "default"
    labels: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=64)]], Field(max_length=32)
    ] = []
    wait_seconds: Annotated[float, Field(ge=0, le=60)] = 20.0
    """Long poll: how long the server may hold the request open while no job is ready."""


class Heartbeat(AgentWire):
    jobs: Annotated[
        dict[AgentId, Annotated[str, Field(max_length=64)]],
        Field(max_length=MAX_HEARTBEAT_JOBS),
    ]
    """The running jobs: job_run_id -> dispatch_id; at most `MAX_HEARTBEAT_JOBS`, since each
    one costs the server a write."""


class HeartbeatReply(AgentWire):
    cancel: list[str]
    """Jobs to kill: ended on the server, or taken from this agent (its lease expired)."""


class JobSource(Protocol):
    """Where an agent takes work from and reports to (the server, over HTTP)."""

    def claim(self, request: ClaimRequest) -> JobAssignment | None: ...

    def report(self, job_run_id: str, batch: EventBatch) -> EventsApplied: ...

    def heartbeat(self, beat: Heartbeat) -> HeartbeatReply: ...

    def upload(
        self, job_run_id: str, dispatch_id: str, step_run_id: str, name: str, path: Path
    ) -> None: ...
