"""POST /v3/auth/tokens — IAM-style password tokens, returned in X-Subject-Token."""

from typing import Any

import orjson
from fastapi import APIRouter, Body, Request
from starlette.responses import Response

from stageline.api.client_address import client_address
from stageline.api.deps import ServicesDep
from stageline.api.openapi import error_responses
from stageline.schemas.responses.service import TokenBody

router = APIRouter()


@router.post(
    "/v3/auth/tokens",
    status_code=201,
    responses={
        201: {
            "model": TokenBody,
            "description": "A token for X-Auth-Token, valid for a day.",
            "headers": {
                "X-Subject-Token": {"description": "The token.", "schema": {"type": "string"}}
            },
        },
        **error_responses(400, 401, 415, 429),
    },
)
async def keystone_create_token(
    services: ServicesDep, request: Request, body: dict[str, Any] = Body()
) -> Response:
    """Async, so that logins waiting for their password check (`api.logins`) hold no worker
    thread that other requests need."""
    token, payload = await services.logins.issue_token(body, source=client_address(request.scope))
    return Response(
        orjson.dumps(payload),
        status_code=201,
        media_type="application/json",
        headers={"X-Subject-Token": token},
    )
