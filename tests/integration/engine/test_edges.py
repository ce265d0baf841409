"""Every edge of the domain's tables, driven through the door on a real run of each database.

For each (from, to) edge of STAGE_EDGES, STAGE_RETRY_EDGES and STAGE_REDISPATCH_EDGES (for a
stage, a job and a step alike) and of RUN_EDGES and RUN_RETRY_EDGES, the test locks the run in
a writer transaction, sets the item to `from` (tests may), calls `apply` / `apply_run` with `to`
and the edge's intent, and checks the item's new status and times, its claim and review fields
where the intent clears them, and that exactly one from -> to change was journalled and appended
to the change log. The transaction is then rolled back, so one run serves every edge.
The creation edges (from no status) go through `admit`.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from stageline.domain.statuses import (
    RUN_TERMINAL,
    STAGE_ENDINGS,
    STAGE_TERMINAL,
    RunStatus,
    StageStatus,
)
from stageline.domain.transitions import (
    RUN_EDGES,
    RUN_RETRY_EDGES,
    STAGE_EDGES,
    STAGE_REDISPATCH_EDGES,
    STAGE_RETRY_EDGES,
    Intent,
)
from stageline.engine.journal import Actor, Journal
from stageline.engine.state import RunState
from stageline.engine.transitions import admit, apply, apply_run
from stageline.store.database import Database
from stageline.store.queries import changes as change_queries
from stageline.store.queries import runs as run_queries
from stageline.store.tables import JobRun, PipelineRun, StageRun, StepRun
from tests.factories import stage

from .rig import T0, FakeClock, Rig

S = StageStatus
R = RunStatus
NOW = T0 + 3_600_000
OLD_START, OLD_END, OLD_DEADLINE = T0 + 1, T0 + 2, T0 + 3
ACTOR = Actor.user("edge tester")
KINDS = ("stage", "job", "step")
Work = StageRun | JobRun | StepRun
Row = Work | PipelineRun


def _cases(tables: dict[Intent, dict[Any, frozenset[Any]]], kinds: tuple[str, ...]) -> list[Any]:
    return [
        pytest.param(kind, intent, before, after, id=f"{kind}-{intent.value}-{before}->{after}")
        for intent, table in tables.items()
        # Sorted: the tables are built from sets, and every test process (one per CPU under
        # `make test`) must collect the same cases in the same order.
        for before, targets in sorted(table.items(), key=lambda edge: str(edge[0]))
        if before is not None
        for after in sorted(targets)
        for kind in kinds
    ]


STAGE_CASES = _cases(
    {
        Intent.PROGRESS: STAGE_EDGES,
        Intent.RETRY: STAGE_RETRY_EDGES,
        Intent.REDISPATCH: STAGE_REDISPATCH_EDGES,
    },
    KINDS,
)
RUN_CASES = _cases({Intent.PROGRESS: RUN_EDGES, Intent.RETRY: RUN_RETRY_EDGES}, ("run",))


@pytest.fixture(scope="module")
def run_id(engine_db: Database) -> str:
    """One started run (its stage, job and step QUEUED) for every edge of the module."""
    rig = Rig(engine_db, FakeClock())
    return rig.start(rig.pipeline(stage("BUILD", rig.job("COMPILE"))))


@contextmanager
def locked_state(db: Database, run_id: str) -> Iterator[RunState]:
    """The run locked in a writer transaction that is always rolled back."""
    with Session(db.engine.execution_options(sqlite_immediate=True)) as session:
        session.begin()
        try:
            run = run_queries.read_run(session, run_id=run_id, for_update=True)
            assert run is not None
            yield RunState(session, run, Journal(now=NOW, actor=ACTOR))
        finally:
            session.rollback()


def item_of(state: RunState, kind: str) -> Work:
    items: dict[str, Work] = {
        "stage": state.stages[0],
        "job": state.jobs[0],
        "step": state.steps[0],
    }
    return items[kind]


def leave_traces(item: Work) -> None:
    """What an earlier attempt leaves behind, for the door to keep or clear."""
    item.start_time, item.end_time = OLD_START, OLD_END
    if isinstance(item, JobRun):
        item.message = "earlier"
        item.claimed_by, item.claimed_at, item.dispatch_id = "old/agent", OLD_START, "d" * 32
        item.dispatch_count, item.lease_expires_at, item.deadline_at = 1, OLD_DEADLINE, OLD_DEADLINE
    if isinstance(item, StepRun):
        item.message, item.exit_code, item.deadline_at = "earlier", 3, OLD_DEADLINE
        item.outputs, item.approvals = [{"key": "k", "value": "v"}], ["someone"]


def committed_status(session: Session, item: Row) -> str:
    """The status as the database now holds it (in this transaction)."""
    session.flush()
    status = session.scalar(select(type(item).status).where(type(item).id == item.id))
    assert status is not None
    return status


def check_journal(state: RunState, entity: str, entity_id: str, before: str, after: str) -> None:
    expected = {
        "entity": entity,
        "entity_id": entity_id,
        "from_status": before,
        "to_status": after,
        "at": NOW,
        "actor_kind": "user",
        "actor": ACTOR.name,
    }
    (row,) = state.journal.rows
    assert {key: row[key] for key in expected} == expected
    mark = change_queries.latest_seq(state.session.connection())
    state.journal.flush(state.session)
    appended = change_queries.list_run_changes(state.session, run_id=state.run.id, after_seq=mark)
    assert [(c.entity, c.entity_id, c.from_status, c.to_status, c.at) for c in appended] == [
        (entity, entity_id, before, after, NOW)
    ]


@pytest.mark.parametrize(("kind", "intent", "before", "after"), STAGE_CASES)
def test_each_stage_job_and_step_edge_through_the_door(
    engine_db: Database, run_id: str, kind: str, intent: Intent, before: S, after: S
) -> None:
    with locked_state(engine_db, run_id) as state:
        item = item_of(state, kind)
        item.status = before
        leave_traces(item)
        if intent is Intent.PROGRESS:
            item.start_time = None  # so that RUNNING shows when it stamps a start

        decision = apply(state, item, after, intent=intent)

        assert (decision.accepted, decision.path) == (True, (after,))
        assert committed_status(state.session, item) == after
        if intent is Intent.PROGRESS:
            check_progress(item, after)
        else:
            check_restart(item, intent)
        check_journal(state, kind, item.id, before, after)


def check_progress(item: Work, after: S) -> None:
    assert item.start_time == (NOW if after is S.RUNNING else None)
    ended = NOW if after in STAGE_ENDINGS else None if after is S.QUEUED else OLD_END
    assert item.end_time == ended
    if isinstance(item, JobRun | StepRun):
        assert item.deadline_at == (None if after in STAGE_TERMINAL else OLD_DEADLINE)
        assert item.message == "earlier"  # no message given: the old one stays
    if isinstance(item, JobRun):
        assert item.lease_expires_at == (None if after in STAGE_TERMINAL else OLD_DEADLINE)
        assert (item.claimed_by, item.dispatch_count) == ("old/agent", 1)  # the claim stays
    if isinstance(item, StepRun):
        assert (item.exit_code, item.outputs) == (3, [{"key": "k", "value": "v"}])


def check_restart(item: Work, intent: Intent) -> None:
    """RETRY clears every trace of the earlier attempt; REDISPATCH keeps a job's first start
    and dispatch count (which caps how often it is taken back)."""
    assert item.end_time is None
    keeps_start = intent is Intent.REDISPATCH and isinstance(item, JobRun)
    assert item.start_time == (OLD_START if keeps_start else None)
    if isinstance(item, JobRun):
        assert (item.message, item.claimed_by, item.claimed_at, item.dispatch_id) == (
            None,
            None,
            None,
            None,
        )
        assert (item.lease_expires_at, item.deadline_at) == (None, None)
        assert item.dispatch_count == (1 if intent is Intent.REDISPATCH else 0)
    if isinstance(item, StepRun):
        assert (item.message, item.exit_code, item.deadline_at) == (None, None, None)
        assert (item.outputs, item.approvals) == ([], [])


@pytest.mark.parametrize(("kind", "intent", "before", "after"), RUN_CASES)
def test_each_run_edge_through_the_door(
    engine_db: Database, run_id: str, kind: str, intent: Intent, before: R, after: R
) -> None:
    with locked_state(engine_db, run_id) as state:
        run = state.run
        run.status, run.end_time, run.updated_at = before, OLD_END, OLD_START

        decision = apply_run(state, after, intent=intent)

        assert (decision.accepted, decision.path) == (True, (after,))
        assert committed_status(state.session, run) == after
        assert run.end_time == (NOW if after in RUN_TERMINAL else None)
        assert run.updated_at == NOW
        check_journal(state, kind, run.id, before, after)


@pytest.mark.parametrize("planned", sorted(s for s in STAGE_EDGES[None] if s is not None))
@pytest.mark.parametrize("admitted", sorted(s for s in RUN_EDGES[None] if s is not None))
def test_each_creation_edge_through_admission(
    engine_db: Database, run_id: str, admitted: R, planned: S
) -> None:
    with locked_state(engine_db, run_id) as state:
        work: list[Work] = [*state.stages, *state.jobs, *state.steps]
        for item in work:
            item.status = planned

        decision = admit(state, admitted)

        assert (decision.accepted, decision.path) == (True, (admitted,))
        assert committed_status(state.session, state.run) == admitted
        (row,) = state.journal.rows
        assert (row["entity"], row["from_status"], row["to_status"]) == ("run", None, admitted)


def test_work_planned_outside_the_creation_edges_is_refused_by_admission(
    engine_db: Database, run_id: str
) -> None:
    with locked_state(engine_db, run_id) as state:  # its work is QUEUED: never planned so
        with pytest.raises(AssertionError, match="cannot be created as QUEUED"):
            admit(state, R.RUNNING)
        assert state.journal.rows == []


def test_every_edge_is_covered() -> None:
    """The parametrization follows the tables, so a new edge is tested as soon as it exists."""
    stage_edges = sum(
        len(targets)
        for table in (STAGE_EDGES, STAGE_RETRY_EDGES, STAGE_REDISPATCH_EDGES)
        # Sorted: the tables are built from sets, and every test process (one per CPU under
        # `make test`) must collect the same cases in the same order.
        for before, targets in sorted(table.items(), key=lambda edge: str(edge[0]))
        if before is not None
    )
    run_edges = sum(
        len(targets)
        for table in (RUN_EDGES, RUN_RETRY_EDGES)
        # Sorted: the tables are built from sets, and every test process (one per CPU under
        # `make test`) must collect the same cases in the same order.
        for before, targets in sorted(table.items(), key=lambda edge: str(edge[0]))
        if before is not None
    )
    assert len(STAGE_CASES) == len(KINDS) * stage_edges
    assert len(RUN_CASES) == run_edges
    assert stage_edges > 0
    assert run_edges > 0


def test_the_edges_left_the_run_as_it_was(engine_db: Database, run_id: str) -> None:
    """Every edge was rolled back: the run and its change log are as its start left them."""
    with engine_db.reader() as session:
        run = run_queries.read_run(session, run_id=run_id)
        assert run is not None
        work: list[Work] = [
            *run_queries.list_stages(session, run_id=run_id),
            *run_queries.list_jobs(session, run_id=run_id),
            *run_queries.list_steps(session, run_id=run_id),
        ]
        assert (run.status, {item.status for item in work}) == ("RUNNING", {"QUEUED"})
        logged = change_queries.list_run_changes(session, run_id=run_id)
        assert [(c.entity, c.to_status) for c in logged] == [
            ("run", "RUNNING"),
            ("stage", "QUEUED"),
            ("job", "QUEUED"),
            ("step", "QUEUED"),
        ]
