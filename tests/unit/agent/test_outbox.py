"""Tests for `stageline.agent.outbox.JobOutbox` and for delivery by `stageline.agent.loop.Agent`.

The agent works against `ServerDouble`, an in-memory `JobSource` that keeps the server's rules for
reports (events applied once, in order, under the current dispatch only) and can be cut off or
take a job back. The jobs themselves run as real bash processes. The HTTP path between a real
agent and the real server is covered by the integration and e2e tests.
"""

import dataclasses
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from stageline.agent.loop import Agent, AgentConfig
from stageline.agent.outbox import LINES_PER_EVENT, JobOutbox
from stageline.agent.transport import Fenced, Unreachable
from stageline.schemas.jobs import (
    MAX_HEARTBEAT_JOBS,
    AgentEvent,
    ClaimRequest,
    EventBatch,
    EventsApplied,
    Heartbeat,
    HeartbeatReply,
    JobAssignment,
    StepAssignment,
)

SHELL_TASK = "official_shell_plugin"
BOUND_SECONDS = 20.0
"""How long the agent may take to get something done: a bound, not a timing check."""


def assignment(
    job_run_id: str = "job-1", *scripts: str, log_offsets: tuple[int, ...] = ()
) -> JobAssignment:
    steps = tuple(
        StepAssignment(
            step_run_id=f"{job_run_id}-s{i}",
            name=f"step {i}",
            task=SHELL_TASK,
            script=script,
            log_offset=log_offsets[i] if i < len(log_offsets) else 0,
        )
        for i, script in enumerate(scripts or ("true",))
    )
    return JobAssignment(
        job_run_id=job_run_id,
        run_id="run-1",
        pipeline_id="pipeline-1",
        name=job_run_id,
        steps=steps,
        env={},
        dispatch_id=f"dispatch-of-{job_run_id}",
    )


def no_upload(step_run_id: str, name: str, path: Path) -> str | None:
    return "uploads are not part of these tests"


def outbox_of(job: JobAssignment | None = None) -> JobOutbox:
    return JobOutbox(job or assignment(), no_upload)


def seqs(events: list[AgentEvent]) -> list[int]:
    return [event.seq for event in events]


def everything(outbox: JobOutbox) -> list[AgentEvent]:
    return outbox.pending(max_events=10_000, max_chars=10**9)


