"""What the engine counts for GET /metrics: runs started and finished, how long jobs waited for
an agent, and jobs taken back from lost agents.

A change is counted by the process whose transaction made it, once that transaction has
committed (a change rolled back is not counted), so several server processes count it once
between them. The change feed would not do: every process reads it, and would count every
change once per process. The values live in the `CollectorRegistry` given; with several API
worker processes they are also written to PROMETHEUS_MULTIPROC_DIR, where `api.scrape` adds them
up.
"""

from prometheus_client import CollectorRegistry, Counter, Histogram

from stageline.domain.statuses import RUN_TERMINAL, StageStatus
from stageline.engine.journal import Journal

NAMESPACE = "stageline"
QUEUE_WAIT_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0)
"""Seconds: a job claimed at once by a waiting agent takes milliseconds; one that waits for a
busy or missing agent, minutes."""


class EngineMetrics:
    """The engine's counters and histograms, registered in `registry`."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry = registry or CollectorRegistry()
        self.runs_started = Counter(
            "runs_started",
            "Runs created, by what triggered them (IGNORED ones too: they finish at once).",
            ["trigger"],
            namespace=NAMESPACE,
            registry=registry,
        )
        self.runs_finished = Counter(
            "runs_finished",
            "Runs that ended, by their status and trigger; a retried run that ends again counts"
            " again.",
            ["status", "trigger"],
            namespace=NAMESPACE,
            registry=registry,
        )
        self.job_queue_wait = Histogram(
            "job_queue_wait_seconds",
            "How long a job waited in the queue before an agent claimed it (a redispatched job"
            " keeps its first place in the queue, and its wait counts from then).",
            namespace=NAMESPACE,
            registry=registry,
            buckets=QUEUE_WAIT_BUCKETS,
        )
        self.redispatches = Counter(
            "job_redispatches",
            "Jobs taken back from an agent that stopped heartbeating and queued again.",
            namespace=NAMESPACE,
            registry=registry,
        )

        self.webhook_deliveries = Counter(
            "webhook_deliveries",
            "Webhook deliveries received, by the host that sent them (`unknown` when no header"
            " tells) and what became of them: started a run, a duplicate of one that did,"
            " ignored (an event the trigger does not take), or rejected (unknown hook, wrong"
            " secret, unreadable body).",
            ["host", "result"],
            namespace=NAMESPACE,
            registry=registry,
        )

    def count_delivery(self, host: str | None, result: str) -> None:
        self.webhook_deliveries.labels(host=host or "unknown", result=result).inc()

    def count_committed(self, journal: Journal) -> None:
        """Count what `journal` wrote; call it once its transaction has committed."""
        for change in journal.written:
            entity, before, after = change["entity"], change["from_status"], change["to_status"]
            if entity == "run":
                trigger = journal.triggers.get(change["run_id"], "")
                if before is None:
                    self.runs_started.labels(trigger=trigger).inc()
                if after in RUN_TERMINAL:
                    self.runs_finished.labels(status=after, trigger=trigger).inc()
            elif entity == "job" and after == StageStatus.REDISPATCH:
                self.redispatches.inc()
        journal.written = []

    def count_claim(self, *, queued_at: int | None, claimed_at: int) -> None:
        """A job was claimed at `claimed_at` (ms) and its claim has committed."""
        if queued_at is not None:
            self.job_queue_wait.observe(max(0, claimed_at - queued_at) / 1000)
