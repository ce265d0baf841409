"""What crosses between the engine and an executor: a job to run, and events coming back.

Nothing else crosses this seam, so that the built-in executor can become a separate build agent
that receives a `JobAssignment` over HTTP and reports the same events.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

JobOutcome = Literal["COMPLETED", "FAILED", "CANCELED"]


@dataclass(frozen=True)
class StepAssignment:
    step_run_id: str
    name: str
    task: str
    script: str | None
    """The shell script of an `official_shell_plugin` step; None for steps with nothing to run."""


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


class JobEvents(Protocol):
    """Where an executor reports progress; every call may be refused as late by the engine."""

    def job_started(self, job_run_id: str) -> None: ...

    def step_started(self, job_run_id: str, step_run_id: str) -> None: ...

    def step_log(self, step_run_id: str, lines: Sequence[str]) -> None: ...

    def step_finished(
        self, step_run_id: str, outcome: JobOutcome, *, exit_code: int | None, message: str | None
    ) -> None: ...

    def job_finished(self, job_run_id: str, outcome: JobOutcome, message: str | None) -> None: ...


class Dispatcher(Protocol):
    """What the engine tells the executors of its process: new jobs are queued in the database
    (claim them now rather than at the next poll), or a running job was stopped (kill it)."""

    def wake(self) -> None: ...

    def cancel(self, job_run_id: str) -> None: ...


class JobSource(Protocol):
    """Where an executor takes work from (the engine's job queue)."""

    def claim_next(self, claimant: str) -> JobAssignment | None: ...

    def stopped_among(self, job_run_ids: list[str]) -> set[str]: ...
