"""GET /metrics — Prometheus metrics, for a scraper that may read them (not in the API document).

Who may: with STAGELINE_METRICS_TOKEN set, whoever sends `Authorization: Bearer <token>`
(compared in constant time); without it, clients on loopback only. The metrics name no
pipeline, project or user, but they tell how busy the server is and how its runs end, which is
nobody else's business; a Prometheus on another host needs the token.
"""

import hmac
import ipaddress

from fastapi import APIRouter, Request
from starlette.responses import Response

from stageline.api.deps import ServicesDep
from stageline.api.scrape import CONTENT_TYPE, DatabaseCollector, exposition
from stageline.domain.errors import Forbidden, Unauthenticated
from stageline.schemas.responses.errors import ErrorBody

BEARER = "bearer "

router = APIRouter(
    include_in_schema=False,
    responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}},
)


@router.get("/metrics")
def metrics(services: ServicesDep, request: Request) -> Response:
    check_scraper(request, services.settings.metrics_token)
    database = DatabaseCollector(
        services.db, services.clock, agent_seen_seconds=services.settings.agent_seen_seconds
    )
    return Response(exposition(services.registry, database), media_type=CONTENT_TYPE)


def check_scraper(request: Request, token: str) -> None:
    """Raise unless the request may read the metrics (see the module's docstring)."""
    if not token:
        if not _on_loopback(request):
            raise Forbidden(
                "metrics are served to loopback clients only; set STAGELINE_METRICS_TOKEN to"
                " let a scraper elsewhere read them with that bearer token"
            )
        return
    sent = request.headers.get("authorization", "")
    if not sent.lower().startswith(BEARER):
        raise Unauthenticated("metrics: send Authorization: Bearer <STAGELINE_METRICS_TOKEN>")
    if not hmac.compare_digest(sent[len(BEARER) :].encode(), token.encode()):
        raise Unauthenticated("metrics: the bearer token is not STAGELINE_METRICS_TOKEN")


def _on_loopback(request: Request) -> bool:
    """Whether the client is on this host: the TCP peer, or the client a trusted proxy
    forwarded (uvicorn replaces the peer with it)."""
    client = request.scope.get("client")
    try:
        address = ipaddress.ip_address(str(client[0]) if client else "")
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback
