"""The ASGI application: routes, error rendering, and the services a server process runs."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.routing import APIRoute

from stageline import __version__
from stageline.agent.local import LocalAgent
from stageline.api.deps import Services
from stageline.api.errors import RequestIdMiddleware, install_error_handlers
from stageline.api.render import Renderer
from stageline.api.routes import health, pipelines, runs, status, tokens
from stageline.auth.principals import Authenticator
from stageline.engine.clock import Clock, system_clock
from stageline.engine.runs import RunEngine
from stageline.settings import Settings
from stageline.store.database import Database

log = logging.getLogger(__name__)

RESTARTED = "the server restarted while this run was in flight"
SHUT_DOWN = "the server shut down while this run was in flight"


def _operation_id(route: APIRoute) -> str:
    """Stable OpenAPI operation IDs: the handler names, which are the SDK's method names."""
    return route.name


def build_services(settings: Settings, db: Database, clock: Clock = system_clock) -> Services:
    return Services(
        settings=settings,
        db=db,
        engine=RunEngine(db, clock=clock),
        authenticator=Authenticator(db, settings),
        renderer=Renderer(
            display_tz=settings.display_tz, public_base_url=settings.effective_public_base_url
        ),
        clock=clock,
    )


def create_app(
    settings: Settings, *, db: Database | None = None, with_executor: bool = True
) -> FastAPI:
    """The app; with `with_executor`, the built-in executor runs jobs inside this process."""
    database = db or Database(settings.effective_database_url)
    services = build_services(settings, database)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        agent: LocalAgent | None = None
        if with_executor:
            failed = services.engine.fail_interrupted(RESTARTED)
            if failed:
                log.warning("marked %d interrupted run(s) FAILED", failed)
            agent = LocalAgent(
                services.engine,
                workspace_root=settings.workspace_dir,
                slots=settings.executor_slots,
            )
            services.engine.attach(agent)
        for hook in app.state.after_start:
            hook()
        try:
            yield
        finally:
            if agent is not None:
                services.engine.close()
                agent.shutdown()
                services.engine.fail_interrupted(SHUT_DOWN)
            if db is None:
                database.dispose()

    app = FastAPI(
        title="Stageline",
        version=__version__,
        lifespan=lifespan,
        generate_unique_id_function=_operation_id,
    )
    app.state.services = services
    app.state.after_start = []
    install_error_handlers(app)
    app.add_middleware(RequestIdMiddleware)
    for module in (status, pipelines, runs, tokens, health):
        app.include_router(module.router)
    return app
