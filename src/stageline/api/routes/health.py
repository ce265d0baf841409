"""GET /health — liveness and database reachability, for load balancers; no auth."""

from fastapi import APIRouter
from sqlalchemy import text

from stageline import __version__
from stageline.api.deps import ServicesDep

router = APIRouter()


@router.get("/health")
def health(services: ServicesDep) -> dict[str, str]:
    with services.db.reader() as session:
        session.execute(text("SELECT 1"))
    return {"status": "ok", "version": __version__}
