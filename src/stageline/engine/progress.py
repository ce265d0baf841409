"""Moving a locked run forward: which stages and jobs may start now, and starting them.

Every command and report ends here, inside the transaction that locked the run row. Stages
start when the stages they depend on (by default: the one before) succeeded, or — for
`run_always` stages — once those ended in any way. A stage's jobs start when the jobs they
depend on ended and their `condition` holds; otherwise they are SKIPPED. Manual reviews pause
without an agent: a review job as soon as it is due, a stage-entry review before its jobs.
"""

import functools
from collections.abc import Iterator
from typing import Literal

from sqlalchemy.orm import Session

from stageline.domain.conditions import Condition, ConditionContext, parse_condition
from stageline.domain.pipeline import AUTO_TRIGGER_TASK, CHECKPOINT_TASK, review_of
from stageline.domain.statuses import (
    STAGE_STARTED,
    STAGE_SUCCESSFUL,
    STAGE_TERMINAL,
    RunStatus,
    StageStatus,
)
from stageline.engine.transitions import roll_up, set_work_status
from stageline.store.queries import runs as run_queries
from stageline.store.tables import JobRun, PipelineRun, StageRun, StepRun

S = StageStatus
STAGE_ACTIVE = STAGE_STARTED | {S.QUEUED}
WAITING = frozenset({RunStatus.SUSPEND, RunStatus.IGNORED})
"""Runs that must not move: queued behind the concurrency limit, or dropped by it."""
Outcome = Literal["ok", "bad", "open"]


class RunState:
    """A locked run with its stages, jobs and steps, loaded for one transaction."""

    def __init__(self, session: Session, run: PipelineRun) -> None:
        self.session = session
        self.run = run
        self.stages = run_queries.list_stages(session, run_id=run.id)
        self.jobs = run_queries.list_jobs(session, run_id=run.id)

    @functools.cached_property
    def steps(self) -> list[StepRun]:
        """Loaded on first use: most reports (a job started, a log chunk) need none."""
        return run_queries.list_steps(self.session, run_id=self.run.id)

    @functools.cached_property
    def variables(self) -> dict[str, str]:
        return {v["name"]: v["value"] for v in self.run.variables}

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
        return sum(j.status in (S.QUEUED, S.REDISPATCH) and j.claimed_by is None for j in self.jobs)


@functools.lru_cache(maxsize=4096)
def _parsed(source: str | None) -> Condition:
    return parse_condition(source)


def condition_of(job: JobRun) -> Condition:
    """The job's parsed condition (validated when the pipeline was saved; parsed once)."""
    return _parsed(job.condition)


def advance(state: RunState, now: int) -> bool:
    """Roll up, then start whatever may start now, until nothing more does. True when it queued
    a job for the agents."""
    queued_before = state.queued_jobs()
    if state.run.status not in WAITING:
        while True:
            roll_up(state.run, state.stages, state.jobs, now=now)
            progressed = False
            outcomes = _StageOutcomes(state)
            for stage in state.stages:
                if stage.status == S.INIT and outcomes.ready(stage):
                    _start_stage(state, stage, now)
                    progressed = True
                if stage.status in STAGE_ACTIVE and not state.gate_pending(stage):
                    progressed |= _start_ready_jobs(state, stage, now)
            if not progressed:
                break
    return state.queued_jobs() > queued_before


class _StageOutcomes:
    """Whether each stage succeeded ("ok"), ended badly or will never run ("bad"), or neither."""

    def __init__(self, state: RunState) -> None:
        self._by_id = {stage.identifier: stage for stage in state.stages}
        self._order = state.stages
        self._memo: dict[str, Outcome] = {}

    def needs(self, stage: StageRun) -> Iterator[StageRun]:
        """The stages it depends on: its `depends_on`, or else the stage before it."""
        if stage.depends_on:
            yield from (self._by_id[identifier] for identifier in stage.depends_on)
            return
        index = self._order.index(stage)
        if index > 0:
            yield self._order[index - 1]

    def outcome(self, stage: StageRun) -> Outcome:
        if stage.identifier not in self._memo:
            self._memo[stage.identifier] = self._judge(stage)
        return self._memo[stage.identifier]

    def _judge(self, stage: StageRun) -> Outcome:
        if stage.status in STAGE_SUCCESSFUL:
            return "ok"
        if stage.status in STAGE_TERMINAL:
            return "bad"
        if stage.status == S.INIT:
            needs = [self.outcome(need) for need in self.needs(stage)]
            if not stage.run_always and "bad" in needs:
                return "bad"  # it will never start
        return "open"

    def ready(self, stage: StageRun) -> bool:
        needs = [self.outcome(need) for need in self.needs(stage)]
        if "open" in needs:
            return False
        return stage.run_always or all(outcome == "ok" for outcome in needs)


def _start_stage(state: RunState, stage: StageRun, now: int) -> None:
    set_work_status(stage, S.QUEUED, now=now)
    for step in state.entry_steps(stage):
        if step.task == CHECKPOINT_TASK:
            set_work_status(stage, S.RUNNING, now=now)
            set_work_status(stage, S.PAUSED, now=now)
            pause_review(step, now)
            return
        if step.task == AUTO_TRIGGER_TASK:
            for status in (S.QUEUED, S.RUNNING, S.COMPLETED):
                set_work_status(step, status, now=now)
    if not state.jobs_of(stage):
        set_work_status(stage, S.RUNNING, now=now)
        set_work_status(stage, S.COMPLETED, now=now)


def pause_review(step: StepRun, now: int) -> None:
    for status in (S.QUEUED, S.RUNNING, S.PAUSED):
        set_work_status(step, status, now=now)
    step.deadline_at = (
        now + review_of(tuple((i["key"], i["value"]) for i in step.inputs)).timeout_seconds * 1000
    )


def _start_ready_jobs(state: RunState, stage: StageRun, now: int) -> bool:
    status_of = {job.identifier: S(job.status) for job in state.jobs_of(stage)}
    progressed = False
    for job in state.jobs_of(stage):
        if job.status != S.INIT:
            continue
        needs = tuple(status_of[identifier] for identifier in job.depends_on)
        if not all(need in STAGE_TERMINAL for need in needs):
            continue
        condition = condition_of(job)
        context = ConditionContext(
            needs=needs,
            run_failed=state.failed,
            run_cancelled=state.run.stop_requested_at is not None,
            variables=state.variables if condition.variables else {},  # loaded only if named
        )
        if condition.evaluate(context):
            _start_job(state, job, now)
        else:
            set_work_status(
                job, S.SKIPPED, now=now, message=f"condition not met: {condition.source}"
            )
            for step in state.steps_of_job(job):
                set_work_status(step, S.SKIPPED, now=now)
        status_of[job.identifier] = S(job.status)
        progressed = True
    return progressed


def _start_job(state: RunState, job: JobRun, now: int) -> None:
    set_work_status(job, S.QUEUED, now=now)
    job.queued_at = now
    steps = state.steps_of_job(job)
    review = next((step for step in steps if step.task == CHECKPOINT_TASK), None)
    if review is not None:  # no agent needed: it waits for a person
        set_work_status(job, S.RUNNING, now=now)
        set_work_status(job, S.PAUSED, now=now)
        pause_review(review, now)
        return
    for step in steps:
        set_work_status(step, S.QUEUED, now=now)
