"""RunEngine.retry_run: failed work runs again in the same run, all of it or the jobs named.

A retry puts the chosen jobs, their steps, the jobs they had kept from running and the stages
from the first restarted one on back to INIT (RETRY edges: their times and claims cleared),
runs the run again (FAILED -> RUNNING) and lets the usual progress queue what is ready.
"""

import pytest

from stageline.domain.errors import Conflict, InvalidInput
from tests.factories import stage

from .rig import T0, Rig, hops
from .test_start import ABORT_ONE, QUEUE_ONE

RETRIER = "Rita Retrier"


def failed_run(rig: Rig, concurrency_control: dict[str, object] | None = None) -> str:
    """BUILD: COMPILE fails, LINT passes, PACKAGE (after COMPILE) is skipped; TEST never starts."""
    run_id = rig.start(
        rig.pipeline(
            stage(
                "BUILD",
                rig.job("COMPILE"),
                rig.job("LINT"),
                rig.job("PACKAGE", depends_on=["COMPILE"]),
            ),
            stage("TEST", rig.job("UNIT")),
            concurrency_control=concurrency_control,
        )
    )
    for _ in range(2):
        claim = rig.claim()
        claim.send(*claim.whole_life("FAILED" if claim.job.name == "COMPILE" else "COMPLETED"))
    snap = rig.snapshot(run_id)
    assert [snap.status(n) for n in ("run", "BUILD", "COMPILE", "LINT", "PACKAGE", "TEST")] == [
        "FAILED",
        "FAILED",
        "FAILED",
        "COMPLETED",
        "SKIPPED",
        "INIT",
    ]
    return run_id


def test_a_retry_of_all_failed_work_restarts_it_in_the_same_run(rig: Rig) -> None:
    run_id = failed_run(rig)
    first = rig.snapshot(run_id)
    rig.clock.advance(60_000)
    mark = rig.mark()

    rig.retry(run_id, user=RETRIER)

    snap = rig.snapshot(run_id)
    assert snap.statuses() == {
        "run": "RUNNING",
        "BUILD": "RUNNING",
        "COMPILE": "QUEUED",
        "STEP_COMPILE": "QUEUED",
        "LINT": "COMPLETED",  # kept
        "STEP_LINT": "COMPLETED",
        "PACKAGE": "INIT",  # reset: the retried COMPILE had kept it from running
        "STEP_PACKAGE": "INIT",
        "TEST": "INIT",
        "UNIT": "INIT",
        "STEP_UNIT": "INIT",
    }
    assert (snap.run.run_number, snap.run.end_time) == (first.run.run_number, None)
    job = snap.jobs["COMPILE"]
    assert (job.start_time, job.end_time, job.message) == (None, None, None)
    assert (job.claimed_by, job.dispatch_id, job.dispatch_count) == (None, None, 0)
    assert job.queued_at == T0 + 60_000
    step = snap.steps["STEP_COMPILE"]
    assert (step.start_time, step.end_time, step.exit_code) == (None, None, None)
    assert snap.jobs["LINT"].end_time == first.jobs["LINT"].end_time
    # the stage restarts (its old times are gone) and shows RUNNING: LINT already completed
    assert (snap.stages["BUILD"].start_time, snap.stages["BUILD"].end_time) == (T0 + 60_000, None)
    changes = rig.changes(run_id, since=mark)
    assert hops(changes) == [
        ("job", "COMPILE", "FAILED", "INIT"),
        ("step", "STEP_COMPILE", "FAILED", "INIT"),
        ("job", "PACKAGE", "SKIPPED", "INIT"),
        ("step", "STEP_PACKAGE", "SKIPPED", "INIT"),
        ("stage", "BUILD", "FAILED", "INIT"),
        ("run", "run", "FAILED", "RUNNING"),
        ("stage", "BUILD", "INIT", "QUEUED"),
        ("stage", "BUILD", "QUEUED", "RUNNING"),
        ("job", "COMPILE", "INIT", "QUEUED"),
        ("step", "STEP_COMPILE", "INIT", "QUEUED"),
    ]
    assert {(c.actor_kind, c.actor, c.at) for c in changes} == {("user", RETRIER, T0 + 60_000)}

    for expected in ("COMPILE", "PACKAGE", "UNIT"):
        claim = rig.claim()
        assert claim.job.name == expected
        claim.send(*claim.whole_life())
    snap = rig.snapshot(run_id)
    assert set(snap.statuses().values()) == {"COMPLETED"}
    assert snap.jobs["COMPILE"].dispatch_count == 1


def test_a_retry_of_named_jobs_leaves_other_failed_jobs_failed(rig: Rig) -> None:
    run_id = rig.start(rig.pipeline(stage("BUILD", rig.job("COMPILE"), rig.job("LINT"))))
    for _ in range(2):
        claim = rig.claim()
        claim.send(*claim.whole_life("FAILED"))
    compile_id = rig.snapshot(run_id).jobs["COMPILE"].id
    rig.clock.advance(1_000)
    mark = rig.mark()

    rig.retry(run_id, [compile_id], user=RETRIER)

    snap = rig.snapshot(run_id)
    assert [snap.status(n) for n in ("run", "BUILD", "COMPILE", "LINT", "STEP_LINT")] == [
        "RUNNING",
        "RUNNING",
        "QUEUED",
        "FAILED",
        "FAILED",
    ]
    changes = rig.changes(run_id, since=mark)
    assert hops(changes) == [
        ("job", "COMPILE", "FAILED", "INIT"),
        ("step", "STEP_COMPILE", "FAILED", "INIT"),
        ("stage", "BUILD", "FAILED", "INIT"),
        ("run", "run", "FAILED", "RUNNING"),
        ("stage", "BUILD", "INIT", "QUEUED"),
        ("stage", "BUILD", "QUEUED", "RUNNING"),
        ("job", "COMPILE", "INIT", "QUEUED"),
        ("step", "STEP_COMPILE", "INIT", "QUEUED"),
    ]
    assert {(c.actor_kind, c.actor, c.at) for c in changes} == {("user", RETRIER, T0 + 1_000)}

    claim = rig.claim()
    claim.send(*claim.whole_life())
    snap = rig.snapshot(run_id)
    assert [snap.status(n) for n in ("run", "BUILD", "COMPILE", "LINT")] == [
        "FAILED",  # LINT still failed
        "FAILED",
        "COMPLETED",
        "FAILED",
    ]


