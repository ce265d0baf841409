"""Routes of a module's APIRouter registered on the app itself, not as an included router.

FastAPI keeps an included router as one node of the app's route list and, for a request that
reaches it, matches the router's routes twice (once to find the router, once to pick the route)
while saving and restoring keys of the request scope around every candidate: about 11 µs a
request in process, a tenth of what the limit route costs. Registering each route on the app,
the way `include_router` did before FastAPI kept routers nested, makes a request cost one
regular-expression match per route it passes. The routes are built by the app's own
`add_api_route`, so they get its operation-ID function and defaults exactly as when included,
and the OpenAPI document is the same (`tests/integration/test_openapi_routes.py`).
"""

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute


def add_routes(app: FastAPI, router: APIRouter) -> None:
    """Every route of `router` as a route of `app`. What the router adds to its routes (prefix,
    tags, dependencies, responses, response class) is already in each route's attributes."""
    for route in router.routes:
        if not isinstance(route, APIRoute):
            raise TypeError(f"{route!r}: only API routes are registered flat")
        app.router.add_api_route(
            route.path,
            route.endpoint,
            response_model=route.response_model,
            status_code=route.status_code,
            tags=route.tags,
            dependencies=route.dependencies,
            summary=route.summary,
            description=route.description,
            response_description=route.response_description,
            responses=route.responses,
            deprecated=route.deprecated,
            methods=route.methods,
            operation_id=route.operation_id,
            response_model_include=route.response_model_include,
            response_model_exclude=route.response_model_exclude,
            response_model_by_alias=route.response_model_by_alias,
            response_model_exclude_unset=route.response_model_exclude_unset,
            response_model_exclude_defaults=route.response_model_exclude_defaults,
            response_model_exclude_none=route.response_model_exclude_none,
            include_in_schema=route.include_in_schema,
            response_class=route.response_class,
            name=route.name,
            callbacks=route.callbacks,
            openapi_extra=route.openapi_extra,
            strict_content_type=route.strict_content_type,
            max_body_size=route.max_body_size,
        )
