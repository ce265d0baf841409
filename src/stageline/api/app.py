"""The ASGI application: routes, error rendering, and the services a server process runs."""

import logging
from collections.abc import AsyncIterator
from contextlib import ExitStack, asynccontextmanager

from fastapi import FastAPI
from fastapi.routing import APIRoute
from prometheus_client import CollectorRegistry

from stageline import __version__
from stageline.api.body_limit import BodyLimit, RouteLimit
from stageline.api.claim_signal import ClaimSignal
from stageline.api.deps import Services
from stageline.api.docs_pages import add_docs_pages
from stageline.api.errors import MAX_BODY_BYTES, RequestIdMiddleware, install_error_handlers
from stageline.api.flat_routes import add_routes
from stageline.api.live import LiveChanges
from stageline.api.logins import Logins
from stageline.api.openapi import DocumentedAPI
from stageline.api.render import Renderer
from stageline.api.request_metrics import HttpMetrics, RequestMetrics
from stageline.api.routes import (
    agents,
    artifacts,
    bench,
    feeds,
    health,
    history,
    metrics,
    pipelines,
    reviews,
    runs,
    schemas,
    status,
    status_stream,
    tokens,
    webhooks,
)
from stageline.api.status_cache import LatestRuns, LogTail
from stageline.auth.feed_tokens import FeedTokens
from stageline.auth.principals import Authenticator
from stageline.auth.vault import Vault
from stageline.engine.clock import Clock, system_clock
from stageline.engine.dispatcher import Dispatcher, LeasePolicy
from stageline.engine.journal import prune_change_log
from stageline.engine.leadership import Leadership
from stageline.engine.metrics import EngineMetrics
from stageline.engine.reports import LogLimits
from stageline.engine.runs import RunEngine
from stageline.engine.schedules import LEASE_NAME, ScheduleFirer
from stageline.engine.services import PeriodicService
from stageline.engine.sources import SourceResolver
from stageline.engine.timeouts import QueuePolicy, Sweeper
from stageline.engine.webhooks import DELIVERY_RETENTION_DAYS, Webhooks, prune_deliveries
from stageline.settings import Settings
from stageline.store.blobs import Blobs
from stageline.store.database import Database
from stageline.store.feed import ChangeFeed

log = logging.getLogger(__name__)


def _operation_id(route: APIRoute) -> str:
    """Stable OpenAPI operation IDs: the handler names, which are the SDK's method names."""
    return route.name


SWEEP_SECONDS = 1.0
SCHEDULE_TICK_SECONDS = 1.0
RETENTION_SWEEP_SECONDS = 600.0


def _prune(services: Services) -> None:
    settings, now = services.settings, services.clock()
    retention_days = settings.change_log_retention_days
    pruned = prune_change_log(services.db, retention_days=retention_days, now=now)
    if pruned:
        log.info("pruned %d change(s) older than %d days", pruned, retention_days)
    services.authenticator.forget_used_signatures(now=now)
    forgotten = prune_deliveries(services.db, now=now)
    if forgotten:
        log.info(
            "forgot %d webhook deliveries older than %d days", forgotten, DELIVERY_RETENTION_DAYS
        )


def lease_policy(settings: Settings) -> LeasePolicy:
    return LeasePolicy(
        lease_seconds=settings.agent_lease_seconds, max_redispatch=settings.agent_max_redispatch
    )


def log_limits(settings: Settings) -> LogLimits:
    return LogLimits(
        max_lines_per_step=settings.log_max_lines_per_step,
        max_line_bytes=settings.log_max_line_bytes,
    )


def queue_policy(settings: Settings) -> QueuePolicy:
    return QueuePolicy(
        agent_seen_seconds=settings.agent_seen_seconds,
        queue_timeout_seconds=settings.queue_timeout_seconds,
    )


def build_services(settings: Settings, db: Database, clock: Clock = system_clock) -> Services:
    renderer = Renderer(
        display_tz=settings.display_tz, public_base_url=settings.effective_public_base_url
    )
    latest_runs = LatestRuns(renderer)
    vault = Vault(settings.master_secret())
    resolver = SourceResolver(settings.git_scratch_dir, settings.git_timeout_seconds)
    registry = CollectorRegistry()
    engine = RunEngine(
        db, clock=clock, vault=vault, resolver=resolver, metrics=EngineMetrics(registry)
    )
    claim_signal = ClaimSignal()
    engine.on_queued = claim_signal.notify
    return Services(
        settings=settings,
        db=db,
        engine=engine,
        dispatcher=Dispatcher(engine, lease_policy(settings), log_limits(settings)),
        claim_signal=claim_signal,
        blobs=Blobs(settings.artifact_dir),
        authenticator=Authenticator(db, settings),
        feed_tokens=FeedTokens(db, settings),
        logins=Logins(db, settings, clock),
        renderer=renderer,
        latest_runs=latest_runs,
        log_tail=LogTail(db, latest_runs),
        clock=clock,
        vault=vault,
        webhooks=Webhooks(engine, vault),
        live=LiveChanges(registry),
        registry=registry,
    )


