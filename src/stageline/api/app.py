"""The ASGI application: routes, error rendering, and the services a server process runs."""

from collections.abc import AsyncIterator
from contextlib import ExitStack, asynccontextmanager

from fastapi import FastAPI
from fastapi.routing import APIRoute

from stageline import __version__
from stageline.api.deps import Services
from stageline.api.errors import RequestIdMiddleware, install_error_handlers
from stageline.api.execution import executing
from stageline.api.render import Renderer
from stageline.api.routes import bench, health, pipelines, runs, status, tokens
from stageline.api.status_cache import RenderedRuns
from stageline.auth.principals import Authenticator
from stageline.engine.clock import Clock, system_clock
from stageline.engine.runs import RunEngine
from stageline.settings import Settings
from stageline.store.database import Database


def _operation_id(route: APIRoute) -> str:
    """Stable OpenAPI operation IDs: the handler names, which are the SDK's method names."""
    return route.name


def build_services(settings: Settings, db: Database, clock: Clock = system_clock) -> Services:
    renderer = Renderer(
        display_tz=settings.display_tz, public_base_url=settings.effective_public_base_url
    )
    return Services(
        settings=settings,
        db=db,
        engine=RunEngine(db, clock=clock),
        authenticator=Authenticator(db, settings),
        renderer=renderer,
        rendered_runs=RenderedRuns(renderer),
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
        with ExitStack() as stack:
            if db is None:
                stack.callback(database.dispose)  # last, after the executor has wound down
            if with_executor:
                stack.enter_context(executing(services.engine, settings))
            for hook in app.state.after_start:
                hook()
            yield

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
    if settings.bench_routes:
        app.include_router(bench.router)
    return app


def worker_app() -> FastAPI:
    """The app of one of several API worker processes (`serve --workers N`): settings from the
    environment, no executor (a separate `stageline executor` process runs the jobs)."""
    return create_app(Settings(), with_executor=False)
