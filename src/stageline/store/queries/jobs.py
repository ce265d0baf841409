"""The job queue: QUEUED jobs in the order they were queued, claimed by one executor each."""

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from stageline.store.tables import JobRun

QUEUED = "QUEUED"


def claim_next_job(session: Session, *, claimant: str, now: int) -> JobRun | None:
    """Claim the oldest unclaimed QUEUED job for `claimant`, or None if there is none.

    On PostgreSQL, FOR UPDATE SKIP LOCKED lets concurrent claimers pass each other; on SQLite the
    writer transaction (BEGIN IMMEDIATE) already serializes them. Either way the UPDATE is a
    compare-and-set on `claimed_by IS NULL`, so a job is never claimed twice.
    """
    candidates = (
        select(JobRun.id)
        .where(JobRun.status == QUEUED, JobRun.claimed_by.is_(None))
        .order_by(JobRun.queued_at, JobRun.id)
        .limit(1)
    )
    if session.get_bind().dialect.name == "postgresql":
        candidates = candidates.with_for_update(skip_locked=True)
    job_run_id = session.scalar(candidates)
    if job_run_id is None:
        return None
    claimed = session.execute(
        update(JobRun)
        .where(JobRun.id == job_run_id, JobRun.claimed_by.is_(None))
        .values(claimed_by=claimant, claimed_at=now)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        return None
    return session.get(JobRun, job_run_id)


def list_job_statuses(session: Session, *, job_run_ids: list[str]) -> dict[str, str]:
    rows = session.execute(select(JobRun.id, JobRun.status).where(JobRun.id.in_(job_run_ids)))
    return {row[0]: row[1] for row in rows}
