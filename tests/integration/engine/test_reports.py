"""Dispatcher.claim and Dispatcher.report, with the test playing the build agent.

A claim changes no status (the job stays QUEUED until its agent says it started) and so journals
nothing; reports are journalled as made by the claiming agent, at the time they arrive. Events
are applied once each and in order: resends are dropped, a gap stops the batch where it is.
"""

import pytest

from stageline.domain.errors import StaleDispatch
from stageline.schemas.jobs import Heartbeat
from tests.factories import stage

from .rig import T0, Rig, hops

AGENT = "builder-1/host-a"
"""How a claim by agent identity builder-1 from instance host-a is recorded and journalled."""


def one_job(rig: Rig) -> str:
    return rig.pipeline(stage("BUILD", rig.job("COMPILE")), stage("TEST", rig.job("UNIT")))


def test_a_claim_leases_the_oldest_queued_job_and_changes_no_status(rig: Rig) -> None:
    run_id = rig.start(one_job(rig))
    rig.clock.advance(1_000)
    mark = rig.mark()

    claim = rig.claim()

    assert claim.job.name == "COMPILE"
    assert claim.job.run_id == run_id
    assert len(claim.job.dispatch_id) == 32
    assert [step.name for step in claim.job.steps] == ["COMPILE_step"]
    job = rig.snapshot(run_id).jobs["COMPILE"]
    assert (job.status, job.claimed_by, job.claimed_at) == ("QUEUED", AGENT, T0 + 1_000)
    assert (job.dispatch_id, job.dispatch_count) == (claim.job.dispatch_id, 1)
    assert job.lease_expires_at == T0 + 1_000 + rig.policy.lease_ms
    assert rig.changes(run_id, since=mark) == []
    assert rig.try_claim() is None  # nothing else waits: TEST has not started


def test_a_whole_job_life_in_one_report_is_journalled_hop_by_hop_as_the_agent(rig: Rig) -> None:
    run_id = rig.start(one_job(rig))
    claim = rig.claim()
    rig.clock.advance(7_000)
    mark = rig.mark()

    answer = claim.send(*claim.whole_life())

    assert (answer.applied, answer.cancel) == (4, True)
    snap = rig.snapshot(run_id)
    assert [snap.status(n) for n in ("run", "BUILD", "COMPILE", "STEP_COMPILE")] == [
        "RUNNING",
        "COMPLETED",
        "COMPLETED",
        "COMPLETED",
    ]
    assert [snap.status(n) for n in ("TEST", "UNIT", "STEP_UNIT")] == ["QUEUED"] * 3
    compile_job, build = snap.jobs["COMPILE"], snap.stages["BUILD"]
    assert (compile_job.start_time, compile_job.end_time) == (T0 + 7_000, T0 + 7_000)
    assert (compile_job.lease_expires_at, compile_job.claimed_by) == (None, AGENT)
    assert snap.steps["STEP_COMPILE"].exit_code == 0
    # the stage went QUEUED -> COMPLETED in one roll-up, yet shows when its job started
    assert (build.start_time, build.end_time) == (T0 + 7_000, T0 + 7_000)
    changes = rig.changes(run_id, since=mark)
    assert hops(changes) == [
        ("job", "COMPILE", "QUEUED", "RUNNING"),
        ("step", "STEP_COMPILE", "QUEUED", "RUNNING"),
        ("step", "STEP_COMPILE", "RUNNING", "COMPLETED"),
        ("job", "COMPILE", "RUNNING", "COMPLETED"),
        ("stage", "BUILD", "QUEUED", "COMPLETED"),
        ("stage", "TEST", "INIT", "QUEUED"),
        ("job", "UNIT", "INIT", "QUEUED"),
        ("step", "STEP_UNIT", "INIT", "QUEUED"),
    ]
    assert {(c.actor_kind, c.actor, c.at) for c in changes} == {("agent", AGENT, T0 + 7_000)}

    rig.clock.advance(3_000)
    second = rig.claim(agent="builder-2", instance="host-b")
    mark = rig.mark()
    second.send(*second.whole_life())

    assert rig.snapshot(run_id).run.status == "COMPLETED"
    assert rig.snapshot(run_id).run.end_time == T0 + 10_000
    last = rig.changes(run_id, since=mark)
    assert hops(last)[-2:] == [
        ("stage", "TEST", "QUEUED", "COMPLETED"),
        ("run", "run", "RUNNING", "COMPLETED"),
    ]
    assert {(c.actor_kind, c.actor) for c in last} == {("agent", "builder-2/host-b")}


def test_reports_in_several_batches_stamp_each_change_with_its_own_time(rig: Rig) -> None:
    run_id = rig.start(one_job(rig))
    claim = rig.claim()
    mark = rig.mark()

    rig.clock.advance(1_000)
    claim.send(claim.started(), claim.step_started())
    rig.clock.advance(1_000)
    answer = claim.send(
        claim.step_finished(outcome="FAILED", exit_code=2), claim.finished("FAILED")
    )

    assert (answer.applied, answer.cancel) == (4, True)
    snap = rig.snapshot(run_id)
    assert [snap.status(n) for n in ("run", "BUILD", "COMPILE", "STEP_COMPILE", "TEST")] == [
        "FAILED",
        "FAILED",
        "FAILED",
        "FAILED",
        "INIT",
    ]
    assert snap.steps["STEP_COMPILE"].exit_code == 2
    assert (snap.jobs["COMPILE"].start_time, snap.jobs["COMPILE"].end_time) == (
        T0 + 1_000,
        T0 + 2_000,
    )
    assert (snap.stages["BUILD"].start_time, snap.stages["BUILD"].end_time) == (
        T0 + 1_000,
        T0 + 2_000,
    )
    assert snap.run.end_time == T0 + 2_000
    assert [(c.hop, c.at) for c in rig.changes(run_id, since=mark)] == [
        (("job", "COMPILE", "QUEUED", "RUNNING"), T0 + 1_000),
        (("step", "STEP_COMPILE", "QUEUED", "RUNNING"), T0 + 1_000),
        (("stage", "BUILD", "QUEUED", "RUNNING"), T0 + 1_000),  # rolled up after the batch
        (("step", "STEP_COMPILE", "RUNNING", "FAILED"), T0 + 2_000),
        (("job", "COMPILE", "RUNNING", "FAILED"), T0 + 2_000),
        (("stage", "BUILD", "RUNNING", "FAILED"), T0 + 2_000),
        (("run", "run", "RUNNING", "FAILED"), T0 + 2_000),
    ]


