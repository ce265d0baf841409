"""Following a run: poll its detail, say when a stage or job changes status, and stream the
log lines of its steps as they are written, until the run ends (or waits on a review).

On a terminal, a live panel below the log shows every stage and job; elsewhere each change is
one plain line (`== STAGE/JOB STATUS`) and each log line is printed as `[JOB] line`.
"""

import io
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.text import Text

from stageline.cli.client.api_client import ApiClient
from stageline.cli.client.render import STYLES, SYMBOLS, duration, status_text
from stageline.domain.statuses import (
    RUN_TERMINAL,
    STAGE_MOVING,
    STAGE_PLANNED,
    STAGE_TERMINAL,
    RunStatus,
)
from stageline.schemas.responses.runs import RunDetail

POLL_SECONDS = 1.0


def _ended(status: str) -> bool:
    return status in RUN_TERMINAL


@dataclass
class Follower:
    client: ApiClient
    console: Console
    pipeline_id: str
    run_id: str
    label: str
    logs: bool = True
    announce: bool = True
    """Print a line when a stage or job changes status."""
    job_filter: str | None = None
    """Only this job's logs (by name or identifier)."""
    poll_seconds: float = POLL_SECONDS
    clock: Callable[[], float] = time.time
    _statuses: dict[str, str] = field(default_factory=dict)
    _offsets: dict[str, int] = field(default_factory=dict)
    _finished_logs: set[str] = field(default_factory=set)

    # -- one poll -------------------------------------------------------------------------------

    def poll(self) -> RunDetail:
        """One look at the run: what started, the log lines written since the last look, then
        what ended (or paused), so that a job's lines stand between its start and its end."""
        detail = self.client.run_detail(self.pipeline_id, run_id=self.run_id)
        started, ended = self._changes(detail) if self.announce else ([], [])
        self._say(started)
        if self.logs:
            self.stream(detail)
        self._say(ended)
        return detail

    def _changes(self, detail: RunDetail) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        """(key, status) of what started since the last look (the run, then each stage and its
        jobs) and of what ended or paused (each stage's jobs, then the stage, then the run)."""
        run = (self.label, detail["status"])
        in_start_order, in_end_order = [run], []
        for stage in detail["stages"]:
            jobs = [(f"{stage['name']}/{job['name']}", job["status"]) for job in stage["jobs"]]
            in_start_order += [(stage["name"], stage["status"]), *jobs]
            in_end_order += [*jobs, (stage["name"], stage["status"])]
        in_end_order.append(run)
        changed = {
            key
            for key, status in in_start_order
            if self._statuses.get(key) != status and status not in STAGE_PLANNED
        }
        self._statuses.update(in_start_order)
        return (
            [c for c in in_start_order if c[0] in changed and c[1] in STAGE_MOVING],
            [c for c in in_end_order if c[0] in changed and c[1] not in STAGE_MOVING],
        )

    def _say(self, changes: list[tuple[str, str]]) -> None:
        for key, status in changes:
            line = Text("== ", style="dim").append(f"{key} ").append(status_text(status))
            self.console.print(line)

    def _wanted(self, job: dict[str, Any]) -> bool:
        return self.job_filter is None or self.job_filter in {job["name"], job["identifier"]}

    def skip_logs(self, detail: RunDetail) -> None:
        """Show only lines written from now on (a retried step keeps its earlier lines)."""
        console, self.console = self.console, Console(file=io.StringIO())
        try:
            self.stream(detail)
        finally:
            self.console = console
        self._finished_logs.clear()

    def stream(self, detail: RunDetail) -> None:
        """Print the log lines written since the last call, of every step that has begun."""
        for stage in detail["stages"]:
            for job in stage["jobs"]:
                if not self._wanted(dict(job)):
                    continue
                for step in job["steps"]:
                    step_id = step["id"]
                    if step_id in self._finished_logs or step["status"] in STAGE_PLANNED:
                        continue
                    if step["start_time"] is None and step["status"] not in STAGE_TERMINAL:
                        continue
                    start = self._offsets.get(step_id, 0)
                    for end, text in self.client.step_log_lines(
                        self.pipeline_id, self.run_id, job["id"], step_id, start=start
                    ):
                        self._offsets[step_id] = end
                        for line in text.splitlines():
                            self.console.print(Text(f"[{job['name']}] ", style="dim").append(line))
                    if step["status"] in STAGE_TERMINAL:
                        self._finished_logs.add(step_id)

    # -- until the end --------------------------------------------------------------------------

    def follow(self, *, through_reviews: bool = False) -> RunDetail:
        """Poll until the run ends, or pauses (unless `through_reviews`). KeyboardInterrupt
        passes through to the caller, which decides whether to stop the run."""
        live = None
        if self.console.is_terminal:
            live = Live(console=self.console, auto_refresh=False)
            live.start()
        try:
            while True:
                detail = self.poll()
                if live is not None:
                    live.update(progress_panel(detail, self.label, self.clock()), refresh=True)
                status = detail["status"]
                if _ended(status) or (status == RunStatus.PAUSED and not through_reviews):
                    return detail
                time.sleep(self.poll_seconds)
        finally:
            if live is not None:
                live.stop()


def progress_panel(detail: RunDetail, label: str, now: float) -> Group:
    """Every stage and job of the run with its status and how long it has taken."""
    now_ms = int(now * 1000)
    lines = [
        Text(f"{label}  ", style="bold")
        .append(status_text(detail["status"]))
        .append(f"  {duration(detail['start_time'], detail['end_time'], now_ms)}", style="dim")
    ]
    for stage in detail["stages"]:
        lines.append(_line(2, stage["status"], stage["name"], stage, now_ms))
        lines.extend(_line(4, job["status"], job["name"], job, now_ms) for job in stage["jobs"])
    return Group(*lines)


def _line(indent: int, status: str, name: str, item: Any, now_ms: int) -> Text:
    took = duration(item["start_time"], item["end_time"], now_ms)
    return (
        Text(" " * indent)
        .append(SYMBOLS.get(status, "?"), style=STYLES.get(status, ""))
        .append(f" {name}  ")
        .append(status_text(status))
        .append(f"  {took}", style="dim")
    )
