"""RunEngine.start_run: creation, admission (RUNNING, SUSPEND, IGNORED) and planning (UNSELECTED).

Each test asserts the committed statuses and the change log the command wrote: its hops in
order, made by the user who started the run, at the fake clock's time.
"""

import pytest

from stageline.domain.errors import RunNotAccepted
from tests.factories import stage

from .rig import T0, USER, Rig, hops

QUEUE_ONE = {"enable": True, "concurrency_number": 1, "exceed_action": "QUEUE"}
ABORT_ONE = {"enable": True, "concurrency_number": 1, "exceed_action": "ABORT"}


def two_stages(rig: Rig, concurrency_control: dict[str, object] | None = None) -> str:
    return rig.pipeline(
        stage("BUILD", rig.job("COMPILE")),
        stage("TEST", rig.job("UNIT")),
        concurrency_control=concurrency_control,
    )


def test_a_started_run_queues_its_first_stage_and_journals_each_hop(rig: Rig) -> None:
    pipeline_id = two_stages(rig)

    run_id = rig.start(pipeline_id)

    snap = rig.snapshot(run_id)
    assert snap.statuses() == {
        "run": "RUNNING",
        "BUILD": "QUEUED",
        "COMPILE": "QUEUED",
        "STEP_COMPILE": "QUEUED",
        "TEST": "INIT",
        "UNIT": "INIT",
        "STEP_UNIT": "INIT",
    }
    assert (snap.run.run_number, snap.run.start_time, snap.run.end_time) == (1, T0, None)
    assert snap.jobs["COMPILE"].queued_at == T0
    assert snap.jobs["COMPILE"].start_time is None
    changes = rig.changes(run_id)
    assert hops(changes) == [
        ("run", "run", None, "RUNNING"),
        ("stage", "BUILD", "INIT", "QUEUED"),
        ("job", "COMPILE", "INIT", "QUEUED"),
        ("step", "STEP_COMPILE", "INIT", "QUEUED"),
    ]
    assert {(c.actor_kind, c.actor, c.at) for c in changes} == {("user", USER, T0)}


def test_over_the_limit_a_queued_run_waits_suspended_and_starts_when_a_slot_frees(
    rig: Rig,
) -> None:
    pipeline_id = two_stages(rig, QUEUE_ONE)
    first = rig.start(pipeline_id)
    rig.clock.advance(1_000)

    second = rig.start(pipeline_id)

    snap = rig.snapshot(second)
    assert snap.statuses() == {
        "run": "SUSPEND",
        "BUILD": "SUSPEND",
        "COMPILE": "SUSPEND",
        "STEP_COMPILE": "INIT",
        "TEST": "SUSPEND",
        "UNIT": "SUSPEND",
        "STEP_UNIT": "INIT",
    }
    assert snap.run.end_time is None
    changes = rig.changes(second)
    assert hops(changes) == [
        ("run", "run", None, "SUSPEND"),
        ("stage", "BUILD", "INIT", "SUSPEND"),
        ("stage", "TEST", "INIT", "SUSPEND"),
        ("job", "COMPILE", "INIT", "SUSPEND"),
        ("job", "UNIT", "INIT", "SUSPEND"),
    ]
    assert {(c.actor_kind, c.actor, c.at) for c in changes} == {("user", USER, T0 + 1_000)}
    assert rig.try_claim() is not None  # the first run's job; the second's stays held
    assert rig.try_claim() is None

    rig.clock.advance(1_000)
    mark = rig.mark()
    rig.stop(first, user="Stopper")

    assert rig.snapshot(first).run.status == "CANCELED"
    assert rig.snapshot(second).statuses() == {
        "run": "RUNNING",
        "BUILD": "QUEUED",
        "COMPILE": "QUEUED",
        "STEP_COMPILE": "QUEUED",
        "TEST": "INIT",
        "UNIT": "INIT",
        "STEP_UNIT": "INIT",
    }
    released = rig.changes(second, since=mark)
    assert hops(released) == [
        ("stage", "BUILD", "SUSPEND", "INIT"),
        ("stage", "TEST", "SUSPEND", "INIT"),
        ("job", "COMPILE", "SUSPEND", "INIT"),
        ("job", "UNIT", "SUSPEND", "INIT"),
        ("run", "run", "SUSPEND", "RUNNING"),
        ("stage", "BUILD", "INIT", "QUEUED"),
        ("job", "COMPILE", "INIT", "QUEUED"),
        ("step", "STEP_COMPILE", "INIT", "QUEUED"),
    ]
    # released by the stop, in its transaction: the stopper's change, at the stop's time
    assert {(c.actor_kind, c.actor, c.at) for c in released} == {("user", "Stopper", T0 + 2_000)}
    assert released[0].seq > max(c.seq for c in rig.changes(first))


