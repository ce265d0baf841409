"""RunEngine.decide_review: manual reviews (a job's checkpoint step, or a stage's entry gate).

A review pauses without an agent as soon as it is due; each decision is the reviewer's change.
A review passed or refused ends the step and its job (or opens or fails the gate) directly from
PAUSED: the work started when it paused, and it does not run again on the way to its end.
"""

import pytest

from stageline.domain.errors import Forbidden
from stageline.engine.runs import Reviewer
from stageline.store.ids import new_id
from tests.factories import stage

from .rig import CHECKPOINT_TASK, T0, USER, Rig, checkpoint_job, hops

ALICE = Reviewer(new_id(), "alice")
BOB = Reviewer(new_id(), "bob")
CAROL = Reviewer(new_id(), "carol")


def review_pipeline(rig: Rig) -> str:
    return rig.pipeline(
        stage("APPROVE", checkpoint_job("REVIEW", approvers="alice,bob", check_strategy="all")),
        stage("DEPLOY", rig.job("SHIP")),
    )


def gated_pipeline(rig: Rig) -> str:
    gated = stage("GATED", rig.job("WORK"))
    gated["pre"] = [{"name": "gate", "task": CHECKPOINT_TASK, "identifier": "GATE", "inputs": []}]
    return rig.pipeline(gated)


def test_a_review_job_pauses_its_run_as_soon_as_it_is_due(rig: Rig) -> None:
    run_id = rig.start(review_pipeline(rig))

    snap = rig.snapshot(run_id)
    assert [snap.status(n) for n in ("run", "APPROVE", "REVIEW", "STEP_REVIEW", "DEPLOY")] == [
        "PAUSED",
        "PAUSED",
        "PAUSED",
        "PAUSED",
        "INIT",
    ]
    step = snap.steps["STEP_REVIEW"]
    assert (step.start_time, step.deadline_at) == (T0, T0 + 24 * 3600 * 1000)
    assert (snap.jobs["REVIEW"].start_time, snap.stages["APPROVE"].start_time) == (T0, T0)
    changes = rig.changes(run_id)
    assert hops(changes) == [
        ("run", "run", None, "RUNNING"),
        ("stage", "APPROVE", "INIT", "QUEUED"),
        ("job", "REVIEW", "INIT", "QUEUED"),
        ("job", "REVIEW", "QUEUED", "RUNNING"),
        ("job", "REVIEW", "RUNNING", "PAUSED"),
        ("step", "STEP_REVIEW", "INIT", "QUEUED"),
        ("step", "STEP_REVIEW", "QUEUED", "RUNNING"),
        ("step", "STEP_REVIEW", "RUNNING", "PAUSED"),
        ("stage", "APPROVE", "QUEUED", "PAUSED"),
        ("run", "run", "RUNNING", "PAUSED"),
    ]
    assert {(c.actor_kind, c.actor, c.at) for c in changes} == {("user", USER, T0)}
    assert rig.try_claim() is None  # no agent is involved


def test_a_review_passed_by_every_approver_completes_and_the_run_goes_on(rig: Rig) -> None:
    run_id = rig.start(review_pipeline(rig))
    rig.clock.advance(1_000)
    mark = rig.mark()

    rig.review(run_id, "STEP_REVIEW", job="REVIEW", approve=True, reviewer=ALICE)

    snap = rig.snapshot(run_id)
    assert snap.status("STEP_REVIEW") == "PAUSED"  # bob has yet to pass it
    assert snap.steps["STEP_REVIEW"].approvals == [ALICE.user_id, "alice"]
    assert rig.changes(run_id, since=mark) == []

    with pytest.raises(Forbidden):
        rig.review(run_id, "STEP_REVIEW", job="REVIEW", approve=False, reviewer=CAROL)
    assert rig.changes(run_id, since=mark) == []

    rig.clock.advance(1_000)
    rig.review(run_id, "STEP_REVIEW", job="REVIEW", approve=True, reviewer=BOB, comment="ok")

    snap = rig.snapshot(run_id)
    assert [snap.status(n) for n in ("run", "APPROVE", "REVIEW", "STEP_REVIEW", "DEPLOY")] == [
        "RUNNING",
        "COMPLETED",
        "COMPLETED",
        "COMPLETED",
        "QUEUED",
    ]
    review, step = snap.jobs["REVIEW"], snap.steps["STEP_REVIEW"]
    assert (review.message, step.message) == ("passed by bob: ok", "passed by bob: ok")
    assert (review.start_time, review.end_time) == (T0, T0 + 2_000)
    assert (step.start_time, step.end_time, step.deadline_at) == (T0, T0 + 2_000, None)
    changes = rig.changes(run_id, since=mark)
    assert hops(changes) == [
        ("step", "STEP_REVIEW", "PAUSED", "COMPLETED"),
        ("job", "REVIEW", "PAUSED", "COMPLETED"),
        ("stage", "APPROVE", "PAUSED", "COMPLETED"),
        ("stage", "DEPLOY", "INIT", "QUEUED"),
        ("job", "SHIP", "INIT", "QUEUED"),
        ("step", "STEP_SHIP", "INIT", "QUEUED"),
        ("run", "run", "PAUSED", "RUNNING"),
    ]
    assert {(c.actor_kind, c.actor, c.at) for c in changes} == {("user", "bob", T0 + 2_000)}


