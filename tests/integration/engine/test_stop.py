"""RunEngine.stop_run: cancel what has not ended, let clean-up jobs run first, refuse late news.

Stopping is the user's change, journalled with their name at the stop's time; whatever the
agent reports about a stopped job afterwards is refused by the door and leaves no trace.
"""

import pytest

from stageline.domain.errors import Conflict
from stageline.store.tables import JobRun, StageRun, StepRun
from tests.factories import stage

from .rig import T0, Rig, Snapshot, hops, per_entity

STOPPER = "Stella Stopper"


def times(snap: Snapshot) -> dict[str, tuple[int | None, int | None]]:
    rows: list[tuple[str, StageRun | JobRun | StepRun]] = [
        *snap.stages.items(),
        *snap.jobs.items(),
        *snap.steps.items(),
    ]
    return {name: (row.start_time, row.end_time) for name, row in rows}


def test_a_stop_cancels_every_unfinished_stage_job_and_step_at_once(rig: Rig) -> None:
    run_id = rig.start(
        rig.pipeline(stage("BUILD", rig.job("COMPILE")), stage("TEST", rig.job("UNIT")))
    )
    claim = rig.claim()
    rig.clock.advance(1_000)
    claim.send(claim.started(), claim.step_started())
    rig.clock.advance(1_000)
    mark = rig.mark()

    rig.stop(run_id, user=STOPPER)

    snap = rig.snapshot(run_id)
    assert set(snap.statuses().values()) == {"CANCELED"}
    assert (snap.run.end_time, snap.run.stop_requested_at) == (T0 + 2_000, T0 + 2_000)
    assert snap.run.message == f"canceled by {STOPPER}"
    assert snap.jobs["COMPILE"].message == f"canceled by {STOPPER}"
    assert snap.jobs["COMPILE"].claimed_by == "builder-1/host-a"  # late log lines still land
    assert times(snap) == {
        "BUILD": (T0 + 1_000, T0 + 2_000),
        "COMPILE": (T0 + 1_000, T0 + 2_000),
        "STEP_COMPILE": (T0 + 1_000, T0 + 2_000),
        # never started: an end, no start
        "TEST": (None, T0 + 2_000),
        "UNIT": (None, T0 + 2_000),
        "STEP_UNIT": (None, T0 + 2_000),
    }
    changes = rig.changes(run_id, since=mark)
    assert per_entity(changes) == {
        "COMPILE": [("RUNNING", "CANCELED")],
        "STEP_COMPILE": [("RUNNING", "CANCELED")],
        "UNIT": [("INIT", "CANCELED")],
        "STEP_UNIT": [("INIT", "CANCELED")],
        "BUILD": [("RUNNING", "CANCELED")],
        "TEST": [("INIT", "CANCELED")],
        "run": [("RUNNING", "CANCELED")],
    }
    assert changes[-1].hop == ("run", "run", "RUNNING", "CANCELED")
    assert {(c.actor_kind, c.actor, c.at) for c in changes} == {("user", STOPPER, T0 + 2_000)}
    assert claim.send(claim.step_finished()).cancel  # the agent learns to kill it