def test_over_the_limit_an_aborting_pipeline_records_the_run_ignored_and_refuses_it(
    rig: Rig,
) -> None:
    pipeline_id = two_stages(rig, ABORT_ONE)
    rig.start(pipeline_id)
    rig.clock.advance(1_000)

    with pytest.raises(RunNotAccepted) as refused:
        rig.start(pipeline_id)

    run_id = refused.value.run_id
    rig.runs[run_id] = pipeline_id
    snap = rig.snapshot(run_id)
    assert snap.statuses() == {
        "run": "IGNORED",
        "BUILD": "IGNORED",
        "COMPILE": "IGNORED",
        "STEP_COMPILE": "INIT",
        "TEST": "IGNORED",
        "UNIT": "IGNORED",
        "STEP_UNIT": "INIT",
    }
    assert (snap.run.run_number, snap.run.end_time) == (2, T0 + 1_000)
    changes = rig.changes(run_id)
    assert hops(changes) == [
        ("run", "run", None, "IGNORED"),
        ("stage", "BUILD", "INIT", "IGNORED"),
        ("stage", "TEST", "INIT", "IGNORED"),
        ("job", "COMPILE", "INIT", "IGNORED"),
        ("job", "UNIT", "INIT", "IGNORED"),
    ]
    assert {(c.actor_kind, c.actor, c.at) for c in changes} == {("user", USER, T0 + 1_000)}


def test_work_left_out_by_choose_jobs_and_choose_stages_is_planned_unselected(rig: Rig) -> None:
    pipeline_id = rig.pipeline(
        stage("BUILD", rig.job("COMPILE"), rig.job("LINT")),
        stage("TEST", rig.job("UNIT")),
        stage("DEPLOY", rig.job("SHIP")),
    )

    run_id = rig.start(pipeline_id, choose_stages=["BUILD", "DEPLOY"], choose_jobs=["COMPILE"])

    snap = rig.snapshot(run_id)
    assert snap.statuses() == {
        "run": "RUNNING",
        "BUILD": "QUEUED",  # its UNSELECTED job is no progress: it is as queued as COMPILE
        "COMPILE": "QUEUED",
        "STEP_COMPILE": "QUEUED",
        "LINT": "UNSELECTED",
        "STEP_LINT": "INIT",
        "TEST": "UNSELECTED",  # not chosen
        "UNIT": "UNSELECTED",
        "STEP_UNIT": "INIT",
        "DEPLOY": "UNSELECTED",  # chosen, but none of its jobs is
        "SHIP": "UNSELECTED",
        "STEP_SHIP": "INIT",
    }
    assert [snap.jobs[j].is_select for j in ("COMPILE", "LINT", "UNIT", "SHIP")] == [
        True,
        False,
        False,
        False,
    ]
    # planning is creation, not a change: only the run's admission and started work show
    assert hops(rig.changes(run_id)) == [
        ("run", "run", None, "RUNNING"),
        ("stage", "BUILD", "INIT", "QUEUED"),
        ("job", "COMPILE", "INIT", "QUEUED"),
        ("step", "STEP_COMPILE", "INIT", "QUEUED"),
    ]

    rig.clock.advance(5_000)
    claim = rig.claim()
    claim.send(*claim.whole_life())

    snap = rig.snapshot(run_id)
    assert (snap.run.status, snap.stages["BUILD"].status) == ("COMPLETED", "COMPLETED")
    assert snap.run.end_time == T0 + 5_000
    assert [snap.status(name) for name in ("LINT", "TEST", "UNIT", "DEPLOY", "SHIP")] == [
        "UNSELECTED"
    ] * 5


def test_a_later_stage_with_an_unselected_job_waits_for_the_stages_before_it(rig: Rig) -> None:
    pipeline_id = rig.pipeline(
        stage("BUILD", rig.job("COMPILE")),
        stage("TEST", rig.job("UNIT"), rig.job("E2E")),
    )

    run_id = rig.start(pipeline_id, choose_jobs=["COMPILE", "UNIT"])

    snap = rig.snapshot(run_id)
    assert [snap.status(name) for name in ("BUILD", "TEST", "UNIT", "E2E")] == [
        "QUEUED",
        "INIT",
        "INIT",
        "UNSELECTED",
    ]
    claim = rig.claim()
    assert claim.job.name == "COMPILE"
    assert rig.try_claim() is None

    mark = rig.mark()
    claim.send(*claim.whole_life())

    snap = rig.snapshot(run_id)
    assert [snap.status(name) for name in ("BUILD", "TEST", "UNIT", "E2E")] == [
        "COMPLETED",
        "QUEUED",
        "QUEUED",
        "UNSELECTED",
    ]
    assert hops(rig.changes(run_id, since=mark))[-4:] == [
        ("stage", "BUILD", "QUEUED", "COMPLETED"),
        ("stage", "TEST", "INIT", "QUEUED"),
        ("job", "UNIT", "INIT", "QUEUED"),
        ("step", "STEP_UNIT", "INIT", "QUEUED"),
    ]


def test_a_suspended_run_with_an_unselected_job_stays_suspended(rig: Rig) -> None:
    pipeline_id = rig.pipeline(
        stage("BUILD", rig.job("COMPILE"), rig.job("LINT")),
        concurrency_control=QUEUE_ONE,
    )
    rig.start(pipeline_id, choose_jobs=["COMPILE"])

    held = rig.start(pipeline_id, choose_jobs=["COMPILE"])

    snap = rig.snapshot(held)
    assert [snap.status(name) for name in ("run", "BUILD", "COMPILE", "LINT")] == [
        "SUSPEND",
        "SUSPEND",
        "SUSPEND",
        "UNSELECTED",
    ]
    assert hops(rig.changes(held)) == [
        ("run", "run", None, "SUSPEND"),
        ("stage", "BUILD", "INIT", "SUSPEND"),
        ("job", "COMPILE", "INIT", "SUSPEND"),
    ]
