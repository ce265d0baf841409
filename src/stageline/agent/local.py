"""An executor inside a Stageline process: claims queued jobs and runs them on a thread pool.

It takes at most `slots` jobs at a time; the rest stay QUEUED in the database. It claims as soon
as the engine of its own process wakes it, and otherwise polls, so jobs queued by other processes
(API workers) are picked up within `poll_seconds`. The same poll notices jobs that were stopped
elsewhere and kills them.
"""

import logging
import os
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from stageline.agent.executor import run_job
from stageline.schemas.jobs import JobAssignment, JobEvents, JobSource

log = logging.getLogger(__name__)


class LocalAgent:
    """Implements `schemas.jobs.Dispatcher` for the engine of its process."""

    def __init__(
        self,
        source: JobSource,
        events: JobEvents,
        *,
        workspace_root: Path,
        slots: int,
        poll_seconds: float = 0.5,
    ) -> None:
        self.name = f"{socket.gethostname()}:{os.getpid()}:local"
        self._source = source
        self._events = events
        self._workspace_root = workspace_root
        self._slots = slots
        self._poll_seconds = poll_seconds
        self._pool = ThreadPoolExecutor(max_workers=slots, thread_name_prefix="stageline-job")
        self._running: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._loop_thread = threading.Thread(
            target=self._loop, name="stageline-claims", daemon=True
        )

    def start(self) -> None:
        self._loop_thread.start()

    def wake(self) -> None:
        self._wake.set()

    def cancel(self, job_run_id: str) -> None:
        with self._lock:
            flag = self._running.get(job_run_id)
        if flag is not None:
            flag.set()

    def shutdown(self) -> None:
        """Stop claiming, cancel what runs, and wait until the steps' process groups are gone."""
        self._stopping.set()
        self._wake.set()
        if self._loop_thread.is_alive():
            self._loop_thread.join()
        with self._lock:
            flags = list(self._running.values())
        for flag in flags:
            flag.set()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _loop(self) -> None:
        last_check = time.monotonic()
        while not self._stopping.is_set():
            try:
                self._wake.clear()  # before claiming, so that no wake-up in between is lost
                if not self._claim_one():
                    self._wake.wait(self._poll_seconds)
                if time.monotonic() - last_check >= self._poll_seconds:
                    last_check = time.monotonic()
                    self._kill_stopped()
            except Exception:
                log.exception("the executor's claim loop failed; retrying")
                self._stopping.wait(self._poll_seconds)

    def _claim_one(self) -> bool:
        with self._lock:
            if len(self._running) >= self._slots:
                return False
        job = self._source.claim_next(self.name)
        if job is None:
            return False
        with self._lock:
            self._running[job.job_run_id] = threading.Event()
        self._pool.submit(self._run, job)
        return True

    def _kill_stopped(self) -> None:
        with self._lock:
            running = list(self._running)
        for job_run_id in self._source.stopped_among(running):
            self.cancel(job_run_id)

    def _run(self, job: JobAssignment) -> None:
        with self._lock:
            cancelled = self._running[job.job_run_id]
        try:
            run_job(
                job,
                self._events,
                workspace=self._workspace_root / job.job_run_id,
                cancelled=cancelled,
            )
        except Exception:
            log.exception("job %s crashed in the executor", job.job_run_id)
            self._events.job_finished(job.job_run_id, "FAILED", "executor error")
        finally:
            with self._lock:
                self._running.pop(job.job_run_id, None)
            self._wake.set()  # a slot is free
