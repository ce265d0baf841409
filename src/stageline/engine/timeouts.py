"""Sweeps for what nobody reports: agents that went silent, jobs and reviews past their time,
and jobs that wait for an agent: each says why it waits, and fails once it has waited too long
for an agent that no connected one can be.

Each finding that changes a status is handled in its own transaction on the locked run,
re-checked under the lock, so several server processes may sweep at once without doing anything
twice; what a waiting job says is only a compare-and-set of its message.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from stageline.domain.errors import JobNotFound
from stageline.domain.pipeline import job_timeout_seconds, review_of
from stageline.domain.statuses import STAGE_TERMINAL, StageStatus
from stageline.domain.transitions import Intent
from stageline.domain.waiting import AgentSeen, explain, gave_up, with_wait
from stageline.engine.dispatcher import LeasePolicy
from stageline.engine.journal import TIMER
from stageline.engine.runs import RunEngine, settle_review
from stageline.engine.state import RunState
from stageline.engine.transitions import apply
from stageline.store.queries import agents as agent_queries
from stageline.store.queries import changes as change_queries
from stageline.store.queries import jobs as job_queries
from stageline.store.queries import runs as run_queries
from stageline.store.tables import JobRun, StepRun

log = logging.getLogger(__name__)

S = StageStatus
JobHandler = Callable[[RunState, JobRun], None]
AGENT_LOST = "agent lost"
EXPLAIN_AFTER_MS = 2_000
"""A job says why it waits once it has waited this long; most are claimed well before."""


@dataclass(frozen=True)
class QueuePolicy:
    agent_seen_seconds: float = 60.0
    """An agent that claimed or heartbeated this recently counts as connected."""
    queue_timeout_seconds: int = 3600
    """How long a job without a `timeout` of its own waits when no connected agent can take
    it, before it fails."""

    @property
    def seen_ms(self) -> int:
        return int(self.agent_seen_seconds * 1000)

    def limit_seconds(self, timeout: str | None) -> int:
        """How long a job with this `timeout` may wait for an agent nobody connected can be."""
        return job_timeout_seconds(timeout) if timeout else self.queue_timeout_seconds


@dataclass
class Waits:
    """What one sweep found in the queue: messages to change (job, before, after), and jobs
    that waited too long for an agent nobody connected can be."""

    messages: list[tuple[str, str | None, str]] = field(default_factory=list)
    hopeless: list[str] = field(default_factory=list)


class Sweeper:
    def __init__(
        self, engine: RunEngine, policy: LeasePolicy, queue: QueuePolicy | None = None
    ) -> None:
        self.engine = engine
        self.policy = policy
        self.queue = queue or QueuePolicy()
        self.started_at = engine.clock()
        """No job fails for want of agents before they had the time to connect to this server."""

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
            waits = self._find_waits(session, now)
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
        if waits.messages:
            self._explain(waits.messages)
        for job_run_id in waits.hopeless:
            self._on_job(job_run_id, self._give_up)

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

    # -- jobs waiting for an agent ----------------------------------------------------------

    def _find_waits(self, session: Session, now: int) -> Waits:
        waits = Waits()
        jobs = job_queries.list_waiting_jobs(session)
        if not jobs:
            return waits
        agents = self._connected(session, now)
        for job in jobs:
            wait = explain(job.pool, job.labels, agents)
            if wait.hopeless and self._past_limit(session, job, now):
                waits.hopeless.append(job.id)
                continue
            if job.queued_at is None or now - job.queued_at < EXPLAIN_AFTER_MS:
                continue
            message = with_wait(job.message, wait.reason)
            if message != job.message:
                waits.messages.append((job.id, job.message, message))
        return waits

    def _explain(self, messages: list[tuple[str, str | None, str]]) -> None:
        """Set the messages of waiting jobs; no status changes, so no run lock: each is a
        compare-and-set that leaves a job claimed or changed meanwhile as it is."""
        try:
            with self.engine.db.writer() as session:
                for job_run_id, before, after in messages:
                    job_queries.update_wait_message(
                        session, job_run_id=job_run_id, before=before, after=after
                    )
        except Exception:
            log.exception("could not say why %d job(s) wait", len(messages))

    def _give_up(self, state: RunState, job: JobRun) -> None:
        """Fail a job that waited too long for an agent no connected one can be; re-checked
        under the job's row lock, as a claim may have taken it or an agent connected."""
        locked = job_queries.lock_waiting_job(state.session, job_run_id=job.id)
        if locked is None:
            return
        wait = explain(locked.pool, locked.labels, self._connected(state.session, state.now))
        if not wait.hopeless or not self._past_limit(state.session, locked, state.now):
            return
        _fail(state, locked, gave_up(self.queue.limit_seconds(locked.timeout), wait.reason))
        log.warning("job %s failed: %s", locked.id, locked.message)

    def _connected(self, session: Session, now: int) -> list[AgentSeen]:
        seen = agent_queries.list_agents_seen(session, since=now - self.queue.seen_ms)
        return [AgentSeen(name, pool, frozenset(labels)) for name, pool, labels in seen]

    def _past_limit(self, session: Session, job: JobRun | job_queries.WaitingJob, now: int) -> bool:
        """Whether `job` has waited longer than it may for an agent nobody connected can be.

        A job taken from a lost agent keeps its place in the queue (`queued_at`) but waits only
        since it was taken back, which the change log tells. A server that has just started
        gives agents the time to connect before it counts any of them missing.
        """
        if now - self.started_at < self.queue.seen_ms:
            return False
        limit_ms = self.queue.limit_seconds(job.timeout) * 1000
        if job.queued_at is None or now - job.queued_at <= limit_ms:
            return False
        if job.status == S.REDISPATCH:
            taken_back = change_queries.read_last_change_at(
                session, run_id=job.run_id, entity_id=job.id, to_status=S.REDISPATCH
            )
            if taken_back is not None and now - taken_back <= limit_ms:
                return False
        return True


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
