"""What a running job has to tell the server, kept in order until the server confirms it.

`JobOutbox` implements `schemas.jobs.JobEvents` for the executor: every call becomes an
`AgentEvent` numbered from 1. Events stay until the server says it applied them, so an agent
cut off from the server keeps its job running and delivers everything, in order, once it is
back; the server drops what it applied before, so resending is always safe.
"""

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from stageline.schemas.jobs import AgentEvent, JobAssignment, JobOutcome, OutputPair

log = logging.getLogger(__name__)

LINES_PER_EVENT = 100
Uploader = Callable[[str, str, Path], str | None]
"""(step_run_id, name, path) -> None when stored, else why not."""


class JobOutbox:
    def __init__(self, job: JobAssignment, uploader: Uploader) -> None:
        self.job = job
        self.cancelled = threading.Event()
        """Set when the job must stop: stopped or timed out on the server, or taken back."""
        self.fenced = False
        """The claim is no longer ours: nothing more is sent for it."""
        self._uploader = uploader
        self._events: deque[AgentEvent] = deque()
        self._seq = 0
        self._finished = False
        self._next_line = {step.step_run_id: step.log_offset for step in job.steps}
        self._lock = threading.Lock()
        self.changed = threading.Event()
        self.renewed_at = time.monotonic()
        """When the last request that renewed the lease (a heartbeat or a report) was sent."""
        self._lost_contact: str | None = None

    @property
    def job_run_id(self) -> str:
        return self.job.job_run_id

    @property
    def running(self) -> bool:
        with self._lock:
            return not self._finished

    @property
    def delivered(self) -> bool:
        """The job ended and the server has every event of it (or will never take them)."""
        with self._lock:
            return self.fenced or (self._finished and not self._events)

    def pending(self, *, max_events: int, max_chars: int) -> list[AgentEvent]:
        """The oldest unconfirmed events, at least one, within both limits."""
        batch: list[AgentEvent] = []
        chars = 0
        with self._lock:
            for event in self._events:
                chars += sum(len(line) for line in event.lines) + 200
                if batch and (len(batch) >= max_events or chars > max_chars):
                    break
                batch.append(event)
        return batch

    def acknowledge(self, applied: int) -> None:
        with self._lock:
            while self._events and self._events[0].seq <= applied:
                self._events.popleft()

    def renewed(self, sent_at: float) -> None:
        self.renewed_at = max(self.renewed_at, sent_at)

    def lose_contact(self, message: str) -> None:
        """The lease has surely run out on the server: stop the job, which will end FAILED with
        `message` should the server still take the report."""
        self._lost_contact = message
        self.cancelled.set()

    def fence(self) -> None:
        with self._lock:
            self.fenced = True
            self._events.clear()
        self.cancelled.set()

    def _add(self, kind: str, **fields: Any) -> None:
        with self._lock:
            if self.fenced:
                return
            self._seq += 1
            self._events.append(
                AgentEvent.model_validate({"seq": self._seq, "kind": kind, **fields})
            )
            if kind == "job_finished":
                self._finished = True
        self.changed.set()

    # -- schemas.jobs.JobEvents -------------------------------------------------------------

    def job_started(self, job_run_id: str) -> None:
        self._add("job_started")

    def step_started(self, job_run_id: str, step_run_id: str) -> None:
        self._add("step_started", step_run_id=step_run_id)

    def step_log(self, step_run_id: str, lines: Sequence[str]) -> None:
        if not lines:
            return
        for start in range(0, len(lines), LINES_PER_EVENT):
            chunk = list(lines[start : start + LINES_PER_EVENT])
            with self._lock:
                first = self._next_line.get(step_run_id, 0)
                self._next_line[step_run_id] = first + len(chunk)
            self._add("step_log", step_run_id=step_run_id, first_line=first, lines=chunk)

    def step_outputs(self, step_run_id: str, outputs: Sequence[tuple[str, str]]) -> None:
        pairs = [OutputPair(key=key, value=value) for key, value in outputs]
        self._add("step_outputs", step_run_id=step_run_id, outputs=pairs)

    def upload_artifact(self, step_run_id: str, name: str, path: Path) -> str | None:
        return self._uploader(step_run_id, name, path)

    def step_finished(
        self, step_run_id: str, outcome: JobOutcome, *, exit_code: int | None, message: str | None
    ) -> None:
        self._add(
            "step_finished",
            step_run_id=step_run_id,
            outcome=outcome,
            exit_code=exit_code,
            message=_short(message),
        )

    def job_finished(self, job_run_id: str, outcome: JobOutcome, message: str | None) -> None:
        if self._lost_contact is not None and outcome == "CANCELED":
            outcome, message = "FAILED", self._lost_contact
        self._add("job_finished", outcome=outcome, message=_short(message))


def _short(message: str | None) -> str | None:
    return None if message is None else message[:4096]