def test_a_canceled_run_is_retried_from_its_canceled_jobs(rig: Rig) -> None:
    run_id = rig.start(
        rig.pipeline(stage("BUILD", rig.job("COMPILE")), stage("TEST", rig.job("UNIT")))
    )
    rig.stop(run_id)
    rig.clock.advance(1_000)
    mark = rig.mark()

    rig.retry(run_id, user=RETRIER)

    snap = rig.snapshot(run_id)
    assert [snap.status(n) for n in ("run", "BUILD", "COMPILE", "TEST", "UNIT")] == [
        "RUNNING",
        "QUEUED",
        "QUEUED",
        "INIT",
        "INIT",
    ]
    assert (snap.run.stop_requested_at, snap.run.message, snap.run.end_time) == (None, None, None)
    changes = rig.changes(run_id, since=mark)
    # the jobs of both stages were canceled, so both are retried (in pipeline order)
    assert hops(changes) == [
        ("job", "COMPILE", "CANCELED", "INIT"),
        ("step", "STEP_COMPILE", "CANCELED", "INIT"),
        ("job", "UNIT", "CANCELED", "INIT"),
        ("step", "STEP_UNIT", "CANCELED", "INIT"),
        ("stage", "BUILD", "CANCELED", "INIT"),
        ("stage", "TEST", "CANCELED", "INIT"),
        ("run", "run", "CANCELED", "RUNNING"),
        ("stage", "BUILD", "INIT", "QUEUED"),
        ("job", "COMPILE", "INIT", "QUEUED"),
        ("step", "STEP_COMPILE", "INIT", "QUEUED"),
    ]


def test_refused_retries_write_nothing(rig: Rig) -> None:
    run_id = failed_run(rig)
    lint_id = rig.snapshot(run_id).jobs["LINT"].id
    mark = rig.mark()

    with pytest.raises(InvalidInput):
        rig.retry(run_id, [lint_id])  # it completed
    assert rig.changes(run_id, since=mark) == []
    assert rig.snapshot(run_id).run.status == "FAILED"

    rig.retry(run_id)
    mark = rig.mark()
    with pytest.raises(Conflict):
        rig.retry(run_id)  # it runs
    assert rig.changes(run_id, since=mark) == []


def test_a_retry_over_the_concurrency_limit_waits_suspended_and_runs_when_a_slot_frees(
    rig: Rig,
) -> None:
    """A retried run counts against the limit as a new run does: the work it restarts is held
    back (its completed work kept), and it starts once the run in its slot ends."""
    retried = failed_run(rig, QUEUE_ONE)
    other = rig.start(rig.runs[retried])
    mark = rig.mark()

    rig.retry(retried, user=RETRIER)

    assert rig.snapshot(retried).statuses() == {
        "run": "SUSPEND",
        "BUILD": "SUSPEND",
        "COMPILE": "SUSPEND",
        "STEP_COMPILE": "INIT",
        "LINT": "COMPLETED",
        "STEP_LINT": "COMPLETED",
        "PACKAGE": "SUSPEND",
        "STEP_PACKAGE": "INIT",
        "TEST": "SUSPEND",
        "UNIT": "SUSPEND",
        "STEP_UNIT": "INIT",
    }
    held = [hop for hop in hops(rig.changes(retried, since=mark)) if hop[3] != "INIT"]
    assert held[0] == ("run", "run", "FAILED", "SUSPEND")
    assert all(to == "SUSPEND" for *_, to in held)
    claimed = []  # the other run's jobs; the retried run's stay held
    while (job := rig.try_claim()) is not None:
        claimed.append(job.run_id)
    assert claimed
    assert set(claimed) == {other}

    rig.stop(other)

    assert rig.snapshot(retried).statuses() == {
        "run": "RUNNING",
        "BUILD": "RUNNING",
        "COMPILE": "QUEUED",
        "STEP_COMPILE": "QUEUED",
        "LINT": "COMPLETED",
        "STEP_LINT": "COMPLETED",
        "PACKAGE": "INIT",
        "STEP_PACKAGE": "INIT",
        "TEST": "INIT",
        "UNIT": "INIT",
        "STEP_UNIT": "INIT",
    }


def test_a_retry_over_a_limit_that_drops_runs_is_refused_and_changes_nothing(rig: Rig) -> None:
    retried = failed_run(rig, ABORT_ONE)
    other = rig.start(rig.runs[retried])
    before = rig.snapshot(retried).statuses()
    mark = rig.mark()

    with pytest.raises(Conflict, match=r"concurrency limit; run #1 was not retried"):
        rig.retry(retried, user=RETRIER)

    assert rig.snapshot(retried).statuses() == before
    assert rig.changes(retried, since=mark) == []
    rig.stop(other)
    rig.retry(retried, user=RETRIER)  # a slot is free again
    assert rig.snapshot(retried).run.status == "RUNNING"
