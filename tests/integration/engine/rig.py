"""A test rig for driving the engine directly: no HTTP, no live agent, a clock the test sets.

Pipelines are inserted through the store; runs are started, stopped, retried and reviewed
through `RunEngine`; the test plays the build agent through `Dispatcher.claim/report`, and the
server's sweeps through `Sweeper`. Every job of a rig asks for the rig's own agent pool, so a
claim never takes another test's job. `changes` reads a run's change log back with readable
names (the run, or the identifier of the stage, job or step) instead of IDs.
"""

import json
import secrets
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from sqlalchemy import select

from stageline.engine.dispatcher import Dispatcher, LeasePolicy
from stageline.engine.journal import Actor
from stageline.engine.runs import Reviewer, RunEngine, RunScope
from stageline.engine.scheduler import Executor
from stageline.engine.timeouts import Sweeper
from stageline.schemas.jobs import (
    AgentEvent,
    ClaimRequest,
    EventBatch,
    EventsApplied,
    JobAssignment,
    JobOutcome,
)
from stageline.schemas.runs import RunCreate
from stageline.store.database import Database
from stageline.store.ids import new_id
from stageline.store.queries import changes as change_queries
from stageline.store.queries import identity
from stageline.store.queries import pipelines as pipeline_queries
from stageline.store.queries import runs as run_queries
from stageline.store.tables import JobRun, Pipeline, PipelineRun, StageRun, StatusChange, StepRun
from tests.factories import definition, shell_job

T0 = 1_767_225_600_000
"""2026-01-01T00:00:00Z: where every rig's clock starts."""
USER = "Ada Developer"
"""Who starts runs (the executor's display name, and so the actor of start_run)."""
CHECKPOINT_TASK = "official_devcloud_checkpoint"


class FakeClock:
    """The engine's clock (`Callable[[], int]`, epoch ms), set by the test."""

    def __init__(self, now: int = T0) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now

    def advance(self, ms: int) -> int:
        self.now += ms
        return self.now


class Change(NamedTuple):
    """A row of the change log with the entity's readable name instead of its ID."""

    entity: str
    name: str
    before: str | None
    after: str
    actor_kind: str
    actor: str
    at: int
    seq: int

    @property
    def hop(self) -> tuple[str, str, str | None, str]:
        return self.entity, self.name, self.before, self.after


Hop = tuple[str, str, str | None, str]


def hops(changes: list[Change]) -> list[Hop]:
    return [change.hop for change in changes]


@dataclass
class Snapshot:
    """A run's rows as they were committed, by identifier."""

    run: PipelineRun
    stages: dict[str, StageRun]
    jobs: dict[str, JobRun]
    steps: dict[str, StepRun]

    def status(self, name: str) -> str:
        if name == "run":
            return self.run.status
        for rows in (self.stages, self.jobs, self.steps):
            if name in rows:
                return rows[name].status
        raise KeyError(name)

    def statuses(self) -> dict[str, str]:
        found = {"run": self.run.status}
        for rows in (self.stages, self.jobs, self.steps):
            found |= {name: row.status for name, row in rows.items()}
        return found


def checkpoint_job(identifier: str, **inputs: Any) -> dict[str, Any]:
    """A manual review job: its one step is a checkpoint with these inputs."""
    return {
        "identifier": identifier,
        "name": identifier,
        "steps": [
            {
                "name": f"{identifier}_review",
                "task": CHECKPOINT_TASK,
                "identifier": f"STEP_{identifier}",
                "inputs": [{"key": key, "value": value} for key, value in inputs.items()],
            }
        ],
    }


