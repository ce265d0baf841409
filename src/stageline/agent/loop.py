"""A build agent: claim jobs over HTTP, run them, report, and keep their leases alive.

Three threads besides the jobs': the claim loop (one long-poll claim at a time while a slot is
free), the sender (delivers each job's outbox in order, retrying with backoff while the server
is unreachable), and the heartbeat (renews the leases of running jobs and learns which to kill).

Each job's reports are retried on their own backoff: a server that fails the reports of one job
(a 5xx for that job alone) delays that job only, never the reports of the agent's other jobs,
which may belong to other projects.

`drain()` stops claiming and lets running jobs finish and their reports reach the server;
`shutdown()` also cancels running jobs. Either way the agent gives delivery `deliver_seconds`.
"""

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from stageline.agent.executor import run_job
from stageline.agent.outbox import JobOutbox
from stageline.agent.transport import Fenced, Rejected, ServerFailed, Unreachable
from stageline.schemas.jobs import (
    MAX_HEARTBEAT_JOBS,
    ClaimRequest,
    EventBatch,
    Heartbeat,
    JobAssignment,
    JobSource,
)

log = logging.getLogger(__name__)

MAX_EVENTS_PER_REPORT = 500
MAX_CHARS_PER_REPORT = 4 * 1024 * 1024
UPLOAD_ATTEMPTS = 5
SELF_FENCE_SHARE = 0.8
"""Share of the lease after which a job the agent could not renew is stopped by the agent."""
LAST_WORDS_SECONDS = 10.0
"""After cancelling at the end of a drain: time for steps to die and their reports to go out."""


@dataclass(frozen=True)
class AgentConfig:
    workdir: Path
    pool: str = "default"
    labels: tuple[str, ...] = ()
    concurrency: int = 1
    claim_wait_seconds: float = 20.0
    heartbeat_seconds: float = 2.0
    deliver_seconds: float = 600.0
    """How long a drain waits for running jobs to finish and their reports to be delivered."""
    name: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")


class Backoff:
    def __init__(self, first: float = 0.2, most: float = 5.0) -> None:
        self._first = first
        self._most = most
        self.delay = 0.0

    def failed(self) -> float:
        self.delay = min(self._most, max(self._first, self.delay * 2))
        return self.delay

    def succeeded(self) -> None:
        self.delay = 0.0


