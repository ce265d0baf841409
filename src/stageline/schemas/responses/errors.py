"""The body of every error answer (errors-and-auth.md §1)."""

from typing import NotRequired

from pydantic import with_config
from typing_extensions import TypedDict

from stageline.schemas.responses.fields import DOCUMENTED


class RunNotAcceptedDetail(TypedDict):
    """The run RunPipeline recorded as IGNORED because the concurrency limit was reached."""

    pipeline_run_id: str
    queue_id: str


@with_config(DOCUMENTED)
class ErrorBody(TypedDict):
    """`{"error_code", "error_msg"}`; the `X-Request-Id` header names the request."""

    error_code: str
    """The CodeArts or API-gateway code, e.g. `DEVPIPE.00011401`."""
    error_msg: str
    request_id: NotRequired[str]
    """API-gateway errors (`APIGW.*`) only: the request's ID, as in `X-Request-Id`."""
    error: NotRequired[RunNotAcceptedDetail]
    """`DEVPIPE.00011169` only: the run that was not started."""