def test_clean_up_jobs_still_run_after_a_stop_and_the_run_ends_canceled_after_them(
    rig: Rig,
) -> None:
    run_id = rig.start(
        rig.pipeline(
            stage(
                "BUILD",
                rig.job("COMPILE"),
                rig.job("TIDY", depends_on=["COMPILE"], condition="${{ always() }}"),
                rig.job("ON_STOP", depends_on=["COMPILE"], condition="${{ cancelled() }}"),
                rig.job("PACKAGE", depends_on=["COMPILE"]),
            ),
            stage("DEPLOY", rig.job("SHIP", condition="${{ always() }}")),
        )
    )
    compile_claim = rig.claim()
    compile_claim.send(compile_claim.started())
    rig.clock.advance(1_000)
    mark = rig.mark()

    rig.stop(run_id, user=STOPPER)

    snap = rig.snapshot(run_id)
    assert snap.statuses() == {
        "run": "RUNNING",  # until its clean-up jobs have run
        "BUILD": "RUNNING",
        "COMPILE": "CANCELED",
        "STEP_COMPILE": "CANCELED",
        "TIDY": "QUEUED",
        "STEP_TIDY": "QUEUED",
        "ON_STOP": "QUEUED",
        "STEP_ON_STOP": "QUEUED",
        "PACKAGE": "CANCELED",
        "STEP_PACKAGE": "CANCELED",
        # a stage that had not started does not start for its always() job
        "DEPLOY": "CANCELED",
        "SHIP": "CANCELED",
        "STEP_SHIP": "CANCELED",
    }
    assert snap.run.stop_requested_at == T0 + 1_000
    assert snap.run.end_time is None
    changes = rig.changes(run_id, since=mark)
    assert per_entity(changes) == {
        "COMPILE": [("RUNNING", "CANCELED")],
        "STEP_COMPILE": [("QUEUED", "CANCELED")],
        "PACKAGE": [("INIT", "CANCELED")],
        "STEP_PACKAGE": [("INIT", "CANCELED")],
        "SHIP": [("INIT", "CANCELED")],
        "STEP_SHIP": [("INIT", "CANCELED")],
        "DEPLOY": [("INIT", "CANCELED")],
        "TIDY": [("INIT", "QUEUED")],
        "STEP_TIDY": [("INIT", "QUEUED")],
        "ON_STOP": [("INIT", "QUEUED")],
        "STEP_ON_STOP": [("INIT", "QUEUED")],
    }
    assert {(c.actor_kind, c.actor, c.at) for c in changes} == {("user", STOPPER, T0 + 1_000)}

    rig.clock.advance(1_000)
    first, second = rig.claim(), rig.claim()
    assert {first.job.name, second.job.name} == {"TIDY", "ON_STOP"}
    first.send(*first.whole_life())
    assert rig.snapshot(run_id).run.status == "RUNNING"
    mark = rig.mark()
    second.send(*second.whole_life())

    snap = rig.snapshot(run_id)
    assert [snap.status(n) for n in ("run", "BUILD", "TIDY", "ON_STOP")] == [
        "CANCELED",
        "CANCELED",
        "COMPLETED",
        "COMPLETED",
    ]
    assert snap.run.end_time == T0 + 2_000
    assert hops(rig.changes(run_id, since=mark))[-2:] == [
        ("stage", "BUILD", "RUNNING", "CANCELED"),
        ("run", "run", "RUNNING", "CANCELED"),
    ]


def test_a_late_job_finished_after_a_stop_is_refused_and_writes_and_journals_nothing(
    rig: Rig,
) -> None:
    run_id = rig.start(rig.pipeline(stage("BUILD", rig.job("COMPILE"))))
    claim = rig.claim()
    claim.send(claim.started(), claim.step_started())
    rig.clock.advance(1_000)
    rig.stop(run_id, user=STOPPER)
    before = rig.snapshot(run_id)
    rig.clock.advance(1_000)
    mark = rig.mark()

    answer = claim.send(
        claim.step_finished(outcome="FAILED", exit_code=137),
        claim.finished("FAILED", message="killed"),
    )

    assert (answer.applied, answer.cancel) == (4, True)
    after = rig.snapshot(run_id)
    assert after.statuses() == before.statuses()
    assert set(after.statuses().values()) == {"CANCELED"}
    assert times(after) == times(before)
    assert after.run.end_time == before.run.end_time == T0 + 1_000
    job, step = after.jobs["COMPILE"], after.steps["STEP_COMPILE"]
    assert job.message == f"canceled by {STOPPER}"  # not the agent's "killed"
    assert (step.exit_code, step.message) == (None, None)
    assert rig.changes(run_id, since=mark) == []


def test_an_ended_run_cannot_be_stopped(rig: Rig) -> None:
    run_id = rig.start(rig.pipeline(stage("BUILD", rig.job("COMPILE"))))
    rig.stop(run_id)
    mark = rig.mark()

    with pytest.raises(Conflict):
        rig.stop(run_id, user=STOPPER)

    assert rig.changes(run_id, since=mark) == []


def test_a_suspended_run_is_stopped_without_ever_starting(rig: Rig) -> None:
    pipeline_id = rig.pipeline(
        stage("BUILD", rig.job("COMPILE")),
        concurrency_control={"enable": True, "concurrency_number": 1, "exceed_action": "QUEUE"},
    )
    rig.start(pipeline_id)
    held = rig.start(pipeline_id)
    rig.clock.advance(1_000)
    mark = rig.mark()

    rig.stop(held, user=STOPPER)

    snap = rig.snapshot(held)
    assert snap.statuses() == {
        "run": "CANCELED",
        "BUILD": "CANCELED",
        "COMPILE": "CANCELED",
        "STEP_COMPILE": "CANCELED",
    }
    assert times(snap) == {
        "BUILD": (None, T0 + 1_000),
        "COMPILE": (None, T0 + 1_000),
        "STEP_COMPILE": (None, T0 + 1_000),
    }
    assert hops(rig.changes(held, since=mark)) == [
        ("job", "COMPILE", "SUSPEND", "CANCELED"),
        ("step", "STEP_COMPILE", "INIT", "CANCELED"),
        ("stage", "BUILD", "SUSPEND", "CANCELED"),
        ("run", "run", "SUSPEND", "CANCELED"),
    ]
