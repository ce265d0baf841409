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

from stageline.domain.conditions import Condition, ConditionContext, parse_condition
from stageline.domain.pipeline import AUTO_TRIGGER_TASK, CHECKPOINT_TASK, review_of
from stageline.domain.statuses import (
    RUN_HELD,
    STAGE_ACTIVE,
    STAGE_SUCCESSFUL,
    STAGE_TERMINAL,
    StageStatus,
)
from stageline.engine.state import RunState
from stageline.engine.transitions import apply, apply_all, roll_up
from stageline.store.tables import JobRun, StageRun, StepRun

S = StageStatus
Outcome = Literal["ok", "bad", "open"]


@functools.lru_cache(maxsize=4096)
def _parsed(source: str | None) -> Condition:
    return parse_condition(source)


def condition_of(job: JobRun) -> Condition:
    """The job's parsed condition (validated when the pipeline was saved; parsed once)."""
    return _parsed(job.condition)


def advance(state: RunState) -> bool:
    """Roll up, then start whatever may start now, until nothing more does; then roll the run up
    (only then: a `run_always` stage still to start after a failed one keeps the run RUNNING).
    True when it queued a job for the agents. A run the concurrency limit holds back does not
    move."""
    if state.run.status in RUN_HELD:
        return False
    queued_before = state.queued_jobs()
    while True:
        roll_up(state, run=False)
        progressed = False
        outcomes = _StageOutcomes(state)
        for stage in state.stages:
            if stage.status == S.INIT and outcomes.ready(stage):
                _start_stage(state, stage)
                progressed = True
            if stage.status in STAGE_ACTIVE and not state.gate_pending(stage):
                progressed |= _start_ready_jobs(state, stage)
        if not progressed:
            break
    roll_up(state)
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


def _start_stage(state: RunState, stage: StageRun) -> None:
    apply(state, stage, S.QUEUED)
    for step in state.entry_steps(stage):
        if step.task == CHECKPOINT_TASK:
            apply(state, stage, S.PAUSED, started=True)
            pause_review(state, step)
            return
        if step.task == AUTO_TRIGGER_TASK:
            apply(state, step, S.COMPLETED, started=True)
    if not state.jobs_of(stage):
        apply(state, stage, S.COMPLETED, started=True)


def pause_review(state: RunState, step: StepRun) -> None:
    """A manual review waits for a person until its deadline."""
    apply(state, step, S.PAUSED, started=True)
    inputs = tuple((i["key"], i["value"]) for i in step.inputs)
    step.deadline_at = state.now + review_of(inputs).timeout_seconds * 1000


def _start_ready_jobs(state: RunState, stage: StageRun) -> bool:
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
            _start_job(state, job)
        else:
            apply(state, job, S.SKIPPED, message=f"condition not met: {condition.source}")
            apply_all(state, state.steps_of_job(job), S.SKIPPED)
        status_of[job.identifier] = S(job.status)
        progressed = True
    return progressed


def _start_job(state: RunState, job: JobRun) -> None:
    apply(state, job, S.QUEUED)
    job.queued_at = state.now
    steps = state.steps_of_job(job)
    review = next((step for step in steps if step.task == CHECKPOINT_TASK), None)
    if review is not None:  # no agent needed: it waits for a person
        apply(state, job, S.PAUSED, started=True)
        pause_review(state, review)
        return
    apply_all(state, steps, S.QUEUED)