class Agent:
    def __init__(self, source: JobSource, config: AgentConfig) -> None:
        self.source = source
        self.config = config
        self._outboxes: dict[str, JobOutbox] = {}
        self._lock = threading.Lock()
        self._claiming = threading.Event()
        self._claiming.set()
        self._stopping = threading.Event()
        self._wake_sender = threading.Event()
        # Only the sender thread touches these two.
        self._retries: dict[str, tuple[Backoff, float]] = {}
        """Jobs whose last report failed: their backoff, and when to try again (monotonic)."""
        self._server_backoff = Backoff()
        self._server_retry_at = 0.0
        """When to try again after the server did not answer at all (monotonic)."""
        self._threads = [
            threading.Thread(target=self._claim_loop, name="agent-claims", daemon=True),
            threading.Thread(target=self._send_loop, name="agent-sender", daemon=True),
            threading.Thread(target=self._heartbeat_loop, name="agent-heartbeat", daemon=True),
        ]

    # -- lifetime ---------------------------------------------------------------------------

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def drain(self, timeout: float | None = None) -> bool:
        """Stop claiming; wait until every job ended and its reports were delivered. Jobs still
        running when `timeout` (default `deliver_seconds`) is up are cancelled, and their last
        reports get a few more seconds. True when everything was delivered."""
        self._claiming.clear()
        limit = self.config.deliver_seconds if timeout is None else timeout
        if not self._wait_delivered(limit) and self.running_jobs:
            self._cancel_running()
            self._wait_delivered(LAST_WORDS_SECONDS)
        self._stopping.set()
        self._wake_sender.set()
        for thread in self._threads:
            thread.join(timeout=LAST_WORDS_SECONDS)
        with self._lock:
            return all(outbox.delivered for outbox in self._outboxes.values())

    def shutdown(self, timeout: float = 10.0) -> bool:
        """Cancel running jobs (their steps' process groups are killed), then drain."""
        self._claiming.clear()
        self._cancel_running()
        return self.drain(timeout)

    def _cancel_running(self) -> None:
        with self._lock:
            for outbox in self._outboxes.values():
                outbox.cancelled.set()

    def _wait_delivered(self, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with self._lock:
                if all(outbox.delivered for outbox in self._outboxes.values()):
                    return True
            time.sleep(0.05)
        return False

    @property
    def running_jobs(self) -> list[str]:
        with self._lock:
            return [job_id for job_id, outbox in self._outboxes.items() if outbox.running]

    # -- claiming ---------------------------------------------------------------------------

    def _claim_loop(self) -> None:
        backoff = Backoff(first=1.0, most=10.0)
        request = ClaimRequest(
            agent=self.config.name[:96],
            pool=self.config.pool,
            labels=list(self.config.labels),
            wait_seconds=self.config.claim_wait_seconds,
        )
        while not self._stopping.is_set():
            if not self._claiming.is_set() or len(self.running_jobs) >= self.config.concurrency:
                self._stopping.wait(0.1)
                continue
            try:
                job = self.source.claim(request)
            except (Unreachable, Rejected, Fenced) as error:
                delay = backoff.failed()
                log.warning("claim failed (%s); again in %.1fs", error, delay)
                self._stopping.wait(delay)
                continue
            backoff.succeeded()
            if job is not None:
                self._start(job)

    def _start(self, job: JobAssignment) -> None:
        outbox = JobOutbox(job, lambda step, name, path: self._upload(outbox, step, name, path))
        with self._lock:
            earlier = self._outboxes.get(job.job_run_id)
            self._outboxes[job.job_run_id] = outbox
        if earlier is not None:  # retried or taken back before this agent learned it must stop
            earlier.fence()
        if not self._claiming.is_set():  # claimed while being asked to stop: give it back
            outbox.cancelled.set()
        threading.Thread(
            target=self._run, args=(outbox,), name=f"job-{job.job_run_id[:8]}", daemon=True
        ).start()
        log.info("running job %s (%s)", job.job_run_id, job.name)

    def _run(self, outbox: JobOutbox) -> None:
        job = outbox.job
        try:
            run_job(
                job,
                outbox,
                # Per claim: a stopped go of the job may still be dying in its own workspace.
                workspace=self.config.workdir / f"{job.job_run_id}-{job.dispatch_id[:8]}",
                cancelled=outbox.cancelled,
            )
        except Exception:
            log.exception("job %s crashed in the agent", job.job_run_id)
            outbox.job_finished(job.job_run_id, "FAILED", "agent error")
        self._wake_sender.set()

    def _upload(self, outbox: JobOutbox, step_run_id: str, name: str, path: Path) -> str | None:
        backoff = Backoff(first=0.5, most=5.0)
        job = outbox.job
        for _ in range(UPLOAD_ATTEMPTS):
            try:
                self.source.upload(job.job_run_id, job.dispatch_id, step_run_id, name, path)
                return None
            except (Rejected, Fenced) as error:
                return f"could not upload artifact '{name}': {error}"
            except Unreachable:
                time.sleep(backoff.failed())
        return f"could not upload artifact '{name}': server unreachable"

    # -- delivering -------------------------------------------------------------------------

    def _send_loop(self) -> None:
        while True:
            self._wake_sender.clear()
            all_sent = self._send_pending()
            with self._lock:
                done = [k for k, o in self._outboxes.items() if o.delivered]
                for job_run_id in done:
                    del self._outboxes[job_run_id]
                idle = not self._outboxes
            for job_run_id in done:
                self._retries.pop(job_run_id, None)
            if self._stopping.is_set() and (idle or not all_sent):
                return
            self._wake_sender.wait(0.1)

    def _send_pending(self) -> bool:
        """One report per job with pending events, except jobs waiting to retry; False when
        some job's reports could not be delivered (this time or the last)."""
        with self._lock:
            outboxes = list(self._outboxes.values())
        now = time.monotonic()
        if now < self._server_retry_at:
            return False
        all_sent = True
        for outbox in outboxes:
            retry = self._retries.get(outbox.job_run_id)
            if retry is not None and retry[1] > now:
                all_sent = False
                continue
            try:
                sent = self._send_one(outbox)
            except Unreachable as error:  # no answer at all: no other job would get one either
                delay = self._server_backoff.failed()
                log.warning("could not reach the server (%s); again in %.1fs", error, delay)
                self._server_retry_at = now + delay
                return False
            self._server_backoff.succeeded()
            if not sent:
                backoff = retry[0] if retry is not None else Backoff()
                self._retries[outbox.job_run_id] = (backoff, now + backoff.failed())
                all_sent = False
            elif retry is not None:
                del self._retries[outbox.job_run_id]
        return all_sent

    def _send_one(self, outbox: JobOutbox) -> bool:
        """Report the job's oldest pending events; False when the server failed them and they
        must be tried again; `Unreachable` when it did not answer."""
        events = outbox.pending(max_events=MAX_EVENTS_PER_REPORT, max_chars=MAX_CHARS_PER_REPORT)
        if not events:
            return True
        batch = EventBatch(dispatch_id=outbox.job.dispatch_id, events=events)
        sent_at = time.monotonic()
        try:
            answer = self.source.report(outbox.job_run_id, batch)
        except ServerFailed as error:  # this job's reports, perhaps only these: try later
            log.warning("could not report job %s: %s", outbox.job_run_id, error)
            return False
        except Fenced as error:
            log.warning("job %s is no longer ours (%s); stopping it", outbox.job_run_id, error)
            outbox.fence()
            return True
        except Rejected as error:  # a bug on one side; resending would loop forever
            log.error("report of job %s refused (%s); dropping it", outbox.job_run_id, error)
            outbox.fence()
            return True
        outbox.acknowledge(answer.applied)
        outbox.renewed(sent_at)
        if answer.cancel and outbox.running:
            outbox.cancelled.set()
        return True

    # -- heartbeats -------------------------------------------------------------------------

    def _heartbeat_loop(self) -> None:
        while not self._stopping.wait(self.config.heartbeat_seconds):
            with self._lock:
                outboxes = [o for o in self._outboxes.values() if o.running and not o.fenced]
            if not outboxes:
                continue
            _stop_jobs_out_of_touch(outboxes)
            # The server takes at most MAX_HEARTBEAT_JOBS jobs per heartbeat.
            for start in range(0, len(outboxes), MAX_HEARTBEAT_JOBS):
                self._beat(outboxes[start : start + MAX_HEARTBEAT_JOBS])

    def _beat(self, outboxes: list[JobOutbox]) -> None:
        sent_at = time.monotonic()
        beat = Heartbeat(jobs={o.job_run_id: o.job.dispatch_id for o in outboxes})
        try:
            reply = self.source.heartbeat(beat)
        except (Unreachable, Rejected, Fenced) as error:
            log.warning("heartbeat failed: %s", error)
            return
        for outbox in outboxes:
            if outbox.job_run_id in reply.cancel:
                outbox.cancelled.set()
            else:
                outbox.renewed(sent_at)


def _stop_jobs_out_of_touch(outboxes: list[JobOutbox]) -> None:
    """Self-fencing: a job whose lease this agent could not renew for most of its length has
    been, or is about to be, given to another agent; stop it, so that it never runs twice."""
    now = time.monotonic()
    for outbox in outboxes:
        silent = now - outbox.renewed_at
        if silent > outbox.job.lease_seconds * SELF_FENCE_SHARE and not outbox.cancelled.is_set():
            log.error(
                "job %s: no contact with the server for %.0fs; stopping it",
                outbox.job_run_id,
                silent,
            )
            outbox.lose_contact(
                f"the agent lost contact with the server for {silent:.0f}s and stopped the job,"
                " which the server may have given to another agent"
            )