def test_a_refused_review_fails_its_job_and_the_run(rig: Rig) -> None:
    run_id = rig.start(review_pipeline(rig))
    rig.clock.advance(1_000)
    mark = rig.mark()

    rig.review(run_id, "STEP_REVIEW", job="REVIEW", approve=False, reviewer=ALICE, comment="no")

    snap = rig.snapshot(run_id)
    assert [snap.status(n) for n in ("run", "APPROVE", "REVIEW", "STEP_REVIEW", "DEPLOY")] == [
        "FAILED",
        "FAILED",
        "FAILED",
        "FAILED",
        "INIT",
    ]
    assert snap.jobs["REVIEW"].message == "refused by alice: no"
    assert snap.run.end_time == T0 + 1_000
    changes = rig.changes(run_id, since=mark)
    assert hops(changes) == [
        ("step", "STEP_REVIEW", "PAUSED", "FAILED"),
        ("job", "REVIEW", "PAUSED", "FAILED"),
        ("stage", "APPROVE", "PAUSED", "FAILED"),
        ("run", "run", "PAUSED", "FAILED"),
    ]
    assert {(c.actor_kind, c.actor, c.at) for c in changes} == {("user", "alice", T0 + 1_000)}


def test_a_stage_entry_review_holds_the_stage_s_jobs_until_it_is_passed(rig: Rig) -> None:
    run_id = rig.start(gated_pipeline(rig))

    snap = rig.snapshot(run_id)
    assert [snap.status(n) for n in ("run", "GATED", "GATE", "WORK")] == [
        "PAUSED",
        "PAUSED",
        "PAUSED",
        "INIT",
    ]
    assert hops(rig.changes(run_id)) == [
        ("run", "run", None, "RUNNING"),
        ("stage", "GATED", "INIT", "QUEUED"),
        ("stage", "GATED", "QUEUED", "RUNNING"),
        ("stage", "GATED", "RUNNING", "PAUSED"),
        ("step", "GATE", "INIT", "QUEUED"),
        ("step", "GATE", "QUEUED", "RUNNING"),
        ("step", "GATE", "RUNNING", "PAUSED"),
        ("run", "run", "RUNNING", "PAUSED"),
    ]
    assert rig.try_claim() is None
    rig.clock.advance(1_000)
    mark = rig.mark()

    rig.review(run_id, "GATE", approve=True, reviewer=CAROL)  # no approvers named: anyone

    snap = rig.snapshot(run_id)
    assert [snap.status(n) for n in ("run", "GATED", "GATE", "WORK")] == [
        "RUNNING",
        "QUEUED",  # derived from its jobs again once the gate is open
        "COMPLETED",
        "QUEUED",
    ]
    changes = rig.changes(run_id, since=mark)
    assert hops(changes) == [
        ("step", "GATE", "PAUSED", "COMPLETED"),
        ("stage", "GATED", "PAUSED", "RUNNING"),
        ("job", "WORK", "INIT", "QUEUED"),
        ("step", "STEP_WORK", "INIT", "QUEUED"),
        ("stage", "GATED", "RUNNING", "QUEUED"),
        ("run", "run", "PAUSED", "RUNNING"),
    ]
    assert {(c.actor_kind, c.actor, c.at) for c in changes} == {("user", "carol", T0 + 1_000)}
    assert rig.claim().job.name == "WORK"


def test_a_refused_stage_entry_review_fails_the_stage_before_its_jobs_run(rig: Rig) -> None:
    run_id = rig.start(gated_pipeline(rig))
    rig.clock.advance(1_000)
    mark = rig.mark()

    rig.review(run_id, "GATE", approve=False, reviewer=CAROL)

    snap = rig.snapshot(run_id)
    assert [snap.status(n) for n in ("run", "GATED", "GATE", "WORK")] == [
        "FAILED",
        "FAILED",
        "FAILED",
        "INIT",  # never reached
    ]
    assert hops(rig.changes(run_id, since=mark)) == [
        ("step", "GATE", "PAUSED", "FAILED"),
        ("stage", "GATED", "PAUSED", "FAILED"),
        ("run", "run", "PAUSED", "FAILED"),
    ]
    assert rig.try_claim() is None
