"""The built-in executor: runs submitted jobs on a thread pool inside the server process."""

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from stageline.agent.executor import run_job
from stageline.schemas.jobs import JobAssignment, JobEvents

log = logging.getLogger(__name__)


class LocalAgent:
    """A `Dispatcher` that runs at most `slots` jobs at once; the rest wait QUEUED."""

    def __init__(self, events: JobEvents, *, workspace_root: Path, slots: int) -> None:
        self._events = events
        self._workspace_root = workspace_root
        self._pool = ThreadPoolExecutor(max_workers=slots, thread_name_prefix="stageline-job")
        self._cancel_flags: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def submit(self, job: JobAssignment) -> None:
        with self._lock:
            self._cancel_flags[job.job_run_id] = threading.Event()
        self._pool.submit(self._run, job)

    def cancel(self, job_run_id: str) -> None:
        with self._lock:
            flag = self._cancel_flags.get(job_run_id)
        if flag is not None:
            flag.set()

    def shutdown(self) -> None:
        """Cancel everything and wait for the steps' process groups to be gone."""
        with self._lock:
            flags = list(self._cancel_flags.values())
        for flag in flags:
            flag.set()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _run(self, job: JobAssignment) -> None:
        with self._lock:
            cancelled = self._cancel_flags[job.job_run_id]
        try:
            if not cancelled.is_set():  # cancelled while queued: the engine has recorded it
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
                self._cancel_flags.pop(job.job_run_id, None)
