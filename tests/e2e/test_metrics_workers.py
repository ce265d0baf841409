"""`serve --workers 2`: GET /metrics adds up what every worker process counted, whichever
worker answers the scrape (prometheus_client's multi-process mode)."""

import time
from collections.abc import Iterable
from pathlib import Path

import httpx
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import Server

HEALTH = {"method": "GET", "route": "/health", "status": "200"}
BOUND_SECONDS = 10.0


def health_count(families: Iterable[Metric]) -> float:
    return sum(
        sample.value
        for family in families
        for sample in family.samples
        if sample.name == "stageline_http_requests_total" and sample.labels == HEALTH
    )


def scraped(server: Server) -> float:
    with httpx.Client(trust_env=False) as fresh:  # a new connection: any worker may answer
        response = fresh.get(f"{server.base_url}/metrics")
    assert response.status_code == 200, response.text
    return health_count(text_string_to_metric_families(response.text))


def per_worker(directory: Path) -> list[float]:
    """What each worker process counted, from its own file."""
    return [
        health_count(MultiProcessCollector.merge([str(path)]))  # type: ignore[no-untyped-call]
        for path in sorted(directory.glob("counter_*.db"))
    ]


def test_the_counts_of_every_worker_add_up(workers_server: Server) -> None:
    port = workers_server.base_url.rsplit(":", 1)[1]
    directory = Path(workers_server.env["STAGELINE_DATA_DIR"]) / "metrics" / port
    before = scraped(workers_server)
    sent = 0
    deadline = time.monotonic() + BOUND_SECONDS
    while sum(count > 0 for count in per_worker(directory)) < 2 or sent < 20:
        assert time.monotonic() < deadline, (
            f"one worker answered all {sent}: {per_worker(directory)}"
        )
        with httpx.Client(trust_env=False) as fresh:
            assert fresh.get(f"{workers_server.base_url}/health").status_code == 200
        sent += 1

    # A worker counts a request once it has answered it: the last count may land just after.
    while sum(counts := per_worker(directory)) < before + sent:
        assert time.monotonic() < deadline + BOUND_SECONDS, f"{counts} after {before} + {sent}"
        time.sleep(0.05)
    # Other processes of the server (the executor) may keep files too, but serve no requests.
    assert sum(count > 0 for count in counts) == 2
    for _ in range(4):  # each scrape, whichever worker answers it, tells the sum
        assert scraped(workers_server) == before + sent == sum(counts)
