"""The job queue: claims with leases, heartbeats, and the sweeps for lost agents, deadlines and
jobs that wait for an agent."""

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from sqlalchemy import and_, bindparam, case, func, select, update
from sqlalchemy.orm import Session

from stageline.domain.statuses import STAGE_WAITING_FOR_AGENT
from stageline.store.tables import JobRun

CLAIMABLE = tuple(sorted(STAGE_WAITING_FOR_AGENT))
"""The jobs an agent may claim, in a fixed order (the statement's parameters never vary)."""
CANDIDATES_PER_CLAIM = 50
"""Oldest unclaimed jobs of the pool looked at per claim; the first whose labels fit is taken."""


_CANDIDATES = (
    select(JobRun.id, JobRun.labels)
    .where(
        JobRun.status.in_(CLAIMABLE), JobRun.claimed_by.is_(None), JobRun.pool == bindparam("pool")
    )
    .order_by(JobRun.queued_at, JobRun.id)
    .limit(CANDIDATES_PER_CLAIM)
)
_UNCLAIMED = and_(JobRun.id == bindparam("job_run_id"), JobRun.claimed_by.is_(None))
_LOCK_UNCLAIMED = select(JobRun.id).where(_UNCLAIMED).with_for_update(skip_locked=True)
_CLAIM = (
    update(JobRun)
    .where(_UNCLAIMED)
    .values(
        claimed_by=bindparam("claimant"),
        claimed_at=bindparam("now"),
        dispatch_id=bindparam("dispatch_id"),
        dispatch_count=JobRun.dispatch_count + 1,
        lease_expires_at=bindparam("lease_until"),
        events_applied=0,
    )
    .returning(JobRun)
)
"""A compare-and-set on `claimed_by IS NULL`, answering the claimed job."""


def claim_next_job(
    session: Session,
    *,
    claimant: str,
    pool: str,
    labels: Collection[str],
    dispatch_id: str,
    now: int,
    lease_ms: int,
) -> JobRun | None:
    """Claim the oldest waiting job of `pool` whose labels the agent has, or None.

    Candidates are read without locks; the chosen one is then locked alone — with FOR UPDATE
    SKIP LOCKED on PostgreSQL, so that concurrent claimers pass each other instead of waiting,
    while on SQLite the writer transaction (BEGIN IMMEDIATE) already serializes them. Either
    way the UPDATE is a compare-and-set on `claimed_by IS NULL`: a job is never claimed twice.
    """
    skip_locked = session.get_bind().dialect.name == "postgresql"
    held = set(labels)
    for job_run_id, wanted in session.execute(_CANDIDATES, {"pool": pool}).all():
        if not set(wanted or ()) <= held:
            continue
        if skip_locked and session.scalar(_LOCK_UNCLAIMED, {"job_run_id": job_run_id}) is None:
            continue  # another claimer holds it right now
        claimed = session.scalar(
            _CLAIM,
            {
                "job_run_id": job_run_id,
                "claimant": claimant,
                "now": now,
                "dispatch_id": dispatch_id,
                "lease_until": now + lease_ms,
            },
        )
        if claimed is not None:
            return claimed
    return None


def renew_lease(session: Session, *, job_run_id: str, dispatch_id: str, until: int) -> set[str]:
    """Extend the lease of this claim if it is still the job's current one and the job has not
    ended; returns {job_run_id} when it is current, else an empty set."""
    result = session.execute(
        update(JobRun)
        .where(JobRun.id == job_run_id, JobRun.dispatch_id == dispatch_id)
        .values(lease_expires_at=case((JobRun.lease_expires_at.is_(None), None), else_=until))
    )
    return {job_run_id} if result.rowcount == 1 else set()  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Claim:
    """A claimed job as a heartbeat sees it: its status, its agent and what it asked for."""

    status: str
    claimed_by: str | None
    pool: str
    labels: tuple[str, ...]


def list_claims(session: Session, *, job_run_ids: Sequence[str]) -> dict[str, Claim]:
    query = select(JobRun.id, JobRun.status, JobRun.claimed_by, JobRun.pool, JobRun.labels).where(
        JobRun.id.in_(job_run_ids)
    )
    return {
        job_id: Claim(status, claimed_by, pool, tuple(labels or ()))
        for job_id, status, claimed_by, pool, labels in session.execute(query)
    }


@dataclass(frozen=True)
class WaitingJob:
    """An unclaimed job in the queue, with what the sweep needs to tell why it waits."""

    id: str
    run_id: str
    status: str
    pool: str
    labels: tuple[str, ...]
    queued_at: int | None
    timeout: str | None
    message: str | None


def list_waiting_jobs(session: Session) -> list[WaitingJob]:
    """Every queued job no agent has claimed, oldest first."""
    query = (
        select(
            JobRun.id,
            JobRun.run_id,
            JobRun.status,
            JobRun.pool,
            JobRun.labels,
            JobRun.queued_at,
            JobRun.timeout,
            JobRun.message,
        )
        .where(JobRun.status.in_(CLAIMABLE), JobRun.claimed_by.is_(None))
        .order_by(JobRun.queued_at, JobRun.id)
    )
    return [
        WaitingJob(id_, run_id, status, pool, tuple(labels or ()), queued_at, timeout, message)
        for id_, run_id, status, pool, labels, queued_at, timeout, message in session.execute(query)
    ]


def count_waiting_jobs(session: Session) -> int:
    """How many queued jobs no agent has claimed yet (those `list_waiting_jobs` lists)."""
    query = select(func.count()).where(JobRun.status.in_(CLAIMABLE), JobRun.claimed_by.is_(None))
    return int(session.scalar(query) or 0)


def update_wait_message(
    session: Session, *, job_run_id: str, before: str | None, after: str
) -> bool:
    """Set the message of a job that still waits unclaimed and still says `before`.

    A compare-and-set, like the claim: a job claimed, stopped or taken back since `before` was
    read keeps what it says now. Returns whether the message was set.
    """
    result = session.execute(
        update(JobRun)
        .where(
            JobRun.id == job_run_id,
            JobRun.status.in_(CLAIMABLE),
            JobRun.claimed_by.is_(None),
            JobRun.message.is_not_distinct_from(before),
        )
        .values(message=after)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def lock_waiting_job(session: Session, *, job_run_id: str) -> JobRun | None:
    """The job, row-locked and freshly read, if it still waits unclaimed; else None.

    Claims lock only the job row, not its run: whoever ends a waiting job must hold this lock
    so that a claim cannot take the job at the same moment (claimers skip a locked row).
    """
    query = (
        select(JobRun)
        .where(JobRun.id == job_run_id, JobRun.status.in_(CLAIMABLE), JobRun.claimed_by.is_(None))
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return session.scalar(query)


def expired_claims(session: Session, *, now: int) -> list[str]:
    """Jobs whose agent has not renewed its lease in time."""
    query = select(JobRun.id).where(JobRun.lease_expires_at < now, JobRun.claimed_by.is_not(None))
    return list(session.scalars(query))


def past_deadline(session: Session, *, now: int) -> list[str]:
    """Running jobs past their timeout, and paused reviews past theirs."""
    return list(session.scalars(select(JobRun.id).where(JobRun.deadline_at < now)))


def extend_claims(session: Session, *, until: int) -> int:
    """Give every claimed job a fresh lease (a restarted server gives agents time to report)."""
    result = session.execute(
        update(JobRun)
        .where(and_(JobRun.claimed_by.is_not(None), JobRun.lease_expires_at < until))
        .values(lease_expires_at=until)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
