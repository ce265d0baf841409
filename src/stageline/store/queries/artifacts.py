"""Artifacts: which files a run's steps uploaded (the bytes live in `store.blobs`)."""

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from stageline.store.ids import new_id
from stageline.store.tables import Artifact


def put_artifact(
    session: Session,
    *,
    run_id: str,
    project_id: str,
    job_run_id: str,
    step_run_id: str,
    name: str,
    size: int,
    sha256: str,
    now: int,
) -> Artifact:
    """Record a file; a later upload under the same name in the run replaces it."""
    session.execute(delete(Artifact).where(Artifact.run_id == run_id, Artifact.name == name))
    artifact = Artifact(
        id=new_id(),
        run_id=run_id,
        project_id=project_id,
        job_run_id=job_run_id,
        step_run_id=step_run_id,
        name=name,
        size=size,
        sha256=sha256,
        created_at=now,
    )
    session.add(artifact)
    session.flush()
    return artifact


def list_artifacts(session: Session, *, run_id: str) -> list[Artifact]:
    query = select(Artifact).where(Artifact.run_id == run_id).order_by(Artifact.name)
    return list(session.scalars(query))


def read_artifact(session: Session, *, run_id: str, artifact_id: str) -> Artifact | None:
    query = select(Artifact).where(Artifact.run_id == run_id, Artifact.id == artifact_id)
    return session.scalar(query)
