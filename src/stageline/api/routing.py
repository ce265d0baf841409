"""How routes are declared: response bodies are documented from the handlers' return types, and
sent as the handlers built them.

A handler's return type is a TypedDict of `schemas.responses`, which mypy checks the handler and
the renderer fill key for key. FastAPI would also validate the body against it and serialise it
again, at about three times the cost of sending the dict as it is, and reordering or dropping
keys where it differs; `DeclaredRoute` declares the model in /openapi.json and sends the body
as built.
"""

from collections.abc import Callable
from typing import Any, get_type_hints

from fastapi import APIRouter
from fastapi.datastructures import Default, DefaultPlaceholder
from fastapi.routing import APIRoute
from typing_extensions import is_typeddict

from stageline.api.openapi import CALLER_ERRORS


class DeclaredRoute(APIRoute):
    """An APIRoute whose TypedDict response model is declared, not validated."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **options: Any) -> None:
        model = options.get("response_model", Default(None))
        if isinstance(model, DefaultPlaceholder):  # not given: the return type, as FastAPI does
            model = get_type_hints(endpoint, include_extras=True).get("return")
        if is_typeddict(model):
            status = options.get("status_code") or 200
            responses = dict(options.get("responses") or {})
            responses[status] = {"model": model, **responses.get(status, {})}
            # `Any`: serialised to JSON as it is, in one pass, without a copy or a check.
            options |= {"response_model": Any, "responses": responses}
        super().__init__(path, endpoint, **options)


def v5_router(prefix: str = "") -> APIRouter:
    """A router of v5 routes: each authenticates its caller and checks a role on the path's
    project (`api.deps.requires`), so each can answer `CALLER_ERRORS`."""
    return APIRouter(prefix=prefix, responses=CALLER_ERRORS, route_class=DeclaredRoute)