def test_a_job_that_fails_before_it_starts_still_shows_it_started(rig: Rig) -> None:
    run_id = rig.start(one_job(rig))
    claim = rig.claim()
    rig.clock.advance(500)
    mark = rig.mark()

    claim.send(claim.finished("FAILED", message="no workspace"))

    snap = rig.snapshot(run_id)
    job = snap.jobs["COMPILE"]
    assert (job.status, job.message, job.start_time, job.end_time) == (
        "FAILED",
        "no workspace",
        T0 + 500,
        T0 + 500,
    )
    assert hops(rig.changes(run_id, since=mark)) == [
        ("job", "COMPILE", "QUEUED", "RUNNING"),
        ("job", "COMPILE", "RUNNING", "FAILED"),
        ("step", "STEP_COMPILE", "QUEUED", "SKIPPED"),  # never ran: skipped, not failed
        ("stage", "BUILD", "QUEUED", "FAILED"),
        ("run", "run", "RUNNING", "FAILED"),
    ]


def test_resent_out_of_order_and_gapped_events_are_each_applied_once_in_order(
    rig: Rig,
) -> None:
    run_id = rig.start(one_job(rig))
    claim = rig.claim()
    started, step_started, step_finished, finished = claim.whole_life()
    mark = rig.mark()

    # out of order inside one batch: applied in seq order
    assert claim.send(step_started, started).applied == 2
    after_two = rig.changes(run_id, since=mark)
    assert hops(after_two) == [
        ("job", "COMPILE", "QUEUED", "RUNNING"),
        ("step", "STEP_COMPILE", "QUEUED", "RUNNING"),
        ("stage", "BUILD", "QUEUED", "RUNNING"),
    ]

    # a resend of what was applied: dropped, nothing journalled
    mark = rig.mark()
    assert claim.send(started, step_started).applied == 2
    assert rig.changes(run_id, since=mark) == []

    # a gap (3 is missing): the batch stops before it, nothing journalled
    answer = claim.send(finished)
    assert (answer.applied, answer.cancel) == (2, False)
    assert rig.changes(run_id, since=mark) == []
    assert rig.snapshot(run_id).jobs["COMPILE"].status == "RUNNING"

    # the agent resends from the first missing one
    assert claim.send(step_finished, finished).applied == 4
    assert hops(rig.changes(run_id, since=mark)) == [
        ("step", "STEP_COMPILE", "RUNNING", "COMPLETED"),
        ("job", "COMPILE", "RUNNING", "COMPLETED"),
        ("stage", "BUILD", "RUNNING", "COMPLETED"),
        ("stage", "TEST", "INIT", "QUEUED"),
        ("job", "UNIT", "INIT", "QUEUED"),
        ("step", "STEP_UNIT", "INIT", "QUEUED"),
    ]
    assert rig.snapshot(run_id).jobs["COMPILE"].events_applied == 4


def test_a_report_naming_another_dispatch_is_refused_and_writes_nothing(rig: Rig) -> None:
    run_id = rig.start(one_job(rig))
    claim = rig.claim()
    before = rig.snapshot(run_id)
    mark = rig.mark()

    with pytest.raises(StaleDispatch):
        claim.send(claim.started(), dispatch_id="0" * 32)

    after = rig.snapshot(run_id)
    assert after.statuses() == before.statuses()
    job = after.jobs["COMPILE"]
    assert (job.events_applied, job.lease_expires_at) == (
        0,
        before.jobs["COMPILE"].lease_expires_at,
    )
    assert rig.changes(run_id, since=mark) == []


def test_a_heartbeat_renews_current_claims_and_cancels_the_rest(rig: Rig) -> None:
    run_id = rig.start(
        rig.pipeline(stage("BUILD", rig.job("COMPILE"), rig.job("LINT"), rig.job("DOCS")))
    )
    running, ended, stale = rig.claim(), rig.claim(), rig.claim()
    running.send(running.started())
    ended.send(*ended.whole_life())
    rig.clock.advance(30_000)
    mark = rig.mark()

    reply = rig.dispatcher.heartbeat(
        Heartbeat(
            jobs={
                running.job_run_id: running.job.dispatch_id,
                ended.job_run_id: ended.job.dispatch_id,
                stale.job_run_id: "f" * 32,
            }
        )
    )

    assert reply.cancel == sorted([ended.job_run_id, stale.job_run_id])
    jobs = {job.id: job for job in rig.snapshot(run_id).jobs.values()}
    assert jobs[running.job_run_id].lease_expires_at == T0 + 30_000 + rig.policy.lease_ms
    assert jobs[ended.job_run_id].lease_expires_at is None  # an ended job's lease stays gone
    assert jobs[stale.job_run_id].lease_expires_at == T0 + rig.policy.lease_ms
    assert rig.changes(run_id, since=mark) == []
