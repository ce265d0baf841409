"""The history of a run, as the change log tells it (a Stageline extension of the v5 API)."""

from typing import Literal

from pydantic import BaseModel


class StatusChangeRead(BaseModel):
    seq: int
    """Global and increasing: later changes have larger numbers."""
    entity: Literal["run", "stage", "job", "step"]
    entity_id: str
    entity_name: str | None
    """The stage's, job's or step's name; None for the run itself."""
    from_status: str | None
    """None when the run was created: `to_status` is what it was admitted as."""
    to_status: str
    time: int
    """When, in epoch milliseconds."""
    actor_type: Literal["user", "agent", "timer", "trigger"]
    actor: str
    """The user's name, the agent's name and instance, or what fired."""


class RunHistory(BaseModel):
    pipeline_run_id: str
    changes: list[StatusChangeRead]
    next_seq: int | None
    """Pass as `after_seq` to read on; None when this page holds the last change."""