@dataclass
class PlayedClaim:
    """One claim of a job, played by the test: numbers its events from 1, like an agent."""

    rig: "Rig"
    job: JobAssignment
    seq: int = 0

    @property
    def job_run_id(self) -> str:
        return self.job.job_run_id

    def step_id(self, index: int = 0) -> str:
        return self.job.steps[index].step_run_id

    def _next(self, kind: str, **fields: Any) -> AgentEvent:
        self.seq += 1
        return AgentEvent.model_validate({"seq": self.seq, "kind": kind, **fields})

    def started(self) -> AgentEvent:
        return self._next("job_started")

    def step_started(self, index: int = 0) -> AgentEvent:
        return self._next("step_started", step_run_id=self.step_id(index))

    def step_finished(
        self, index: int = 0, outcome: JobOutcome = "COMPLETED", exit_code: int | None = 0
    ) -> AgentEvent:
        return self._next(
            "step_finished", step_run_id=self.step_id(index), outcome=outcome, exit_code=exit_code
        )

    def finished(self, outcome: JobOutcome = "COMPLETED", message: str | None = None) -> AgentEvent:
        return self._next("job_finished", outcome=outcome, message=message)

    def whole_life(self, outcome: JobOutcome = "COMPLETED") -> list[AgentEvent]:
        """A one-step job from start to `outcome`."""
        exit_code = 0 if outcome == "COMPLETED" else 1
        return [
            self.started(),
            self.step_started(),
            self.step_finished(outcome=outcome, exit_code=exit_code),
            self.finished(outcome),
        ]

    def send(self, *events: AgentEvent, dispatch_id: str | None = None) -> EventsApplied:
        batch = EventBatch(dispatch_id=dispatch_id or self.job.dispatch_id, events=list(events))
        return self.rig.dispatcher.report(self.job_run_id, batch)