def create_app(settings: Settings, *, db: Database | None = None) -> FastAPI:
    """The app of one server process: the API, the sweeps for lost agents and timeouts, and
    the schedules (fired by whichever server process leads).

    Jobs run on build agents (`stageline agent`); `stageline serve` starts one beside it.
    """
    database = db or Database(settings.effective_database_url)
    services = build_services(settings, database)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        with ExitStack() as stack:
            if db is None:
                stack.callback(database.dispose)  # last, after the sweeper has stopped
            sweeper = Sweeper(services.engine, lease_policy(settings), queue_policy(settings))
            extended = sweeper.grant_grace()
            if extended:
                log.info("gave %d claimed job(s) a fresh lease to report in", extended)
            sweeps = PeriodicService("sweeps", sweeper.run_once, interval_seconds=SWEEP_SECONDS)
            sweeps.start()
            stack.callback(sweeps.stop)
            retention = PeriodicService(
                "retention",
                lambda: _prune(services),
                interval_seconds=RETENTION_SWEEP_SECONDS,
            )
            retention.start()
            stack.callback(retention.stop)
            firer = ScheduleFirer(
                services.engine, Leadership(database, name=LEASE_NAME, clock=services.clock)
            )
            stack.callback(firer.stop)  # after the service has stopped: hand the lease over
            firing = PeriodicService(
                "schedules", firer.run_once, interval_seconds=SCHEDULE_TICK_SECONDS
            )
            firing.start()
            stack.callback(firing.stop)
            feed = ChangeFeed(database)
            feed.subscribe(services.claim_signal.on_changes)
            feed.subscribe(services.live.on_changes)
            feed.start()
            stack.callback(feed.stop)
            stack.callback(services.log_tail.stop)
            for hook in app.state.after_start:
                hook()
            try:
                yield
            finally:
                await services.log_tail.aclose()

    app = DocumentedAPI(
        title="Stageline",
        version=__version__,
        lifespan=lifespan,
        generate_unique_id_function=_operation_id,
        docs_url=None,  # pages that load nothing from elsewhere instead: add_docs_pages
        redoc_url=None,
    )
    add_docs_pages(app)
    app.state.services = services
    app.state.after_start = []
    install_error_handlers(app)
    # Added first, so that it runs inside RequestIdMiddleware and its 413 has a request ID.
    app.add_middleware(
        BodyLimit, max_bytes=MAX_BODY_BYTES, route_limits=[_artifact_upload_limit(settings)]
    )
    app.add_middleware(RequestIdMiddleware)
    app.add_middleware(RequestMetrics, metrics=HttpMetrics(services.registry))
    # FastAPI tries the routes in the order they were added, and batch status is first. The
    # benchmark's limit route stands for batch status minus the database, so it is tried first
    # too: otherwise it would pay for passing every other route.
    if settings.bench_routes:
        add_routes(app, bench.router)
    modules = (
        status,
        status_stream,
        pipelines,
        runs,
        history,
        reviews,
        artifacts,
        tokens,
        health,
        schemas,
        agents,
        webhooks,
        metrics,
        feeds,
    )
    for module in modules:
        add_routes(app, module.router)
    # FastAPI and add_docs_pages added the documentation's routes (/openapi.json, /docs, …)
    # when the app was made, ahead of ours: every API request would try them first. Ours
    # first; no path is in both.
    app.router.routes.sort(key=lambda route: not isinstance(route, APIRoute))
    return app


def _artifact_upload_limit(settings: Settings) -> RouteLimit:
    """Artifacts are streamed to storage, so they may be larger than any other body."""
    (route,) = (
        route
        for route in agents.router.routes
        if isinstance(route, APIRoute) and route.name == agents.upload_artifact.__name__
    )
    (method,) = route.methods or set()
    return RouteLimit(method=method, path=route.path_regex, max_bytes=settings.artifact_max_bytes)


def worker_app() -> FastAPI:
    """The app of one of several API worker processes (`serve --workers N`): settings from the
    environment."""
    return create_app(Settings())
