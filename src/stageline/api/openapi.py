"""What /openapi.json says beyond the handlers' signatures: the errors each operation answers.

Every error answer has an `ErrorBody` (api.errors). Routers and routes declare the statuses they
really answer with `error_responses`. FastAPI would also declare a 422 for every operation with
parameters, which this server never sends (validation errors are 400 or 415), so
`DocumentedAPI.openapi` takes those out, in this one place, and documents X-Request-Id.
"""

import json
from typing import Any

from fastapi import FastAPI

from stageline.api.errors import (
    CLOCK_SKEW_CODE,
    ERROR_TABLE,
    INTERNAL_CODE,
    MAX_BODY_BYTES,
    TOO_LARGE_CODE,
    VALIDATION_CODE,
)
from stageline.schemas.responses.errors import ErrorBody

Responses = dict[int | str, dict[str, Any]]

_MEANINGS: dict[int, tuple[str, tuple[str, ...]]] = {
    400: ("A parameter or the body can never succeed as sent.", (VALIDATION_CODE,)),
    401: (
        "No credentials, or credentials that do not check out (APIGW.0303: X-Sdk-Date is more"
        " than 15 minutes off).",
        (CLOCK_SKEW_CODE,),
    ),
    403: ("Authenticated, but without the role this needs on the project.", ()),
    404: ("The project, or what the path names in it, does not exist.", ()),
    409: (
        "The current state does not allow it; or (STAGELINE.AUTH.0409) this AK/SK-signed"
        " request was already received, and a signed request that changes something is"
        " carried out once: sign it again to repeat it.",
        (),
    ),
    413: (
        f"The body is larger than {MAX_BODY_BYTES} bytes (an artifact upload: larger than"
        " STAGELINE_ARTIFACT_MAX_BYTES); refused as soon as that is known, whether Content-Length"
        " declares it or the streamed bytes pass the limit.",
        (TOO_LARGE_CODE,),
    ),
    415: ("The body is not declared as JSON (Content-Type: application/json).", (VALIDATION_CODE,)),
    429: (
        "This client address failed to authenticate too often (with this access key, or at"
        " logging in): it must wait the seconds in Retry-After. Nobody else is held up.",
        (),
    ),
    500: (
        "An unexpected failure, logged under the request ID; the body tells nothing more.",
        (INTERNAL_CODE,),
    ),
}
"""What each status means here, and the codes it carries besides those of `ERROR_TABLE`."""

EVERY_ROUTE = (413, 500)
"""Any request can be too large (RequestIdMiddleware) or meet an unexpected failure."""


def _description(status: int) -> str:
    meaning, extra_codes = _MEANINGS[status]
    table_codes = [code for _, answered, code in ERROR_TABLE if answered == status]
    codes = ", ".join(f"`{code}`" for code in dict.fromkeys([*table_codes, *extra_codes]))
    return f"{meaning} error_code: {codes}." if codes else meaning


RETRY_AFTER_HEADER = {
    "description": "Seconds to wait before this client tries again.",
    "schema": {"type": "integer"},
}


def error_responses(*statuses: int) -> Responses:
    """The `responses` of a router or route that fails with `statuses`, plus `EVERY_ROUTE`."""
    responses: Responses = {
        status: {"model": ErrorBody, "description": _description(status)}
        for status in sorted({*statuses, *EVERY_ROUTE})
    }
    if 429 in responses:
        responses[429]["headers"] = {"Retry-After": RETRY_AFTER_HEADER}
    return responses


CALLER_ERRORS = error_responses(401, 403, 404, 429)
"""Of every v5 router: its routes authenticate the caller (which may have to wait after failed
signatures) and check a role on the path's project, which must exist (`api.deps.requires`)."""

ETAG_HEADER = {
    "description": "A strong tag of the body: send it back in If-None-Match to be answered 304"
    " while nothing changed.",
    "schema": {"type": "string"},
}
CONDITIONAL_GET = {"ETag": ETAG_HEADER}
"""The headers of a feed's 200 that may be polled conditionally."""


def feed_errors(*statuses: int) -> Responses:
    """`error_responses` of a feed route (`api.deps.read_feed`), whose 401 carries a challenge."""
    responses = error_responses(401, 403, 404, 429, *statuses)
    responses[401] = {
        **responses[401],
        "headers": {
            "WWW-Authenticate": {
                "description": 'Bearer realm="stageline feeds": send a token.',
                "schema": {"type": "string"},
            }
        },
    }
    return responses


REQUEST_ID_HEADER = {
    "description": "The request's ID, in every answer; quote it to the operator.",
    "schema": {"type": "string"},
}
_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")
"""FastAPI's 422 body and its part, in the order they can be dropped."""


class DocumentedAPI(FastAPI):
    """FastAPI whose /openapi.json declares the answers the server really gives."""

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is None:
            _correct(super().openapi())  # generated once and cached by FastAPI; fixed in place
        assert self.openapi_schema is not None
        return self.openapi_schema


def _correct(document: dict[str, Any]) -> None:
    for path_item in document.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.get("responses", {})
            responses.pop("422", None)
            for response in responses.values():
                response.setdefault("headers", {})["X-Request-Id"] = REQUEST_ID_HEADER
            operation["responses"] = dict(sorted(responses.items()))  # router's and route's
    schemas = document.get("components", {}).get("schemas", {})
    for name in _VALIDATION_SCHEMAS:
        schema = schemas.pop(name, None)
        if schema is not None and f'"#/components/schemas/{name}"' in json.dumps(document):
            schemas[name] = schema  # something else still refers to it


TOKEN_PARAMETER = {
    "name": "token",
    "in": "query",
    "required": False,
    "description": "A feed token of the project (`stageline admin create-feed-token`), for"
    " clients that cannot send headers; X-Auth-Token or `Authorization: Bearer` work too.",
    "schema": {"type": "string"},
}
"""The `?token=` every feed route takes (`api.deps.read_feed`)."""
