"""One scrape of GET /metrics: what this server counted, and what the database holds now.

Counters and histograms are counted where things happen (`engine.metrics`,
`api.request_metrics`). With one server process they are read from its own registry; with
several API worker processes (`serve --workers N`, which sets PROMETHEUS_MULTIPROC_DIR) each
process writes its values to files there, and `MultiProcessCollector` adds up those of every
worker, whichever worker answers the scrape. Gauges that describe the database (jobs waiting,
agents connected) are read from it once per scrape by `DatabaseCollector`, so they are right
whichever process serves it, and are never summed over processes.
"""

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

from stageline.engine.clock import Clock
from stageline.engine.metrics import NAMESPACE
from stageline.files import private_dir
from stageline.store.database import Database
from stageline.store.queries import agents as agent_queries
from stageline.store.queries import jobs as job_queries

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
"""The text format every Prometheus server reads."""
MULTIPROCESS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


class DatabaseCollector:
    """Gauges read from the database at scrape time."""

    def __init__(self, db: Database, clock: Clock, *, agent_seen_seconds: float) -> None:
        self.db = db
        self.clock = clock
        self.agent_seen_ms = int(agent_seen_seconds * 1000)

    def collect(self) -> Iterator[Metric]:
        now = self.clock()
        with self.db.reader() as session:
            waiting = job_queries.count_waiting_jobs(session)
            agents = agent_queries.count_agents_seen(session, since=now - self.agent_seen_ms)
        yield GaugeMetricFamily(
            f"{NAMESPACE}_jobs_queued",
            "Jobs waiting in the queue for an agent to claim them (QUEUED or REDISPATCH).",
            value=waiting,
        )
        yield GaugeMetricFamily(
            f"{NAMESPACE}_agents_connected",
            "Build agents that claimed or heartbeated within STAGELINE_AGENT_SEEN_SECONDS.",
            value=agents,
        )


def share_between_workers(directory: Path) -> None:
    """Have the worker processes started from here on keep their values in `directory`,
    emptied first: what an earlier server counted there would otherwise be added to this one's.
    Called by `serve --workers N` before it starts them: prometheus_client reads the variable
    when a process imports it, and each worker is a fresh interpreter that does."""
    shutil.rmtree(directory, ignore_errors=True)
    os.environ[MULTIPROCESS_VARIABLE] = str(private_dir(directory).resolve())


def multiprocess() -> bool:
    """Whether values are kept in PROMETHEUS_MULTIPROC_DIR: prometheus_client chose so when it
    was imported, by this same test."""
    return MULTIPROCESS_VARIABLE in os.environ


def exposition(own: CollectorRegistry, database: DatabaseCollector) -> bytes:
    """The text of one scrape: the counted values (this process's `own`, or every worker's),
    then the database's gauges."""
    registry = CollectorRegistry()
    if multiprocess():
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # untyped upstream
    else:
        registry.register(own)
    registry.register(database)
    return generate_latest(registry)
