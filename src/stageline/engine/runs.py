"""The run engine's commands: start, stop and retry runs, decide manual reviews.

Every change happens in one write transaction that locks the run row first (`locked_run`), so
reports of jobs running in parallel are applied one after another and roll-ups always see a
consistent run. Jobs queued by a transaction wait in the database for an agent to claim them;
`on_queued` is called once that transaction has committed, to answer waiting claims at once.
"""

import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from sqlalchemy.orm import Session

from stageline.domain.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    JobNotFound,
    PipelineNotFound,
    RunNotAccepted,
    RunNotFound,
    StepNotFound,
)
from stageline.domain.pipeline import CHECKPOINT_TASK, review_of
from stageline.domain.statuses import (
    RUN_ACTIVE,
    RUN_TERMINAL,
    RunStatus,
    StageStatus,
    TriggerType,
)
from stageline.engine.clock import Clock, system_clock
from stageline.engine.progress import STAGE_ACTIVE, RunState, advance, condition_of
from stageline.engine.scheduler import Executor, plan_run
from stageline.engine.transitions import restart_work, roll_up, set_run_status, set_work_status
from stageline.schemas.runs import RunCreate
from stageline.store.database import Database
from stageline.store.queries import pipelines as pipeline_queries
from stageline.store.queries import runs as run_queries
from stageline.store.tables import JobRun, Pipeline, StepRun

log = logging.getLogger(__name__)

S = StageStatus
RETRYABLE = frozenset({S.FAILED, S.CANCELED})
CLEANUP_FUNCTIONS = frozenset({"always", "cancelled"})
"""A job whose condition names one of these may still run after its run was stopped."""


@dataclass(frozen=True)
class Reviewer:
    user_id: str
    name: str


