"""Sweeps for what nobody reports: agents that went silent, jobs and reviews past their time.

Each finding is handled in its own transaction on the locked run, re-checked under the lock,
so several server processes may sweep at once without doing anything twice.
"""

import logging
from collections.abc import Callable

from stageline.domain.errors import JobNotFound
from stageline.domain.pipeline import review_of
from stageline.domain.statuses import STAGE_TERMINAL, StageStatus
from stageline.domain.transitions import Intent
from stageline.engine.dispatcher import LeasePolicy
from stageline.engine.journal import TIMER
from stageline.engine.runs import RunEngine, settle_review
from stageline.engine.state import RunState
from stageline.engine.transitions import apply
from stageline.store.queries import jobs as job_queries
from stageline.store.queries import runs as run_queries
from stageline.store.tables import JobRun, StepRun

log = logging.getLogger(__name__)

S = StageStatus
JobHandler = Callable[[RunState, JobRun], None]
AGENT_LOST = "agent lost"


class Sweeper:
    def __init__(self, engine: RunEngine, policy: LeasePolicy) -> None:
        self.engine = engine
        self.policy = policy

    def grant_grace(self) -> int:
        """At start-up: give every claim a fresh lease, so agents that kept running while this
        server was down can report before their jobs are taken from them."""
        now = self.engine.clock()
        with self.engine.db.writer() as session:
            return job_queries.extend_claims(session, until=now + self.policy.lease_ms)

    def run_once(self) -> None:
        now = self.engine.clock()
        with self.engine.db.reader() as session:
            lost = job_queries.expired_claims(session, now=now)
            overdue = job_queries.past_deadline(session, now=now)
            reviews = run_queries.reviews_past_deadline(session, now=now)
        for job_run_id in lost:
            self._on_job(job_run_id, self._take_back)
        for job_run_id in overdue:
            self._on_job(job_run_id, self._time_out)
        for run_id, step_run_id in reviews:
            try:
                with self.engine.locked_run(run_id, TIMER) as state:
                    step = state.step(step_run_id)
                    if step is not None and _review_overdue(step, state.now):
                        _time_out_review(state, step)
            except Exception:
                log.exception("could not sweep review step %s", step_run_id)

    def _on_job(self, job_run_id: str, handle: JobHandler) -> None:
        try:
            with self.engine.locked_run_of_job(job_run_id, TIMER) as state:
                locked = state.job(job_run_id)
                if locked is not None:
                    handle(state, locked)
        except JobNotFound:
            pass  # its run was deleted meanwhile
        except Exception:
            log.exception("could not sweep job %s", job_run_id)

    def _take_back(self, state: RunState, job: JobRun) -> None:
        """The agent stopped heartbeating: queue the job again (REDISPATCH) or fail it."""
        now = state.now
        if job.lease_expires_at is None or job.lease_expires_at >= now or job.claimed_by is None:
            return
        lost = job.claimed_by
        if job.dispatch_count > self.policy.max_redispatch:
            _fail(state, job, f"{AGENT_LOST} ({lost})")
            log.warning("job %s failed: agent %s lost, no redispatch left", job.id, lost)
            return
        message = f"{AGENT_LOST} ({lost}); redispatching"
        apply(state, job, S.REDISPATCH, intent=Intent.REDISPATCH, message=message)
        for step in state.steps_of_job(job):
            apply(state, step, S.QUEUED, intent=Intent.REDISPATCH)
        log.warning("job %s taken back from lost agent %s", job.id, lost)

    def _time_out(self, state: RunState, job: JobRun) -> None:
        if job.deadline_at is None or job.deadline_at >= state.now or job.status in STAGE_TERMINAL:
            return
        _fail(state, job, f"timed out after {job.timeout}")


def _fail(state: RunState, job: JobRun, message: str) -> None:
    """End a job FAILED: its running step fails with it, the steps after it are skipped."""
    apply(state, job, S.FAILED, message=message)
    for step in state.steps_of_job(job):
        if step.status not in STAGE_TERMINAL:
            apply(state, step, S.FAILED if step.status == S.RUNNING else S.SKIPPED)


def _time_out_review(state: RunState, step: StepRun) -> None:
    review = review_of(tuple((i["key"], i["value"]) for i in step.inputs))
    passed = review.timeout_strategy == "pass"
    verdict = "passed" if passed else "refused"
    message = f"no decision within {review.timeout_seconds}s: {verdict}"
    settle_review(state, step, passed=passed, message=message)


def _review_overdue(step: StepRun, now: int) -> bool:
    return step.status == S.PAUSED and step.deadline_at is not None and step.deadline_at < now
