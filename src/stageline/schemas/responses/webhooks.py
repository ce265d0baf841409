"""What `POST /webhooks/{hook_id}` answers a host whose delivery checked out."""

from typing import Literal, NotRequired

from pydantic import with_config
from typing_extensions import TypedDict

from stageline.schemas.responses.fields import DOCUMENTED


@with_config(DOCUMENTED)
class WebhookAnswer(TypedDict):
    """`started` with the new run; `duplicate` with the run the same delivery started before;
    `ignored` with the reason (and the run, when the pipeline's concurrency limit dropped it)."""

    result: Literal["started", "duplicate", "ignored"]
    pipeline_run_id: NotRequired[str]
    reason: NotRequired[str]
    """Why nothing started: the event is not one that starts runs, the trigger does not enable
    it, its branch matches none of the trigger's `branches`, …"""
