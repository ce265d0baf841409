"""Sweeper.run_once and grant_grace: what happens when nobody reports, on the fake clock.

A lease, a job's timeout and a review's timeout all end strictly after their instant: a sweep at
that very millisecond finds nothing, one a millisecond later acts. Every change a sweep makes is
the timer's. Each test has a database of its own, so a sweep finds no other test's job.
"""

from collections.abc import Iterator
from typing import Any

import pytest

from stageline.domain.errors import StaleDispatch
from stageline.engine.dispatcher import LeasePolicy
from stageline.store import migrate
from stageline.store.database import Database
from tests.databases import sibling_database
from tests.factories import stage

from .rig import T0, FakeClock, Rig, checkpoint_job, hops

TIMER = ("timer", "stageline")


@pytest.fixture
def engine_db(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    """A fresh database per test (overrides the module-wide one)."""
    with sibling_database(database_url, tmp_path_factory.mktemp("sweeps")) as url:
        database = Database(url)
        migrate.upgrade(database.engine)
        yield database
        database.dispose()


def two_step_job(rig: Rig, identifier: str, **extra: Any) -> dict[str, Any]:
    job = rig.job(identifier, **extra)
    first = job["steps"][0]
    job["steps"] = [
        {**first, "identifier": f"{identifier}_1", "name": "one"},
        {**first, "identifier": f"{identifier}_2", "name": "two"},
    ]
    return job


def test_a_lost_agent_s_job_is_redispatched_until_max_redispatch_then_fails(rig: Rig) -> None:
    assert rig.policy.max_redispatch == 2
    lease = rig.policy.lease_ms
    run_id = rig.start(rig.pipeline(stage("BUILD", rig.job("COMPILE"))))
    first = rig.claim("builder-1", "host-a")
    rig.clock.advance(1_000)
    first.send(first.started(), first.step_started())

    rig.clock.now = T0 + 1_000 + lease  # the lease's last millisecond
    mark = rig.mark()
    rig.sweeper.run_once()
    assert rig.changes(run_id, since=mark) == []

    rig.clock.advance(1)
    rig.sweeper.run_once()

    snap = rig.snapshot(run_id)
    assert [snap.status(n) for n in ("run", "BUILD", "COMPILE", "STEP_COMPILE")] == [
        "RUNNING",
        "REDISPATCH",
        "REDISPATCH",
        "QUEUED",
    ]
    job = snap.jobs["COMPILE"]
    assert job.message == "agent lost (builder-1/host-a); redispatching"
    assert (job.claimed_by, job.dispatch_id, job.lease_expires_at) == (None, None, None)
    assert (job.start_time, job.end_time, job.dispatch_count) == (T0 + 1_000, None, 1)
    assert snap.steps["STEP_COMPILE"].start_time is None
    changes = rig.changes(run_id, since=mark)
    assert hops(changes) == [
        ("job", "COMPILE", "RUNNING", "REDISPATCH"),
        ("step", "STEP_COMPILE", "RUNNING", "QUEUED"),
        ("stage", "BUILD", "RUNNING", "REDISPATCH"),
    ]
    assert {(c.actor_kind, c.actor, c.at) for c in changes} == {(*TIMER, T0 + 1_001 + lease)}
    with pytest.raises(StaleDispatch):  # the lost agent can no longer change the job
        first.send(first.finished())

    rig.clock.advance(1_000)
    second = rig.claim("builder-2", "host-b")
    mark = rig.mark()
    second.send(second.started())
    assert hops(rig.changes(run_id, since=mark)) == [
        ("job", "COMPILE", "REDISPATCH", "RUNNING"),
        ("stage", "BUILD", "REDISPATCH", "RUNNING"),
    ]
    assert rig.snapshot(run_id).jobs["COMPILE"].start_time == T0 + 1_000  # its first start
    rig.clock.advance(lease + 1)
    rig.sweeper.run_once()
    assert rig.snapshot(run_id).jobs["COMPILE"].status == "REDISPATCH"

    rig.clock.advance(1_000)
    third = rig.claim("builder-3", "host-c")
    assert third.job.job_run_id == first.job_run_id
    assert rig.snapshot(run_id).jobs["COMPILE"].dispatch_count == 3
    rig.clock.advance(lease + 1)
    mark = rig.mark()
    rig.sweeper.run_once()  # a third loss: no redispatch left

    snap = rig.snapshot(run_id)
    assert [snap.status(n) for n in ("run", "BUILD", "COMPILE", "STEP_COMPILE")] == [
        "FAILED",
        "FAILED",
        "FAILED",
        "SKIPPED",
    ]
    assert snap.jobs["COMPILE"].message == "agent lost (builder-3/host-c)"
    assert snap.jobs["COMPILE"].end_time == rig.clock.now
    assert snap.run.end_time == rig.clock.now
    changes = rig.changes(run_id, since=mark)
    assert hops(changes) == [
        ("job", "COMPILE", "REDISPATCH", "FAILED"),
        ("step", "STEP_COMPILE", "QUEUED", "SKIPPED"),
        ("stage", "BUILD", "REDISPATCH", "FAILED"),
        ("run", "run", "RUNNING", "FAILED"),
    ]
    assert {(c.actor_kind, c.actor, c.at) for c in changes} == {(*TIMER, rig.clock.now)}
    assert [c.after for c in rig.changes(run_id) if c.name == "COMPILE"].count("REDISPATCH") == 2


def test_a_job_past_its_timeout_fails_its_running_step_and_skips_the_rest(
    engine_db: Database, clock: FakeClock
) -> None:
    rig = Rig(engine_db, clock, policy=LeasePolicy(lease_seconds=3_600))  # no lease runs out
    run_id = rig.start(rig.pipeline(stage("BUILD", two_step_job(rig, "COMPILE", timeout="1m"))))
    claim = rig.claim()
    rig.clock.advance(1_000)
    claim.send(claim.started(), claim.step_started(0))
    assert rig.snapshot(run_id).jobs["COMPILE"].deadline_at == T0 + 61_000

    rig.clock.now = T0 + 61_000
    mark = rig.mark()
    rig.sweeper.run_once()
    assert rig.changes(run_id, since=mark) == []

    rig.clock.advance(1)
    rig.sweeper.run_once()

    snap = rig.snapshot(run_id)
    assert [snap.status(n) for n in ("run", "BUILD", "COMPILE", "COMPILE_1", "COMPILE_2")] == [
        "FAILED",
        "FAILED",
        "FAILED",
        "FAILED",
        "SKIPPED",
    ]
    job = snap.jobs["COMPILE"]
    assert (job.message, job.deadline_at, job.end_time) == ("timed out after 1m", None, T0 + 61_001)
    changes = rig.changes(run_id, since=mark)
    assert hops(changes) == [
        ("job", "COMPILE", "RUNNING", "FAILED"),
        ("step", "COMPILE_1", "RUNNING", "FAILED"),
        ("step", "COMPILE_2", "QUEUED", "SKIPPED"),
        ("stage", "BUILD", "RUNNING", "FAILED"),
        ("run", "run", "RUNNING", "FAILED"),
    ]
    assert {(c.actor_kind, c.actor, c.at) for c in changes} == {(*TIMER, T0 + 61_001)}

    mark = rig.mark()
    assert claim.send(claim.step_finished(0)).cancel  # too late: refused, the agent kills it
    assert rig.changes(run_id, since=mark) == []


@pytest.mark.parametrize(
    ("strategy", "ending", "run_after"),
    [("pass", "COMPLETED", "RUNNING"), ("reject", "FAILED", "FAILED")],
)
def test_a_review_nobody_decided_in_time_takes_its_timeout_strategy(
    rig: Rig, strategy: str, ending: str, run_after: str
) -> None:
    run_id = rig.start(
        rig.pipeline(
            stage("APPROVE", checkpoint_job("REVIEW", timeout="30", timeout_strategy=strategy)),
            stage("DEPLOY", rig.job("SHIP")),
        )
    )
    assert rig.snapshot(run_id).steps["STEP_REVIEW"].deadline_at == T0 + 30_000

    rig.clock.now = T0 + 30_000
    mark = rig.mark()
    rig.sweeper.run_once()
    assert rig.changes(run_id, since=mark) == []

    rig.clock.advance(1)
    rig.sweeper.run_once()

    snap = rig.snapshot(run_id)
    assert [snap.status(n) for n in ("run", "APPROVE", "REVIEW", "STEP_REVIEW")] == [
        run_after,
        ending,
        ending,
        ending,
    ]
    verdict = "passed" if strategy == "pass" else "refused"
    assert snap.steps["STEP_REVIEW"].message == f"no decision within 30s: {verdict}"
    assert snap.steps["STEP_REVIEW"].deadline_at is None
    changes = rig.changes(run_id, since=mark)
    expected = [
        ("step", "STEP_REVIEW", "PAUSED", ending),
        ("job", "REVIEW", "PAUSED", ending),
        ("stage", "APPROVE", "PAUSED", ending),
    ]
    if strategy == "pass":
        expected += [
            ("stage", "DEPLOY", "INIT", "QUEUED"),
            ("job", "SHIP", "INIT", "QUEUED"),
            ("step", "STEP_SHIP", "INIT", "QUEUED"),
        ]
    expected.append(("run", "run", "PAUSED", run_after))  # the run is rolled up last
    assert hops(changes) == expected
    assert {(c.actor_kind, c.actor, c.at) for c in changes} == {(*TIMER, T0 + 30_001)}


def test_grace_at_start_up_gives_every_claim_a_fresh_lease_and_changes_no_status(
    rig: Rig,
) -> None:
    run_id = rig.start(rig.pipeline(stage("BUILD", rig.job("COMPILE"), rig.job("LINT"))))
    claims = [rig.claim(), rig.claim()]
    claims[0].send(claims[0].started())
    rig.clock.advance(10 * rig.policy.lease_ms)  # the server was down long past every lease
    mark = rig.mark()

    assert rig.sweeper.grant_grace() == 2
    rig.sweeper.run_once()

    snap = rig.snapshot(run_id)
    assert {job.lease_expires_at for job in snap.jobs.values()} == {
        rig.clock.now + rig.policy.lease_ms
    }
    assert sorted(snap.status(n) for n in ("COMPILE", "LINT")) == ["QUEUED", "RUNNING"]
    assert {snap.jobs[n].claimed_by for n in ("COMPILE", "LINT")} == {"builder-1/host-a"}
    assert rig.changes(run_id, since=mark) == []
