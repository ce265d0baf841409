"""HTTP requests counted and timed for GET /metrics, by route template and status.

A pure ASGI middleware: it wraps `send` to see the status and reads the route the router
matched from the scope afterwards, so a request pays for two clock reads, one dictionary look-up
and two updates of labelled values it found the first time (BaseHTTPMiddleware would run each
request's app in a task of its own and copy the response body through a stream). The route
label is the template (`/v5/{project_id}/api/pipelines/status`), never the path: paths carry
IDs, and every distinct label value is a series Prometheus keeps.
"""

from time import perf_counter
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stageline.engine.metrics import NAMESPACE

UNMATCHED = "unmatched"
"""The route label of a request answered before a route matched it (a 404 for an unknown path,
a 413 that Content-Length announced): one series for every such path."""
OTHER_METHOD = "other"
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
"""Methods with a label of their own; a client may send any word as a method."""
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Seconds: batch status answers within milliseconds, a claim's long poll within 20 s."""


class HttpMetrics:
    """The request counter and latency histogram, registered in `registry`."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "http_requests",
            "HTTP requests answered, by method, route template and status code.",
            ["method", "route", "status"],
            namespace=NAMESPACE,
            registry=registry,
        )
        self.duration = Histogram(
            "http_request_duration_seconds",
            "Time from a request's arrival to the end of its answer, by method and route template.",
            ["method", "route"],
            namespace=NAMESPACE,
            registry=registry,
            buckets=LATENCY_BUCKETS,
        )
        self._series: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        """The labelled values of each (method, route, status) seen: `labels()` takes a lock
        and builds a key on every call."""

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        if method not in KNOWN_METHODS:
            method = OTHER_METHOD
        key = (method, route, status)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = (
                self.requests.labels(method=method, route=route, status=str(status)),
                self.duration.labels(method=method, route=route),
            )
        count, duration = series
        count.inc()
        duration.observe(seconds)


class RequestMetrics:
    """Count and time every HTTP request of the app it wraps (the outermost of ours, so that
    the answers of the other middleware are counted too)."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = perf_counter()
        status = 500  # what the server answers if the app fails before it starts one

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            route = scope.get("route")  # set by the router on the scope it was given
            template = getattr(route, "path", None) or UNMATCHED
            self.metrics.observe(scope["method"], template, status, perf_counter() - started)
