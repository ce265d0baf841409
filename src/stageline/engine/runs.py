"""The run engine: starts runs, moves them stage by stage, applies executor events, stops runs.

Every change happens in one write transaction that locks the run row first, so events of jobs
running in parallel are applied one after another and roll-ups always see a consistent run.
Queued jobs wait in the database for an executor to claim them (`engine.dispatcher`); the
dispatcher is woken only after the transaction that queued them has committed.
"""

import contextlib
import functools
import logging
import threading
from collections.abc import Callable, Sequence

from sqlalchemy.orm import Session

from stageline.domain.errors import Conflict, PipelineNotFound, RunNotFound
from stageline.domain.statuses import (
    RUN_ACTIVE,
    RUN_TERMINAL,
    STAGE_STARTED,
    STAGE_SUCCESSFUL,
    STAGE_TERMINAL,
    RunStatus,
    StageStatus,
    TriggerType,
)
from stageline.engine.clock import Clock, system_clock
from stageline.engine.scheduler import Executor, plan_run
from stageline.engine.transitions import roll_up, set_run_status, set_work_status
from stageline.schemas.jobs import Dispatcher, JobOutcome
from stageline.schemas.runs import RunCreate
from stageline.store.database import Database
from stageline.store.queries import logs as log_queries
from stageline.store.queries import pipelines as pipeline_queries
from stageline.store.queries import runs as run_queries
from stageline.store.tables import JobRun, PipelineRun, StageRun, StepRun

log = logging.getLogger(__name__)

S = StageStatus
STAGE_ACTIVE = STAGE_STARTED | {S.QUEUED}
NEEDS_MET = frozenset({S.COMPLETED, S.UNSELECTED})
"""What a job's `depends_on` jobs must have ended as for it to start."""


class _RunState:
    """A locked run with its stages, jobs and steps, loaded for one transaction."""

    def __init__(self, session: Session, run: PipelineRun) -> None:
        self.session = session
        self.run = run
        self.stages = run_queries.list_stages(session, run_id=run.id)
        self.jobs = run_queries.list_jobs(session, run_id=run.id)

    @functools.cached_property
    def steps(self) -> list[StepRun]:
        """Loaded on first use: most events (a job started, a stage rolled up) need none."""
        return run_queries.list_steps(self.session, run_id=self.run.id)

    def job(self, job_run_id: str) -> JobRun | None:
        return next((j for j in self.jobs if j.id == job_run_id), None)

    def step(self, step_run_id: str) -> StepRun | None:
        return next((s for s in self.steps if s.id == step_run_id), None)

    def jobs_of(self, stage: StageRun) -> list[JobRun]:
        return [j for j in self.jobs if j.stage_run_id == stage.id]

    def steps_of_job(self, job: JobRun) -> list[StepRun]:
        return [s for s in self.steps if s.job_run_id == job.id]

    def entry_steps(self, stage: StageRun) -> list[StepRun]:
        return [s for s in self.steps if s.stage_run_id == stage.id and s.placement == "pre"]


EventApplier = Callable[[_RunState, int], None]
"""Changes one executor event makes to a locked run, given the time."""