class RunEngine:
    """Starts, stops and retries runs; agents' reports go through `engine.reports`."""

    def __init__(self, db: Database, *, clock: Clock = system_clock) -> None:
        self.db = db
        self.clock = clock
        self.on_queued: Callable[[], None] | None = None

    # -- the transaction every change runs in -----------------------------------------------

    @contextlib.contextmanager
    def locked_run(
        self, run_id: str, *, pipeline_id: str | None = None
    ) -> Iterator[tuple[RunState, int]]:
        """Lock the run, yield its state and the time, then advance it and commit."""
        with self._locked(lambda _: run_id, pipeline_id=pipeline_id) as locked:
            yield locked

    @contextlib.contextmanager
    def locked_run_of_job(self, job_run_id: str) -> Iterator[tuple[RunState, int]]:
        """`locked_run` for the run of this job."""

        def run_of(session: Session) -> str:
            run_id = run_queries.read_job_run_id(session, job_run_id=job_run_id)
            if run_id is None:
                raise JobNotFound(f"job run {job_run_id} not found")
            return run_id

        with self._locked(run_of) as locked:
            yield locked

    @contextlib.contextmanager
    def _locked(
        self, run_of: Callable[[Session], str], *, pipeline_id: str | None = None
    ) -> Iterator[tuple[RunState, int]]:
        now = self.clock()
        with self.db.writer() as session:
            run_id = run_of(session)
            run = run_queries.read_run(
                session,
                run_id=run_id,
                pipeline_id=pipeline_id,
                for_update=True,
                without_payload=True,
            )
            if run is None:
                raise RunNotFound(f"pipeline run {run_id} not found")
            state = RunState(session, run)
            yield state, now
            queued = self._settle(state, now)
        if queued:
            self.wake()

    def wake(self) -> None:
        if self.on_queued is not None:
            self.on_queued()

    def _settle(self, state: RunState, now: int) -> bool:
        """Advance the run; when that ends it, start runs its concurrency limit held back."""
        was_active = state.run.status in RUN_ACTIVE
        queued = advance(state, now)
        if was_active and state.run.status in RUN_TERMINAL:
            queued |= self._release_suspended(state.session, state.run.pipeline_id, now)
        return queued

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
        """Create a run with the next run number and start it; returns its ID.

        Over the pipeline's concurrency limit the run waits as SUSPEND (`exceed_action` QUEUE)
        or is recorded as IGNORED and `RunNotAccepted` raised (ABORT).
        """
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
            state = RunState(session, tree.run)
            held = self._over_limit(session, pipeline, exclude=tree.run.id)
            if held is not None:
                _hold(state, held, now)
            queued = advance(state, now)
        if held == RunStatus.IGNORED:
            limit = (pipeline.concurrency_control or {}).get("concurrency_number")
            raise RunNotAccepted(
                f"the pipeline already runs {limit} time(s) at once, its concurrency limit;"
                f" run #{tree.run.run_number} was not started (exceed_action ABORT)",
                run_id=tree.run.id,
            )
        if queued:
            self.wake()
        return tree.run.id

    def stop_run(self, *, pipeline_id: str, run_id: str, stopped_by: str) -> None:
        """Cancel every unfinished stage, job and step; agents kill what they run when they next
        hear from the server. Jobs whose condition asks for `cancelled()` or `always()` and that
        had not started yet still run, as clean-up, before the run ends CANCELED."""
        with self.locked_run(run_id, pipeline_id=pipeline_id) as (state, now):
            run = state.run
            if run.status in RUN_TERMINAL:
                raise Conflict(f"run #{run.run_number} has already ended ({run.status})")
            run.stop_requested_at = now
            message = f"canceled by {stopped_by}"
            cleanup_stages = set()
            for job in state.jobs:
                stage = state.stage_of(job)
                if _is_cleanup(job) and stage.status in STAGE_ACTIVE and job.status == S.INIT:
                    cleanup_stages.add(stage.id)
                    continue
                set_work_status(job, S.CANCELED, now=now, message=message)
                for step in state.steps_of_job(job):
                    set_work_status(step, S.CANCELED, now=now)
            for stage in state.stages:
                for step in state.entry_steps(stage):
                    set_work_status(step, S.CANCELED, now=now)
                if stage.id not in cleanup_stages:
                    set_work_status(stage, S.CANCELED, now=now)
            roll_up(run, state.stages, state.jobs, now=now)
            if not cleanup_stages:
                set_run_status(run, RunStatus.CANCELED, now=now)  # if it was between stages
            run.message = message

    def cancel_pipeline_runs(self, *, pipeline_id: str, stopped_by: str) -> None:
        """Stop every unfinished run of a pipeline (when it is deleted)."""
        with self.db.reader() as session:
            run_ids = run_queries.list_run_ids(
                session, pipeline_id=pipeline_id, statuses=list(RUN_ACTIVE)
            )
        for run_id in run_ids:
            with contextlib.suppress(Conflict):  # it may have ended on its own meanwhile
                self.stop_run(pipeline_id=pipeline_id, run_id=run_id, stopped_by=stopped_by)

    def retry_run(self, *, pipeline_id: str, run_id: str, job_run_ids: list[str] | None) -> None:
        """Run the failed (or canceled) jobs again inside the same run and run number: those in
        `job_run_ids`, or all of them. Jobs skipped because of them and stages that never
        started follow as usual."""
        with self.locked_run(run_id, pipeline_id=pipeline_id) as (state, now):
            run = state.run
            if run.status not in (RunStatus.FAILED, RunStatus.CANCELED):
                raise Conflict(
                    f"only a FAILED or CANCELED run can be retried; run #{run.run_number}"
                    f" is {run.status}"
                )
            chosen = _jobs_to_retry(state, job_run_ids)
            if not chosen:
                raise Conflict(f"run #{run.run_number} has no failed or canceled job to retry")
            restarted_stages = {job.stage_run_id for job in chosen}
            first = min(s.sequence for s in state.stages if s.id in restarted_stages)
            for job in state.jobs:
                later = state.stage_of(job).sequence >= first
                if job in chosen or (later and job.status in (S.SKIPPED, S.CANCELED)):
                    restart_work(job, S.INIT)
                    job.dispatch_count = 0
                    for step in state.steps_of_job(job):
                        restart_work(step, S.INIT)
            for stage in state.stages:
                if stage.sequence >= first and stage.status not in (S.COMPLETED, S.UNSELECTED):
                    restart_work(stage, S.INIT)
                    for step in state.entry_steps(stage):
                        restart_work(step, S.INIT)
            run.stop_requested_at = None
            run.message = None
            set_run_status(run, RunStatus.RUNNING, now=now)

    def decide_review(
        self,
        *,
        pipeline_id: str,
        run_id: str,
        step_run_id: str,
        job_run_id: str | None,
        reviewer: Reviewer,
        approve: bool,
        comment: str | None = None,
    ) -> None:
        """Pass or refuse a paused manual review: a review job's step (`job_run_id` given) or a
        stage-entry review (`job_run_id` None)."""
        with self.locked_run(run_id, pipeline_id=pipeline_id) as (state, now):
            step = state.step(step_run_id)
            if step is None or step.task != CHECKPOINT_TASK or step.job_run_id != job_run_id:
                where = f"job run {job_run_id}" if job_run_id else "a stage entry"
                raise StepNotFound(f"no manual review step {step_run_id} in {where} of this run")
            if step.status != S.PAUSED:
                raise Conflict(f"the review is not waiting for a decision (it is {step.status})")
            review = review_of(tuple((i["key"], i["value"]) for i in step.inputs))
            if review.approvers and not {reviewer.user_id, reviewer.name} & set(review.approvers):
                raise Forbidden(f"{reviewer.name} is not an approver of this review")
            verdict = f"{'passed' if approve else 'refused'} by {reviewer.name}"
            if comment:
                verdict += f": {comment}"
            if not approve:
                settle_review(state, step, passed=False, message=verdict, now=now)
                return
            if reviewer.user_id not in step.approvals:
                step.approvals = [*step.approvals, reviewer.user_id, reviewer.name]
            if _approved(review.approvers, review.check_strategy, step.approvals):
                settle_review(state, step, passed=True, message=verdict, now=now)

    # -- concurrency ------------------------------------------------------------------------

    def _over_limit(
        self, session: Session, pipeline: Pipeline, *, exclude: str
    ) -> RunStatus | None:
        """SUSPEND or IGNORED when the pipeline's concurrency limit is reached, else None."""
        control = pipeline.concurrency_control or {}
        limit = control.get("concurrency_number") or 0
        if control.get("enable") is False or limit < 1:
            return None
        active = run_queries.count_runs(
            session,
            pipeline_id=pipeline.id,
            statuses=[RunStatus.RUNNING, RunStatus.PAUSED, RunStatus.SUSPEND],
            exclude=exclude,
        )
        if active < limit:
            return None
        return RunStatus.IGNORED if control.get("exceed_action") == "ABORT" else RunStatus.SUSPEND

    def _release_suspended(self, session: Session, pipeline_id: str, now: int) -> bool:
        """Start the oldest SUSPEND runs of the pipeline while it is under its limit."""
        control = pipeline_queries.read_concurrency_control(session, pipeline_id=pipeline_id)
        if not control:
            return False  # nothing is ever held back
        pipeline_queries.lock_pipeline(session, pipeline_id=pipeline_id)
        limit = control.get("concurrency_number") or 0
        queued = False
        running = run_queries.count_runs(
            session, pipeline_id=pipeline_id, statuses=[RunStatus.RUNNING, RunStatus.PAUSED]
        )
        for run_id in run_queries.list_run_ids(
            session, pipeline_id=pipeline_id, statuses=[RunStatus.SUSPEND], oldest_first=True
        ):
            if limit >= 1 and running >= limit:
                break
            run = run_queries.read_run(session, run_id=run_id, for_update=True)
            if run is None or run.status != RunStatus.SUSPEND:
                continue
            state = RunState(session, run)
            for stage in state.stages:
                set_work_status(stage, S.INIT, now=now)
            for job in state.jobs:
                set_work_status(job, S.INIT, now=now)
            set_run_status(run, RunStatus.RUNNING, now=now)
            queued |= advance(state, now)
            running += 1
        return queued