class TestJobOutbox:
    def test_events_are_numbered_from_one_in_call_order(self) -> None:
        outbox = outbox_of()
        outbox.job_started("job-1")
        outbox.step_started("job-1", "job-1-s0")
        outbox.step_outputs("job-1-s0", [("version", "1.2")])
        outbox.step_finished("job-1-s0", "COMPLETED", exit_code=0, message=None)
        outbox.job_finished("job-1", "COMPLETED", None)

        events = everything(outbox)
        assert seqs(events) == [1, 2, 3, 4, 5]
        assert [e.kind for e in events] == [
            "job_started",
            "step_started",
            "step_outputs",
            "step_finished",
            "job_finished",
        ]
        assert events[2].outputs[0].model_dump() == {"key": "version", "value": "1.2"}
        assert (events[3].step_run_id, events[3].outcome, events[3].exit_code) == (
            "job-1-s0",
            "COMPLETED",
            0,
        )

    def test_log_lines_are_numbered_on_from_the_steps_offset(self) -> None:
        outbox = outbox_of(assignment("job-1", "true", "true", log_offsets=(7, 0)))
        outbox.step_log("job-1-s0", ["a", "b"])
        outbox.step_log("job-1-s1", ["x"])
        outbox.step_log("job-1-s0", ["c"])
        outbox.step_log("job-1-s0", [])

        events = everything(outbox)
        assert [(e.step_run_id, e.first_line, e.lines) for e in events] == [
            ("job-1-s0", 7, ["a", "b"]),
            ("job-1-s1", 0, ["x"]),
            ("job-1-s0", 9, ["c"]),
        ]

    def test_a_long_log_is_chunked_with_line_numbers_running_on(self) -> None:
        outbox = outbox_of(assignment("job-1", "true", log_offsets=(3,)))
        lines = [f"line {i}" for i in range(2 * LINES_PER_EVENT + 50)]
        outbox.step_log("job-1-s0", lines)
        outbox.step_log("job-1-s0", ["after"])

        events = everything(outbox)
        assert LINES_PER_EVENT == 100
        assert [(e.seq, e.first_line, len(e.lines)) for e in events] == [
            (1, 3, 100),
            (2, 103, 100),
            (3, 203, 50),
            (4, 253, 1),
        ]
        assert [line for e in events for line in e.lines] == [*lines, "after"]

    def test_pending_gives_the_oldest_events_within_the_limits(self) -> None:
        outbox = outbox_of()
        for _ in range(5):
            outbox.step_log("job-1-s0", ["x" * 1000])

        assert seqs(outbox.pending(max_events=2, max_chars=10**6)) == [1, 2]
        # Each event counts its characters plus 200 for its envelope.
        assert seqs(outbox.pending(max_events=100, max_chars=3 * 1200)) == [1, 2, 3]
        assert seqs(outbox.pending(max_events=100, max_chars=3 * 1200 - 1)) == [1, 2]
        assert seqs(outbox.pending(max_events=100, max_chars=10)) == [1]
        assert seqs(everything(outbox)) == [1, 2, 3, 4, 5]

    def test_pending_of_an_empty_outbox_is_empty(self) -> None:
        assert outbox_of().pending(max_events=10, max_chars=10) == []

    def test_acknowledge_forgets_what_the_server_applied(self) -> None:
        outbox = outbox_of()
        for _ in range(4):
            outbox.step_log("job-1-s0", ["x"])

        outbox.acknowledge(2)
        assert seqs(everything(outbox)) == [3, 4]
        outbox.acknowledge(1)  # an older answer arriving late changes nothing
        assert seqs(everything(outbox)) == [3, 4]
        outbox.step_log("job-1-s0", ["y"])
        outbox.acknowledge(4)
        assert seqs(everything(outbox)) == [5]
        assert everything(outbox)[0].first_line == 4

    def test_delivered_means_finished_and_all_acknowledged(self) -> None:
        outbox = outbox_of()
        outbox.job_started("job-1")
        assert (outbox.running, outbox.delivered) == (True, False)
        outbox.acknowledge(1)
        assert (outbox.running, outbox.delivered) == (True, False)
        outbox.job_finished("job-1", "FAILED", "x" * 5000)
        assert (outbox.running, outbox.delivered) == (False, False)
        message = everything(outbox)[0].message
        assert message is not None
        assert len(message) == 4096
        outbox.acknowledge(1)
        assert outbox.delivered is False
        outbox.acknowledge(2)
        assert outbox.delivered is True

    def test_fence_drops_the_events_and_cancels_the_job(self) -> None:
        outbox = outbox_of()
        outbox.job_started("job-1")
        outbox.step_log("job-1-s0", ["x"])
        assert not outbox.cancelled.is_set()

        outbox.fence()

        assert outbox.cancelled.is_set()
        assert outbox.fenced is True
        assert everything(outbox) == []
        assert outbox.delivered is True  # nothing more will ever be taken for this claim
        outbox.step_log("job-1-s0", ["late"])
        outbox.job_finished("job-1", "CANCELED", "canceled")
        assert everything(outbox) == []
        assert outbox.running is True  # the events after the fence were never added

    def test_every_call_signals_a_change(self) -> None:
        outbox = outbox_of()
        assert not outbox.changed.is_set()
        outbox.job_started("job-1")
        assert outbox.changed.is_set()


# -- the agent against a server double ----------------------------------------------------------


