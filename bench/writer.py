"""The write load: runs driven stage by stage through the engine, as fast as it will go.

Runs in its own process (`python -m bench.writer`, JSON in, JSON out). It plays both
sides of the seam: it starts runs, claims their jobs from the queue and reports them started
and completed, so every stage goes INIT -> QUEUED -> RUNNING -> COMPLETED through
`engine.transitions` exactly as with a real agent, minus HTTP and the subprocesses.
"""

import json
import sys
import time
from dataclasses import asdict, dataclass

from stageline.engine.dispatcher import Dispatcher, LeasePolicy
from stageline.engine.runs import RunEngine
from stageline.engine.scheduler import Executor
from stageline.schemas.jobs import AgentEvent, ClaimRequest, EventBatch
from stageline.schemas.runs import RunCreate
from stageline.store.database import Database

TRANSITIONS_PER_STAGE = 3  # INIT -> QUEUED -> RUNNING -> COMPLETED


@dataclass
class WriterConfig:
    database_url: str
    project_id: str
    pipeline_ids: list[str]
    user_id: str
    duration_seconds: float
    claimant: str = "bench-writer"


@dataclass
class WriterResult:
    runs_completed: int
    stage_transitions: int
    seconds: float
    transitions_per_s: float


def write_load(config: WriterConfig) -> WriterResult:
    """Start runs and drive their jobs through the agent protocol's engine side (claim, then
    one report with job_started and job_finished), as an agent would, minus HTTP."""
    db = Database(config.database_url)
    engine = RunEngine(db)
    dispatcher = Dispatcher(engine, LeasePolicy())
    claim = ClaimRequest(agent=config.claimant)
    executor = Executor(user_id=config.user_id, display_name="Bench Writer")
    started = time.perf_counter()
    stop_at = started + config.duration_seconds
    transitions = runs = 0
    turn = 0
    while time.perf_counter() < stop_at:
        pipeline_id = config.pipeline_ids[turn % len(config.pipeline_ids)]
        turn += 1
        engine.start_run(
            project_id=config.project_id,
            pipeline_id=pipeline_id,
            request=RunCreate(),
            executor=executor,
        )
        while (job := dispatcher.claim(claim, agent_name="bench")) is not None:
            events = [
                AgentEvent(seq=1, kind="job_started"),
                AgentEvent(seq=2, kind="job_finished", outcome="COMPLETED"),
            ]
            dispatcher.report(
                job.job_run_id, EventBatch(dispatch_id=job.dispatch_id, events=events)
            )
            transitions += TRANSITIONS_PER_STAGE
        runs += 1
    seconds = time.perf_counter() - started
    db.dispose()
    return WriterResult(runs, transitions, seconds, transitions / seconds)


def main() -> None:
    config = WriterConfig(**json.loads(sys.stdin.read()))
    json.dump(asdict(write_load(config)), sys.stdout)


if __name__ == "__main__":
    main()
