"""POST /v3/auth/tokens — IAM-style password tokens, returned in X-Subject-Token."""

from typing import Any

import orjson
from fastapi import APIRouter, Body
from starlette.responses import Response

from stageline.api.deps import ServicesDep
from stageline.api.openapi import error_responses
from stageline.auth.iam import issue_token
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
        **error_responses(400, 401, 415),
    },
)
def keystone_create_token(services: ServicesDep, body: dict[str, Any] = Body()) -> Response:
    token, payload = issue_token(services.db, services.settings, body, now=services.clock())
    return Response(
        orjson.dumps(payload),
        status_code=201,
        media_type="application/json",
        headers={"X-Subject-Token": token},
    )