def _hold(state: RunState, status: RunStatus, now: int) -> None:
    """Hold a new run back: SUSPEND (waits for a slot) or IGNORED (dropped)."""
    work = S.SUSPEND if status == RunStatus.SUSPEND else S.IGNORED
    for stage in state.stages:
        set_work_status(stage, work, now=now)
    for job in state.jobs:
        set_work_status(job, work, now=now)
    state.run.status = status
    if status == RunStatus.IGNORED:
        state.run.end_time = now
        state.run.message = "not started: the pipeline's concurrency limit was reached"
    roll_up(state.run, state.stages, state.jobs, now=now)


def _is_cleanup(job: JobRun) -> bool:
    return bool(condition_of(job).status_functions & CLEANUP_FUNCTIONS)


def _jobs_to_retry(state: RunState, job_run_ids: list[str] | None) -> list[JobRun]:
    if not job_run_ids:
        return [job for job in state.jobs if job.status in RETRYABLE]
    chosen = []
    for index, job_run_id in enumerate(job_run_ids):
        job = state.job(job_run_id)
        if job is None:
            raise JobNotFound(f"job_run_ids[{index}]: job run {job_run_id} is not in this run")
        if job.status not in RETRYABLE:
            raise InvalidInput(
                f"job_run_ids[{index}]: job '{job.name}' is {job.status}; only FAILED or"
                " CANCELED jobs are retried"
            )
        chosen.append(job)
    return chosen


def _approved(approvers: tuple[str, ...], strategy: str, approvals: list[str]) -> bool:
    """Approvers are listed by user ID or name; `approvals` holds both of each who passed."""
    if not approvers or strategy == "any":
        return True
    return all(approver in approvals for approver in approvers)


def settle_review(state: RunState, step: StepRun, *, passed: bool, message: str, now: int) -> None:
    """End a paused review: passed -> COMPLETED and the stage or job goes on; else FAILED."""
    ending = S.COMPLETED if passed else S.FAILED
    set_work_status(step, S.RUNNING, now=now)
    set_work_status(step, ending, now=now, message=message)
    job = state.job(step.job_run_id) if step.job_run_id else None
    if job is not None:
        set_work_status(job, S.RUNNING, now=now)
        set_work_status(job, ending, now=now, message=message)
        return
    stage = next(s for s in state.stages if s.id == step.stage_run_id)
    if passed:
        set_work_status(stage, S.RUNNING, now=now)
        if not state.jobs_of(stage):
            set_work_status(stage, S.COMPLETED, now=now)
    else:
        set_work_status(stage, S.FAILED, now=now)