@dataclass
class ServerDouble:
    """A `JobSource` in memory that applies reports as the server does.

    `reports_down` cuts reports and heartbeats off (Unreachable before anything is applied);
    `lose_answers` applies that many reports and then loses their answers (Unreachable after);
    `fence_on_line` takes the job back when a report carries that log line: the report is refused
    with Fenced, as are all later ones for that job.
    """

    reports_down: bool = False
    lose_answers: int = 0
    fence_on_line: str | None = None
    cancel_on_heartbeat: set[str] = field(default_factory=set)
    applied: dict[str, list[AgentEvent]] = field(default_factory=dict)
    attempts: list[tuple[str, list[AgentEvent]]] = field(default_factory=list)
    """(job_run_id, events) of every report the agent made, refused or not."""
    duplicates: int = 0
    """Events that reached the server after it had applied them (resent after a lost answer)."""
    fenced: dict[str, int] = field(default_factory=dict)
    """Job -> index in `attempts` of the report that was refused as it took the job back."""
    heartbeats: list[dict[str, str]] = field(default_factory=list)
    _jobs: dict[str, JobAssignment] = field(default_factory=dict)
    _queue: deque[JobAssignment] = field(default_factory=deque)
    _changed: threading.Condition = field(default_factory=threading.Condition)

    def enqueue(self, job: JobAssignment) -> None:
        with self._changed:
            self._jobs[job.job_run_id] = job
            self.applied[job.job_run_id] = []
            self._queue.append(job)
            self._changed.notify_all()

    def reconnect(self, *, lose_answers: int = 0) -> None:
        with self._changed:
            self.lose_answers = lose_answers
            self.reports_down = False

    def cancel(self, job_run_id: str) -> None:
        """Answer the next heartbeats that this job must be killed (stopped on the server)."""
        with self._changed:
            self.cancel_on_heartbeat.add(job_run_id)

    @property
    def queued(self) -> list[str]:
        with self._changed:
            return [job.job_run_id for job in self._queue]

    # -- schemas.jobs.JobSource ---------------------------------------------------------------

    def claim(self, request: ClaimRequest) -> JobAssignment | None:
        with self._changed:
            self._changed.wait_for(lambda: bool(self._queue), timeout=request.wait_seconds)
            return self._queue.popleft() if self._queue else None

    def report(self, job_run_id: str, batch: EventBatch) -> EventsApplied:
        with self._changed:
            self.attempts.append((job_run_id, list(batch.events)))
            if self.reports_down:
                raise Unreachable("connection refused")
            job = self._jobs.get(job_run_id)
            if job is None or job.dispatch_id != batch.dispatch_id or job_run_id in self.fenced:
                raise Fenced("409: the claim is no longer current")
            if self.fence_on_line is not None and any(
                self.fence_on_line in event.lines for event in batch.events
            ):
                self.fenced[job_run_id] = len(self.attempts) - 1
                raise Fenced("409: the claim is no longer current")
            applied = self.applied[job_run_id]
            for event in sorted(batch.events, key=lambda e: e.seq):
                if event.seq <= len(applied):
                    self.duplicates += 1
                    continue
                if event.seq != len(applied) + 1:
                    break
                applied.append(event)
            self._changed.notify_all()
            if self.lose_answers:
                self.lose_answers -= 1
                raise Unreachable("connection reset before the answer")
            return EventsApplied(applied=len(applied), cancel=False)

    def heartbeat(self, beat: Heartbeat) -> HeartbeatReply:
        with self._changed:
            if self.reports_down:
                raise Unreachable("connection refused")
            self.heartbeats.append(dict(beat.jobs))
            return HeartbeatReply(cancel=sorted(self.cancel_on_heartbeat & set(beat.jobs)))

    def upload(
        self, job_run_id: str, dispatch_id: str, step_run_id: str, name: str, path: Path
    ) -> None:
        raise AssertionError("no test here uploads artifacts")

    # -- what the test looks at -----------------------------------------------------------------

    def wait(self, condition: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + BOUND_SECONDS
        with self._changed:
            while not condition():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"not within {BOUND_SECONDS}s: {what}")
                self._changed.wait(min(remaining, 0.05))

    def attempted(self, job_run_id: str, kind: str) -> bool:
        return any(
            event.kind == kind
            for job, events in self.attempts
            if job == job_run_id
            for event in events
        )

    def finished(self, job_run_id: str) -> bool:
        events = self.applied.get(job_run_id, [])
        return bool(events) and events[-1].kind == "job_finished"

    def lines(self, step_run_id: str) -> list[str]:
        """The step's log as the server holds it, checking that line numbers run without gaps."""
        numbered: list[tuple[int, str]] = []
        for events in self.applied.values():
            for event in events:
                if event.kind == "step_log" and event.step_run_id == step_run_id:
                    assert event.first_line is not None
                    numbered.extend(enumerate(event.lines, start=event.first_line))
        assert [number for number, _ in numbered] == list(range(len(numbered)))
        return [line for _, line in numbered]


