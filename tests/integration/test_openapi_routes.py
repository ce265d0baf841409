"""Routes registered flat on the app (`api/flat_routes.py`) describe the API exactly as the same
routers included with `include_router` do: same paths, parameters, operation IDs and schemas."""

from fastapi import APIRouter, FastAPI

from stageline.api.app import _operation_id
from stageline.api.flat_routes import add_routes
from stageline.api.routes import (
    agents,
    artifacts,
    bench,
    health,
    pipelines,
    reviews,
    runs,
    status,
    tokens,
    webhooks,
)

MODULES = (bench, status, pipelines, runs, reviews, artifacts, tokens, health, agents, webhooks)


def _app() -> FastAPI:
    return FastAPI(title="t", version="1", generate_unique_id_function=_operation_id)


def test_flat_routes_give_the_openapi_document_of_included_routers() -> None:
    flat, included = _app(), _app()
    for module in MODULES:
        add_routes(flat, module.router)
        included.include_router(module.router)
    assert flat.openapi() == included.openapi()
    assert len(flat.openapi()["paths"]) > 10


def test_what_a_router_or_decorator_adds_is_carried_over() -> None:
    router = APIRouter(prefix="/v5/{project_id}", tags=["t"], responses={404: {"description": "x"}})

    @router.post(
        "/things",
        status_code=201,
        summary="Make a thing",
        description="Makes one.",
        response_description="The thing",
        deprecated=True,
        operation_id="MakeThing",
    )
    async def make_thing(project_id: str, body: dict[str, int]) -> dict[str, int]:
        return body

    @router.get("/hidden", include_in_schema=False)
    async def hidden(project_id: str) -> None:
        return None

    flat, included = _app(), _app()
    add_routes(flat, router)
    included.include_router(router)
    assert flat.openapi() == included.openapi()
    operation = flat.openapi()["paths"]["/v5/{project_id}/things"]["post"]
    assert operation["operationId"] == "MakeThing"
    assert set(operation["responses"]) == {"201", "404", "422"}
