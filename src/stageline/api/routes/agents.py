"""The build agents' protocol (`/agent/v1/…`): claim a job, report on it, keep it alive, upload
its artifacts. Only agent identities may call it, signed with AK/SK like the SDK's requests.

A claim is a long poll: the server holds it open until a job the agent may take is queued, or
`wait_seconds` pass (204). Answers are JSON; errors have the usual `{error_code, error_msg}`.
"""

import asyncio
import contextlib
import dataclasses
import time
from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from stageline.api.deps import ServicesDep, authenticate, authenticate_once
from stageline.api.openapi import error_responses
from stageline.api.routing import DeclaredRoute
from stageline.auth.principals import Principal
from stageline.domain.errors import Forbidden, InvalidInput
from stageline.schemas.jobs import (
    ClaimRequest,
    EventBatch,
    EventsApplied,
    Heartbeat,
    HeartbeatReply,
    JobAssignment,
)
from stageline.schemas.responses.service import ArtifactStored

router = APIRouter(
    prefix="/agent/v1", responses=error_responses(401, 403, 429), route_class=DeclaredRoute
)

RECHECK_SECONDS = 5.0
"""A waiting claim asks the database at least this often; jobs queued by other processes wake
it at once through the change feed, this is only a safety net."""
ARTIFACT_NAME_MAX = 255


def _only_agents(principal: Principal) -> Principal:
    if not principal.is_agent:
        raise Forbidden(f"{principal.name} is not a build agent")
    return principal


async def agent_principal(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
    return _only_agents(principal)


async def agent_principal_once(
    principal: Annotated[Principal, Depends(authenticate_once)],
) -> Principal:
    return _only_agents(principal)


# Reports and heartbeats may be sent again: an agent resends a batch whose answer it lost, its
# events are numbered and applied once, and a heartbeat only renews leases. A claim or an
# upload may not: a copy of a claim would hand a job, with its secrets, to whoever sent it, and
# an upload's body is not signed, so a copy could replace the file.
AgentCaller = Annotated[Principal, Depends(agent_principal)]
AgentOnceCaller = Annotated[Principal, Depends(agent_principal_once)]


@router.post(
    "/claim",
    responses={
        200: {"model": JobAssignment, "description": "The job, now claimed by this agent."},
        204: {"description": "No job this agent may take came within `wait_seconds`."},
        **error_responses(400, 409, 415),
    },
)
async def claim_job(
    agent: AgentOnceCaller, services: ServicesDep, request: Request, body: ClaimRequest
) -> Response:
    """200 with a JobAssignment, or 204 when none came within `wait_seconds`."""
    signal = services.claim_signal
    until = time.monotonic() + body.wait_seconds
    while not await request.is_disconnected():
        with signal.listening() as queued:
            job = await run_in_threadpool(services.dispatcher.claim, body, agent_name=agent.name)
            if job is not None:
                return Response(
                    orjson.dumps(dataclasses.asdict(job)), media_type="application/json"
                )
            remaining = until - time.monotonic()
            if remaining <= 0:
                break
            try:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(queued.wait(), min(remaining, RECHECK_SECONDS))
            except asyncio.CancelledError:  # the server is stopping: no job, and no error
                break
    return Response(status_code=204)


@router.post("/jobs/{job_run_id}/events", responses=error_responses(400, 404, 409, 415))
def report_events(
    _agent: AgentCaller, services: ServicesDep, job_run_id: str, body: EventBatch
) -> EventsApplied:
    return services.dispatcher.report(job_run_id, body)


@router.post("/heartbeat", responses=error_responses(400, 415))
def heartbeat(_agent: AgentCaller, services: ServicesDep, body: Heartbeat) -> HeartbeatReply:
    return services.dispatcher.heartbeat(body)


@router.put(
    "/jobs/{job_run_id}/artifacts",
    responses=error_responses(400, 404, 409),
    # The route reads the body as a stream, so FastAPI cannot see it: declared by hand.
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        }
    },
)
async def upload_artifact(
    _agent: AgentOnceCaller,
    services: ServicesDep,
    request: Request,
    job_run_id: str,
    dispatch_id: Annotated[str, Query()],
    step_run_id: Annotated[str, Query()],
    name: Annotated[str, Query(min_length=1, max_length=ARTIFACT_NAME_MAX)],
) -> ArtifactStored:
    """The request body is the file. The upload is checked before the body is read, the file
    received into a temporary name, then recorded for the run and kept by its content, or else
    deleted: a refused or failed upload leaves no file behind."""
    parts = name.split("/")
    if name.startswith("/") or "\\" in name or any(p in {"", ".", ".."} for p in parts):
        raise InvalidInput("name: a path relative to the workspace, without '.' or '..' parts")
    dispatcher = services.dispatcher
    await run_in_threadpool(
        lambda: dispatcher.check_upload(
            job_run_id=job_run_id, dispatch_id=dispatch_id, step_run_id=step_run_id
        )
    )
    received = await services.blobs.receive(request.stream())
    try:
        await run_in_threadpool(
            lambda: dispatcher.record_artifact(
                job_run_id=job_run_id,
                dispatch_id=dispatch_id,
                step_run_id=step_run_id,
                name=name,
                size=received.size,
                sha256=received.sha256,
                keep=received.keep,
            )
        )
    finally:
        received.discard()  # nothing, once kept
    return {"name": name, "size": received.size, "sha256": received.sha256}
