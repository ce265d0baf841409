"""POST /v3/auth/tokens — IAM-style password tokens, returned in X-Subject-Token — and
GET /v3/auth/projects, the projects a token (or an AK/SK) may act in."""

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Body, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from stageline.api.client_address import client_address
from stageline.api.deps import ServicesDep, authenticate
from stageline.api.openapi import error_responses
from stageline.auth.iam import auth_projects, domain_id
from stageline.auth.principals import Principal
from stageline.schemas.responses.service import AuthProjects, TokenBody

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


@router.get("/v3/auth/projects", responses=error_responses(401, 403, 429))
async def keystone_list_auth_projects(
    services: ServicesDep, principal: Annotated[Principal, Depends(authenticate)]
) -> AuthProjects:
    """The projects the caller is a member of, by name (of a project-scoped token: its
    project), as Keystone and Huawei IAM answer it; `stageline login` finds its project here."""
    found = await run_in_threadpool(auth_projects, services.db, principal)
    domain = domain_id(services.settings)
    return {
        "projects": [
            {
                "id": project_id,
                "name": name,
                "domain_id": domain,
                "parent_id": domain,
                "description": "",
                "enabled": True,
                "is_domain": False,
            }
            for project_id, name in found
        ],
        "links": {
            "self": f"{services.settings.effective_public_base_url}/v3/auth/projects",
            "previous": None,
            "next": None,
        },
    }
