"""GET /schemas/pipeline.json — the JSON Schema of the pipeline YAML form, for editors; no auth.

The schema is part of the installed package, so it changes only with the server's version: it
is answered with an ETag and may be cached for an hour.
"""

import hashlib

from fastapi import APIRouter, Request, Response

from stageline.api.openapi import error_responses
from stageline.api.routing import DeclaredRoute
from stageline.schemas.pipeline_yaml import json_schema_text

router = APIRouter(responses=error_responses(), route_class=DeclaredRoute)
CACHE_CONTROL = "public, max-age=3600"


@router.get(
    "/schemas/pipeline.json",
    response_class=Response,
    responses={
        200: {"content": {"application/schema+json": {}}, "description": "The JSON Schema"},
        304: {"description": "Not modified"},
    },
)
def pipeline_schema(request: Request) -> Response:
    text = json_schema_text()
    etag = '"' + hashlib.sha256(text.encode()).hexdigest()[:32] + '"'
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(text, media_type="application/schema+json", headers=headers)
