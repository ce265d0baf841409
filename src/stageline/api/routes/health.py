"""GET /health — liveness and database reachability, for load balancers; no auth."""

from fastapi import APIRouter
from sqlalchemy import text

from stageline import __version__
from stageline.api.deps import ServicesDep
from stageline.api.openapi import error_responses

# Only the generic errors: a 500 when the database cannot be reached.
router = APIRouter(responses=error_responses())


@router.get("/health")
def health(services: ServicesDep) -> dict[str, str]:
    with services.db.reader() as session:
        session.execute(text("SELECT 1"))
    return {"status": "ok", "version": __version__}
