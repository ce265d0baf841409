"""The benchmark's limit route: authenticates like batch status, then answers a ready-made body.

Present only when the server runs with `bench_routes` on. What batch status costs beyond this
route is what the batch read path itself costs.
"""

from typing import Annotated

from fastapi import Query
from starlette.responses import Response

from stageline.api.deps import ViewerCaller
from stageline.api.openapi import error_responses
from stageline.api.routing import v5_router

router = v5_router()
_bodies: dict[int, bytes] = {}


@router.post(
    "/v5/{project_id}/api/bench/limit",
    responses={
        200: {
            "description": "An empty JSON array padded with spaces to `bytes` bytes.",
            "content": {"application/json": {"schema": {"type": "array", "maxItems": 0}}},
        },
        **error_responses(400),
    },
)
async def bench_limit(
    caller: ViewerCaller, size: Annotated[int, Query(alias="bytes", ge=2, le=16_000_000)] = 2
) -> Response:
    body = _bodies.get(size)
    if body is None:
        body = _bodies[size] = b"[" + b" " * (size - 2) + b"]"
    return Response(body, media_type="application/json")
