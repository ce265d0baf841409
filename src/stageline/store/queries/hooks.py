"""Pipeline webhooks (hook ID → pipeline) and the deliveries that started runs."""

from collections.abc import Iterable

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from stageline.store.tables import Pipeline, PipelineHook, WebhookDelivery


def replace_hooks(
    session: Session, *, pipeline_id: str, project_id: str, hook_ids: Iterable[str]
) -> None:
    """Make the pipeline's hooks exactly `hook_ids`."""
    session.execute(delete(PipelineHook).where(PipelineHook.pipeline_id == pipeline_id))
    session.add_all(
        PipelineHook(hook_id=hook_id, pipeline_id=pipeline_id, project_id=project_id)
        for hook_id in hook_ids
    )
    session.flush()


def read_hooked_pipeline(session: Session, *, hook_id: str) -> Pipeline | None:
    """The live pipeline whose trigger has this hook, or None."""
    return session.scalar(
        select(Pipeline)
        .join(PipelineHook, PipelineHook.pipeline_id == Pipeline.id)
        .where(PipelineHook.hook_id == hook_id, Pipeline.deleted.is_(False))
    )


def insert_delivery(
    session: Session, *, hook_id: str, delivery_id: str, run_id: str, received_at: int
) -> bool:
    """Record a delivery; False if it was recorded before. Insert-or-nothing on the primary
    key: of two transactions recording the same delivery at once, the second waits for the
    first and inserts nothing if it committed. Whether a row went in is read from RETURNING
    (psycopg reports no row count for INSERT … ON CONFLICT DO NOTHING)."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(WebhookDelivery.__table__)
        .values(hook_id=hook_id, delivery_id=delivery_id, run_id=run_id, received_at=received_at)
        .on_conflict_do_nothing(
            index_elements=[WebhookDelivery.hook_id, WebhookDelivery.delivery_id]
        )
        .returning(WebhookDelivery.run_id)
    )
    return session.execute(statement).first() is not None


def read_delivery_run(session: Session, *, hook_id: str, delivery_id: str) -> str | None:
    """The run a recorded delivery started, or None if it was not recorded."""
    return session.scalar(
        select(WebhookDelivery.run_id).where(
            WebhookDelivery.hook_id == hook_id, WebhookDelivery.delivery_id == delivery_id
        )
    )


def delete_deliveries_before(session: Session, *, before: int) -> int:
    result = session.execute(delete(WebhookDelivery).where(WebhookDelivery.received_at < before))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