def process_alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie waiting for init to reap it does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.fixture
def server() -> ServerDouble:
    return ServerDouble()


@pytest.fixture
def start_agent(server: ServerDouble, tmp_path: Path) -> Iterator[Callable[..., Agent]]:
    started: list[Agent] = []

    def start(**config: Any) -> Agent:
        settings: dict[str, Any] = {
            "workdir": tmp_path / "agent",
            "concurrency": 2,
            "claim_wait_seconds": 0.2,
            "heartbeat_seconds": 0.2,
            "deliver_seconds": BOUND_SECONDS,
            "name": "unit-agent",
            **config,
        }
        agent = Agent(server, AgentConfig(**settings))
        agent.start()
        started.append(agent)
        return agent

    yield start
    for agent in started:
        agent.shutdown(timeout=5)


class TestAgentDelivery:
    def test_events_reach_the_server_in_order(
        self, server: ServerDouble, start_agent: Callable[..., Agent]
    ) -> None:
        job = assignment("job-1", "echo one\necho two\n", "echo three\n")
        server.enqueue(job)
        start_agent()

        server.wait(lambda: server.finished("job-1"), "job-1 delivered")

        events = server.applied["job-1"]
        assert seqs(events) == list(range(1, len(events) + 1))
        assert [(e.kind, e.step_run_id) for e in events if e.kind != "step_log"] == [
            ("job_started", None),
            ("step_started", "job-1-s0"),
            ("step_finished", "job-1-s0"),
            ("step_started", "job-1-s1"),
            ("step_finished", "job-1-s1"),
            ("job_finished", None),
        ]
        assert events[-1].outcome == "COMPLETED"
        assert server.lines("job-1-s0") == ["one", "two"]
        assert server.lines("job-1-s1") == ["three"]
        assert server.duplicates == 0  # nothing the server had confirmed was sent again

    def test_a_cut_off_agent_buffers_and_delivers_everything_once(
        self, server: ServerDouble, start_agent: Callable[..., Agent]
    ) -> None:
        server.reports_down = True
        script = "for i in $(seq 1 250); do echo line $i; done\necho end\n"
        server.enqueue(assignment("job-1", script))
        agent = start_agent()

        server.wait(lambda: server.attempted("job-1", "job_finished"), "a report of the whole job")
        assert server.applied["job-1"] == []

        server.reconnect(lose_answers=1)  # the first report is applied, its answer lost
        assert agent.drain(timeout=BOUND_SECONDS) is True  # every event confirmed

        events = server.applied["job-1"]
        assert seqs(events) == list(range(1, len(events) + 1))
        assert server.lines("job-1-s0") == [f"line {i}" for i in range(1, 251)] + ["end"]
        assert [e.kind for e in events if e.kind != "step_log"] == [
            "job_started",
            "step_started",
            "step_finished",
            "job_finished",
        ]
        assert server.duplicates > 0  # resent after the lost answer, and applied only once

    def test_a_fenced_job_is_killed_and_nothing_more_is_sent(
        self, server: ServerDouble, start_agent: Callable[..., Agent], tmp_path: Path
    ) -> None:
        pid_file = tmp_path / "sleep.pid"
        script = f"sleep 30 &\necho $! > {pid_file}.tmp\nmv {pid_file}.tmp {pid_file}\n"
        script += "echo started\nwait\n"
        server.fence_on_line = "started"
        server.enqueue(assignment("job-1", script))
        began = time.monotonic()
        agent = start_agent()

        server.wait(lambda: "job-1" in server.fenced, "the report of 'started' refused")
        sleep_pid = int(pid_file.read_text())
        workspace = tmp_path / "agent" / "job-1"
        server.wait(lambda: not workspace.exists(), "the job ended")
        server.wait(lambda: not process_alive(sleep_pid), "sleep 30 was killed")
        assert time.monotonic() - began < BOUND_SECONDS
        assert agent.running_jobs == []

        time.sleep(0.3)  # the sender polls every 0.1 s: time enough to send anything left
        assert len(server.attempts) == server.fenced["job-1"] + 1
        assert not server.attempted("job-1", "job_finished")

    def test_a_job_the_heartbeat_cancels_is_killed_and_reported_canceled(
        self, server: ServerDouble, start_agent: Callable[..., Agent]
    ) -> None:
        server.enqueue(assignment("job-1", "echo started\nsleep 30\n"))
        began = time.monotonic()
        start_agent()
        server.wait(lambda: server.lines("job-1-s0") == ["started"], "the step runs")

        server.cancel("job-1")

        server.wait(lambda: server.finished("job-1"), "job-1 delivered")

        assert time.monotonic() - began < BOUND_SECONDS
        assert server.applied["job-1"][-1].outcome == "CANCELED"
        assert {"job-1": "dispatch-of-job-1"} in server.heartbeats
        assert server.lines("job-1-s0") == ["started"]

    def test_drain_waits_for_running_jobs_and_their_reports(
        self, server: ServerDouble, start_agent: Callable[..., Agent]
    ) -> None:
        server.enqueue(assignment("job-1", "echo working\nsleep 1\necho done\n"))
        agent = start_agent(concurrency=1)
        server.wait(lambda: bool(server.applied["job-1"]), "job-1 started")
        server.enqueue(assignment("job-2", "echo never\n"))

        assert agent.drain(timeout=BOUND_SECONDS) is True

        assert server.finished("job-1")
        assert server.applied["job-1"][-1].outcome == "COMPLETED"
        assert server.lines("job-1-s0") == ["working", "done"]
        assert server.queued == ["job-2"]  # a draining agent takes no new work
        assert agent.running_jobs == []

    def test_a_job_out_of_touch_for_most_of_its_lease_stops_itself(
        self, server: ServerDouble, start_agent: Callable[..., Agent]
    ) -> None:
        """Self-fencing: the server may have given the job to another agent by now."""
        server.reports_down = True  # heartbeats and reports fail from the start
        job = dataclasses.replace(assignment("job-1", "echo started\nsleep 30\n"), lease_seconds=1)
        server.enqueue(job)
        began = time.monotonic()
        start_agent()
        server.wait(lambda: server.attempted("job-1", "job_finished"), "the job ended by itself")
        assert time.monotonic() - began < BOUND_SECONDS

        server.reconnect()
        server.wait(lambda: server.finished("job-1"), "job-1 delivered")
        last = server.applied["job-1"][-1]
        assert last.outcome == "FAILED"
        assert last.message is not None
        assert "lost contact with the server" in last.message
        assert server.lines("job-1-s0") == ["started"]


class TestHeartbeatSize:
    def test_an_agent_with_more_jobs_than_a_heartbeat_takes_sends_several(
        self, server: ServerDouble, start_agent: Callable[..., Agent]
    ) -> None:
        """The server refuses a heartbeat naming more than MAX_HEARTBEAT_JOBS jobs."""
        agent = start_agent(concurrency=0)  # claims nothing: the test gives it its jobs
        outboxes = [
            JobOutbox(assignment(f"job-{index}", "true"), lambda *_: None) for index in range(600)
        ]
        with agent._lock:
            agent._outboxes.update((outbox.job_run_id, outbox) for outbox in outboxes)

        def every_job_renewed() -> bool:
            with server._changed:
                named = {job for beat in server.heartbeats for job in beat}
            return len(named) == len(outboxes)

        deadline = time.monotonic() + BOUND_SECONDS
        while not every_job_renewed():
            assert time.monotonic() < deadline, "not every job was named in a heartbeat"
            time.sleep(0.05)
        with server._changed:
            assert max(len(beat) for beat in server.heartbeats) <= MAX_HEARTBEAT_JOBS
        for outbox in outboxes:
            outbox.fence()  # delivered: the agent stops at once