class RunEngine:
    """Implements `schemas.jobs.JobEvents` for the executor, and the run commands for the API."""

    def __init__(self, db: Database, *, clock: Clock = system_clock) -> None:
        self.db = db
        self.clock = clock
        self.dispatcher: Dispatcher | None = None
        self._closing = False
        self._log_next_line: dict[str, int] = {}
        self._log_lock = threading.Lock()

    def attach(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher
        self._closing = False

    # -- commands ---------------------------------------------------------------------------

    def start_run(
        self,
        *,
        project_id: str,
        pipeline_id: str,
        request: RunCreate,
        executor: Executor,
        trigger: TriggerType = TriggerType.MANUAL,
    ) -> str:
        """Create a run with the next run number and queue its first stage; returns its ID."""
        now = self.clock()
        with self.db.writer() as session:
            pipeline = pipeline_queries.read_pipeline(
                session, project_id=project_id, pipeline_id=pipeline_id
            )
            if pipeline is None:
                raise PipelineNotFound(f"pipeline {pipeline_id} not found")
            tree = plan_run(pipeline, request, executor=executor, trigger=trigger, now=now)
            tree.run.run_number = pipeline_queries.next_run_number(
                session, pipeline_id=pipeline.id, run_id=tree.run.id
            )
            run_queries.insert_run_tree(session, tree.run, tree.stages, tree.jobs, tree.steps)
            state = _RunState(session, tree.run)
            queued = self._advance(state, now)
        self._wake(queued)
        return tree.run.id

    def stop_run(self, *, pipeline_id: str, run_id: str, stopped_by: str) -> None:
        """Cancel every unfinished stage, job and step, and kill what is running."""
        now = self.clock()
        to_cancel: list[str] = []
        with self.db.writer() as session:
            run = run_queries.read_run(
                session, run_id=run_id, pipeline_id=pipeline_id, for_update=True
            )
            if run is None:
                raise RunNotFound(f"pipeline run {run_id} not found")
            if run.status in RUN_TERMINAL:
                raise Conflict(f"run #{run.run_number} has already ended ({run.status})")
            state = _RunState(session, run)
            message = f"canceled by {stopped_by}"
            for job in state.jobs:
                if job.status in STAGE_ACTIVE:
                    to_cancel.append(job.id)
                set_work_status(job, S.CANCELED, now=now, message=message)
            for step in state.steps:
                set_work_status(step, S.CANCELED, now=now)
            for stage in state.stages:
                set_work_status(stage, S.CANCELED, now=now)
            roll_up(run, state.stages, state.jobs, now=now)
            set_run_status(run, RunStatus.CANCELED, now=now)  # if it was between stages
            run.message = message
        if self.dispatcher is not None:
            for job_run_id in to_cancel:
                self.dispatcher.cancel(job_run_id)

    def cancel_pipeline_runs(self, *, pipeline_id: str, stopped_by: str) -> None:
        """Stop every unfinished run of a pipeline (when it is deleted)."""
        with self.db.reader() as session:
            run_ids = run_queries.list_run_ids(
                session, pipeline_id=pipeline_id, statuses=list(RUN_ACTIVE)
            )
        for run_id in run_ids:
            with contextlib.suppress(Conflict):  # it may have ended on its own meanwhile
                self.stop_run(pipeline_id=pipeline_id, run_id=run_id, stopped_by=stopped_by)

    def fail_interrupted(self, reason: str) -> int:
        """Mark runs left unfinished by a previous server process FAILED; returns how many.

        Called at start-up, before the executor takes work, and at shutdown after it stopped.
        """
        now = self.clock()
        with self.db.reader() as session:
            run_ids = run_queries.list_run_ids(
                session, statuses=[RunStatus.RUNNING, RunStatus.PAUSED]
            )
        for run_id in run_ids:
            with self.db.writer() as session:
                run = run_queries.read_run(session, run_id=run_id, for_update=True)
                if run is None or run.status in RUN_TERMINAL:
                    continue
                state = _RunState(session, run)
                for job in state.jobs:
                    if job.status in STAGE_ACTIVE:
                        set_work_status(job, S.FAILED, now=now, message=reason)
                for step in state.steps:
                    if step.status in STAGE_ACTIVE:
                        set_work_status(step, S.FAILED, now=now, message=reason)
                for stage in state.stages:
                    if stage.status in STAGE_ACTIVE and not state.jobs_of(stage):
                        set_work_status(stage, S.FAILED, now=now)
                roll_up(run, state.stages, state.jobs, now=now)
                set_run_status(run, RunStatus.FAILED, now=now)  # if it was between stages
                run.message = reason
        return len(run_ids)

    def close(self) -> None:
        """Ignore executor events from now on (the executor is being shut down)."""
        self._closing = True

    # -- executor events (schemas.jobs.JobEvents) -------------------------------------------

    def job_started(self, job_run_id: str) -> None:
        def apply(state: _RunState, now: int) -> None:
            job = state.job(job_run_id)
            if job is not None:
                set_work_status(job, S.RUNNING, now=now)

        self._apply_event(job_run_id, apply)

    def step_started(self, job_run_id: str, step_run_id: str) -> None:
        def apply(state: _RunState, now: int) -> None:
            step = state.step(step_run_id)
            if step is not None:
                set_work_status(step, S.RUNNING, now=now)

        self._apply_event(job_run_id, apply)

    def step_log(self, step_run_id: str, lines: Sequence[str]) -> None:
        if self._closing or not lines:
            return
        try:
            with self._log_lock, self.db.writer() as session:
                first = self._log_next_line.get(step_run_id)
                if first is None:
                    first = log_queries.count_log_lines(session, step_run_id=step_run_id)
                log_queries.append_log_lines(
                    session,
                    step_run_id=step_run_id,
                    first_line_no=first,
                    lines=lines,
                    now=self.clock(),
                )
                self._log_next_line[step_run_id] = first + len(lines)
        except Exception:
            log.exception("could not store %d log lines of step %s", len(lines), step_run_id)

    def step_finished(
        self, step_run_id: str, outcome: JobOutcome, *, exit_code: int | None, message: str | None
    ) -> None:
        with self._log_lock:
            self._log_next_line.pop(step_run_id, None)
        job_run_id = self._job_of_step(step_run_id)
        if job_run_id is None:
            return

        def apply(state: _RunState, now: int) -> None:
            step = state.step(step_run_id)
            if step is None:
                return
            if set_work_status(step, S.RUNNING, now=now) or step.status == S.RUNNING:
                step.exit_code = exit_code
                set_work_status(step, S(outcome), now=now, message=message)

        self._apply_event(job_run_id, apply)

    def job_finished(self, job_run_id: str, outcome: JobOutcome, message: str | None) -> None:
        def apply(state: _RunState, now: int) -> None:
            job = state.job(job_run_id)
            if job is None:
                return
            set_work_status(job, S.RUNNING, now=now)  # a job may fail before it started
            if not set_work_status(job, S(outcome), now=now, message=message):
                return
            leftover = S.CANCELED if outcome == "CANCELED" else S.SKIPPED
            for step in state.steps_of_job(job):
                if step.status not in STAGE_TERMINAL:
                    set_work_status(step, leftover, now=now)

        self._apply_event(job_run_id, apply)

    # -- internals --------------------------------------------------------------------------

    def _job_of_step(self, step_run_id: str) -> str | None:
        with self.db.reader() as session:
            step = run_queries.read_step(session, step_run_id=step_run_id)
            return step.job_run_id if step is not None else None

    def _apply_event(self, job_run_id: str, apply: EventApplier) -> None:
        if self._closing:
            return
        try:
            queued = self._locked_apply(job_run_id, apply)
        except Exception:
            log.exception("could not apply an executor event for job %s", job_run_id)
            return
        self._wake(queued)

    def _locked_apply(self, job_run_id: str, apply: EventApplier) -> bool:
        now = self.clock()
        with self.db.writer() as session:
            job = run_queries.read_job(session, job_run_id=job_run_id)
            if job is None:
                return False
            run = run_queries.read_run(
                session, run_id=job.run_id, for_update=True, without_payload=True
            )
            if run is None or run.status in RUN_TERMINAL:
                return False
            state = _RunState(session, run)
            apply(state, now)
            return self._advance(state, now)

    def _wake(self, queued: bool) -> None:
        if queued and self.dispatcher is not None:
            self.dispatcher.wake()

    def _advance(self, state: _RunState, now: int) -> bool:
        """Roll up, then queue whatever may start now: ready jobs of the current stage, or the
        next stage once every earlier one succeeded. Loops because an empty stage ends at once.
        True when it queued a job."""
        queued_before = sum(job.status == S.QUEUED for job in state.jobs)
        while True:
            roll_up(state.run, state.stages, state.jobs, now=now)
            if state.run.status != RunStatus.RUNNING:
                break
            progressed = False
            for stage in state.stages:
                if stage.status in STAGE_ACTIVE:
                    progressed |= self._queue_ready_jobs(state, stage, now)
            if not any(stage.status in STAGE_ACTIVE for stage in state.stages):
                progressed |= self._start_next_stage(state, now)
            if not progressed:
                break
        return sum(job.status == S.QUEUED for job in state.jobs) > queued_before

    def _start_next_stage(self, state: _RunState, now: int) -> bool:
        for stage in state.stages:
            if stage.status == S.INIT:
                break
            if stage.status not in STAGE_SUCCESSFUL:
                return False
        else:
            return False
        set_work_status(stage, S.QUEUED, now=now)
        for step in state.entry_steps(stage):  # stage entries (auto trigger) pass at once
            for status in (S.QUEUED, S.RUNNING, S.COMPLETED):
                set_work_status(step, status, now=now)
        if not state.jobs_of(stage):
            set_work_status(stage, S.RUNNING, now=now)
            set_work_status(stage, S.COMPLETED, now=now)
            return True
        self._queue_ready_jobs(state, stage, now)
        return True

    def _queue_ready_jobs(self, state: _RunState, stage: StageRun, now: int) -> bool:
        jobs = state.jobs_of(stage)
        status_of = {job.identifier: S(job.status) for job in jobs}
        progressed = False
        for job in jobs:
            if job.status != S.INIT:
                continue
            needs = [status_of[identifier] for identifier in job.depends_on]
            if all(status in NEEDS_MET for status in needs):
                set_work_status(job, S.QUEUED, now=now)
                job.queued_at = now
                for step in state.steps_of_job(job):
                    set_work_status(step, S.QUEUED, now=now)
                progressed = True
            elif any(s in STAGE_TERMINAL and s not in NEEDS_MET for s in needs):
                set_work_status(
                    job, S.SKIPPED, now=now, message="a job it depends on did not succeed"
                )
                for step in state.steps_of_job(job):
                    set_work_status(step, S.SKIPPED, now=now)
                progressed = True
        return progressed
