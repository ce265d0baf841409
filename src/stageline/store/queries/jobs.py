"""The job queue: claims with leases, heartbeats, and the sweeps for lost agents and deadlines."""

from collections.abc import Collection, Sequence

from sqlalchemy import and_, case, select, update
from sqlalchemy.orm import Session

from stageline.domain.statuses import STAGE_WAITING_FOR_AGENT
from stageline.store.tables import JobRun

CLAIMABLE = tuple(sorted(STAGE_WAITING_FOR_AGENT))
"""The jobs an agent may claim, in a fixed order (the statement's parameters never vary)."""
CANDIDATES_PER_CLAIM = 50
"""Oldest unclaimed jobs of the pool looked at per claim; the first whose labels fit is taken."""


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
    candidates = (
        select(JobRun.id, JobRun.labels)
        .where(JobRun.status.in_(CLAIMABLE), JobRun.claimed_by.is_(None), JobRun.pool == pool)
        .order_by(JobRun.queued_at, JobRun.id)
        .limit(CANDIDATES_PER_CLAIM)
    )
    skip_locked = session.get_bind().dialect.name == "postgresql"
    held = set(labels)
    for job_run_id, wanted in session.execute(candidates).all():
        if not set(wanted or ()) <= held:
            continue
        if skip_locked:
            lock = select(JobRun.id).where(JobRun.id == job_run_id, JobRun.claimed_by.is_(None))
            if session.scalar(lock.with_for_update(skip_locked=True)) is None:
                continue  # another claimer holds it right now
        claimed = session.execute(
            update(JobRun)
            .where(JobRun.id == job_run_id, JobRun.claimed_by.is_(None))
            .values(
                claimed_by=claimant,
                claimed_at=now,
                dispatch_id=dispatch_id,
                dispatch_count=JobRun.dispatch_count + 1,
                lease_expires_at=now + lease_ms,
                events_applied=0,
            )
        )
        if claimed.rowcount == 1:  # type: ignore[attr-defined]
            return session.get(JobRun, job_run_id)
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


def list_job_statuses(session: Session, *, job_run_ids: Sequence[str]) -> dict[str, str]:
    rows = session.execute(select(JobRun.id, JobRun.status).where(JobRun.id.in_(job_run_ids)))
    return {row[0]: row[1] for row in rows}


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
