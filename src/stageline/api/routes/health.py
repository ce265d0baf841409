"""GET /health — liveness and database reachability, for load balancers; no auth."""

from fastapi import APIRouter
from sqlalchemy import text

from stageline import __version__
from stageline.api.deps import ServicesDep
from stageline.api.openapi import error_responses
from stageline.api.routing import DeclaredRoute
from stageline.schemas.responses.service import Health

# Only the generic errors: a 500 when the database cannot be reached.
router = APIRouter(responses=error_responses(), route_class=DeclaredRoute)


@router.get("/health")
def health(services: ServicesDep) -> Health:
    with services.db.reader() as session:
        session.execute(text("SELECT 1"))
    return {"status": "ok", "version": __version__}