@dataclass
class Rig:
    db: Database
    clock: FakeClock
    policy: LeasePolicy = field(default_factory=LeasePolicy)
    project_id: str = ""
    pool: str = field(default_factory=lambda: f"pool-{secrets.token_hex(6)}")
    executor: Executor = field(default_factory=lambda: Executor(new_id(), USER))
    runs: dict[str, str] = field(default_factory=dict)
    """run_id -> pipeline_id of the runs this rig started."""

    def __post_init__(self) -> None:
        self.engine = RunEngine(self.db, clock=self.clock)
        self.dispatcher = Dispatcher(self.engine, self.policy)
        self.sweeper = Sweeper(self.engine, self.policy)
        if not self.project_id:
            with self.db.writer() as session:
                name = f"engine-{secrets.token_hex(6)}"
                self.project_id = identity.insert_project(session, name=name, now=T0).id

    # -- pipelines and commands ---------------------------------------------------------------

    def job(self, identifier: str, script: str = "true", **extra: Any) -> dict[str, Any]:
        """A one-step shell job that only this rig's agents claim."""
        return shell_job(identifier, script, resource=json.dumps({"pool": self.pool}), **extra)

    def pipeline(
        self, *stages: dict[str, Any], concurrency_control: dict[str, Any] | None = None
    ) -> str:
        pipeline_id = new_id()
        with self.db.writer() as session:
            pipeline_queries.insert_pipeline(
                session,
                Pipeline(
                    id=pipeline_id,
                    project_id=self.project_id,
                    name=f"p-{pipeline_id[:8]}",
                    description="",
                    is_publish=False,
                    manifest_version="3.0",
                    definition=definition(*stages),
                    sources=[],
                    variables=[],
                    schedules=[],
                    triggers=[],
                    concurrency_control=concurrency_control,
                    creator_id=self.executor.user_id,
                    updater_id=self.executor.user_id,
                    created_at=T0,
                    updated_at=T0,
                    run_counter=0,
                    deleted=False,
                ),
            )
        return pipeline_id

    def start(self, pipeline_id: str, **request: Any) -> str:
        run_id = self.engine.start_run(
            project_id=self.project_id,
            pipeline_id=pipeline_id,
            request=RunCreate.model_validate(request),
            executor=self.executor,
        )
        self.runs[run_id] = pipeline_id
        return run_id

    def scope(self, run_id: str) -> RunScope:
        return RunScope(self.project_id, self.runs[run_id], run_id)

    def stop(self, run_id: str, user: str = USER) -> None:
        self.engine.stop_run(self.scope(run_id), actor=Actor.user(user))

    def retry(self, run_id: str, job_run_ids: list[str] | None = None, user: str = USER) -> None:
        self.engine.retry_run(self.scope(run_id), job_run_ids=job_run_ids, actor=Actor.user(user))

    def review(
        self,
        run_id: str,
        step: str,
        *,
        approve: bool,
        reviewer: Reviewer,
        job: str | None = None,
        comment: str | None = None,
    ) -> None:
        """Decide the review step `step` (an identifier) of job `job` (None: a stage entry)."""
        snap = self.snapshot(run_id)
        self.engine.decide_review(
            self.scope(run_id),
            step_run_id=snap.steps[step].id,
            job_run_id=snap.jobs[job].id if job else None,
            reviewer=reviewer,
            approve=approve,
            comment=comment,
        )

    def delete(self, pipeline_id: str, user: str = USER) -> None:
        self.engine.delete_pipeline(
            project_id=self.project_id, pipeline_id=pipeline_id, actor=Actor.user(user)
        )

    # -- the agent's side ---------------------------------------------------------------------

    def claim(self, agent: str = "builder-1", instance: str = "host-a") -> PlayedClaim:
        job = self.try_claim(agent, instance)
        assert job is not None, f"no job waits in pool {self.pool}"
        return PlayedClaim(self, job)

    def try_claim(self, agent: str = "builder-1", instance: str = "host-a") -> JobAssignment | None:
        request = ClaimRequest(agent=instance, pool=self.pool, wait_seconds=0)
        return self.dispatcher.claim(request, agent_name=agent)

    # -- reading back -------------------------------------------------------------------------

    def snapshot(self, run_id: str) -> Snapshot:
        with self.db.reader() as session:
            run = run_queries.read_run(session, run_id=run_id)
            assert run is not None
            return Snapshot(
                run=run,
                stages={s.identifier: s for s in run_queries.list_stages(session, run_id=run_id)},
                jobs={j.identifier: j for j in run_queries.list_jobs(session, run_id=run_id)},
                steps={s.identifier: s for s in run_queries.list_steps(session, run_id=run_id)},
            )

    def changes(self, run_id: str, since: int = 0) -> list[Change]:
        """The run's change log after seq `since`, oldest first."""
        snap = self.snapshot(run_id)
        names = {run_id: "run"}
        rows: list[tuple[str, StageRun | JobRun | StepRun]] = [
            *snap.stages.items(),
            *snap.jobs.items(),
            *snap.steps.items(),
        ]
        names |= {row.id: identifier for identifier, row in rows}
        with self.db.reader() as session:
            found = change_queries.list_run_changes(session, run_id=run_id, after_seq=since)
        return [_change(change, names[change.entity_id]) for change in found]

    def mark(self) -> int:
        """The latest seq of the change log: `changes(run, since=mark)` is what came after."""
        with self.db.connection() as connection:
            return change_queries.latest_seq(connection)

    def pipeline_changes(self, pipeline_id: str) -> list[Change]:
        """Changes of the pipeline itself (its deletion), which belong to no run."""
        query = (
            select(StatusChange)
            .where(StatusChange.pipeline_id == pipeline_id, StatusChange.entity == "pipeline")
            .order_by(StatusChange.seq)
        )
        with self.db.reader() as session:
            return [_change(row, pipeline_id) for row in session.scalars(query)]


def _change(row: StatusChange, name: str) -> Change:
    return Change(
        row.entity,
        name,
        row.from_status,
        row.to_status,
        row.actor_kind,
        row.actor,
        row.at,
        row.seq,
    )


def per_entity(changes: list[Change]) -> dict[str, list[tuple[str | None, str]]]:
    """Each entity's hops, in order: for commands that touch many entities, where the order
    of each entity's own hops is what matters."""
    found: dict[str, list[tuple[str | None, str]]] = {}
    for change in changes:
        found.setdefault(change.name, []).append((change.before, change.after))
    return found
