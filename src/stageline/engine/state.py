"""The unit of work every status change happens in: a locked run with its stages, jobs and steps.

A `RunState` exists only inside a write transaction that locked the run row (`RunEngine.locked_run`
and the run's creation), so whatever changes it makes are made one after another and roll-ups
always see a consistent run. It carries the transaction's time and journal of changes.
"""

import functools

from sqlalchemy.orm import Session

from stageline.auth.vault import Vault
from stageline.domain.statuses import STAGE_WAITING_FOR_AGENT, StageStatus
from stageline.engine.journal import Journal
from stageline.engine.variables import opened, secret_values
from stageline.store.queries import runs as run_queries
from stageline.store.tables import JobRun, PipelineRun, StageRun, StepRun

S = StageStatus


class RunState:
    """A locked run with its stages, jobs and steps, loaded for one transaction."""

    def __init__(
        self,
        session: Session,
        run: PipelineRun,
        journal: Journal,
        *,
        stages: list[StageRun] | None = None,
        jobs: list[JobRun] | None = None,
        steps: list[StepRun] | None = None,
        vault: Vault | None = None,
    ) -> None:
        self.session = session
        self.vault = vault
        self.run = run
        self.journal = journal
        self.changed = False
        """Whether the door changed a status of this run in this transaction."""
        self.stages = run_queries.list_stages(session, run_id=run.id) if stages is None else stages
        if jobs is None:
            jobs = _in_pipeline_order(self.stages, run_queries.list_jobs(session, run_id=run.id))
        self.jobs = jobs
        if steps is not None:
            self.steps = steps

    @property
    def now(self) -> int:
        return self.journal.now

    @functools.cached_property
    def steps(self) -> list[StepRun]:
        """Loaded on first use: most reports (a job started, a log chunk) need none."""
        return run_queries.list_steps(self.session, run_id=self.run.id)

    @functools.cached_property
    def variables(self) -> dict[str, str]:
        """The run's variables by name, secret ones opened (conditions may compare them)."""
        return opened(self.run.variables, self.vault)

    @functools.cached_property
    def secret_values(self) -> tuple[str, ...]:
        """The run's secret values, opened: what step outputs are masked with."""
        return secret_values(self.run.variables, self.vault)

    def job(self, job_run_id: str) -> JobRun | None:
        return next((j for j in self.jobs if j.id == job_run_id), None)

    def step(self, step_run_id: str) -> StepRun | None:
        return next((s for s in self.steps if s.id == step_run_id), None)

    def stage_of(self, job: JobRun) -> StageRun:
        return next(s for s in self.stages if s.id == job.stage_run_id)

    def jobs_of(self, stage: StageRun) -> list[JobRun]:
        return [j for j in self.jobs if j.stage_run_id == stage.id]

    def steps_of_job(self, job: JobRun) -> list[StepRun]:
        return [s for s in self.steps if s.job_run_id == job.id]

    def entry_steps(self, stage: StageRun) -> list[StepRun]:
        return [s for s in self.steps if s.stage_run_id == stage.id and s.placement == "pre"]

    def gate_pending(self, stage: StageRun) -> bool:
        """A stage-entry review is waiting for its decision (the stage is PAUSED then)."""
        return stage.status == S.PAUSED and any(
            s.status == S.PAUSED for s in self.entry_steps(stage)
        )

    @property
    def failed(self) -> bool:
        return any(j.status == S.FAILED for j in self.jobs) or any(
            s.status == S.FAILED for s in self.stages
        )

    def queued_jobs(self) -> int:
        return sum(j.status in STAGE_WAITING_FOR_AGENT and j.claimed_by is None for j in self.jobs)


def _in_pipeline_order(stages: list[StageRun], jobs: list[JobRun]) -> list[JobRun]:
    """Jobs stage by stage, as the run was planned. The store orders them by `sequence`, their
    place in their own stage, which ties across stages: without this, the order in which one
    transaction changes (and journals) jobs of several stages would be up to the database."""
    place = {stage.id: index for index, stage in enumerate(stages)}
    return sorted(jobs, key=lambda job: (place[job.stage_run_id], job.sequence))
