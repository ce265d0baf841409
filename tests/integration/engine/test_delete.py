"""RunEngine.delete_pipeline: the pipeline goes, and every run of it still going ends with it.

One transaction: the pipeline is soft-deleted, each active run (running or held back) is
canceled, and a `pipeline` DELETED change is appended after the runs' changes, all by the user
at the same time. Runs that had ended are left as they were.
"""

import pytest

from stageline.domain.errors import PipelineNotFound
from tests.factories import stage

from .rig import T0, Rig, hops, per_entity

DELETER = "Dana Deleter"
QUEUE_ONE = {"enable": True, "concurrency_number": 1, "exceed_action": "QUEUE"}


def test_deleting_a_pipeline_cancels_its_active_runs_in_the_same_transaction(rig: Rig) -> None:
    pipeline_id = rig.pipeline(stage("BUILD", rig.job("COMPILE")), concurrency_control=QUEUE_ONE)
    ended = rig.start(pipeline_id)
    claim = rig.claim()
    claim.send(*claim.whole_life())
    running = rig.start(pipeline_id)
    running_claim = rig.claim()
    running_claim.send(running_claim.started())
    held = rig.start(pipeline_id)
    assert [rig.snapshot(r).run.status for r in (ended, running, held)] == [
        "COMPLETED",
        "RUNNING",
        "SUSPEND",
    ]
    rig.clock.advance(1_000)
    mark = rig.mark()

    rig.delete(pipeline_id, user=DELETER)

    assert rig.changes(ended, since=mark) == []
    snap = rig.snapshot(running)
    assert set(snap.statuses().values()) == {"CANCELED"}
    assert snap.run.end_time == T0 + 1_000
    assert snap.run.message == f"canceled by {DELETER}: the pipeline was deleted"
    assert per_entity(rig.changes(running, since=mark)) == {
        "COMPILE": [("RUNNING", "CANCELED")],
        "STEP_COMPILE": [("QUEUED", "CANCELED")],
        "BUILD": [("RUNNING", "CANCELED")],
        "run": [("RUNNING", "CANCELED")],
    }
    # the held run is canceled, not started in the slot the other one freed
    assert set(rig.snapshot(held).statuses().values()) == {"CANCELED"}
    assert hops(rig.changes(held, since=mark)) == [
        ("job", "COMPILE", "SUSPEND", "CANCELED"),
        ("step", "STEP_COMPILE", "INIT", "CANCELED"),
        ("stage", "BUILD", "SUSPEND", "CANCELED"),
        ("run", "run", "SUSPEND", "CANCELED"),
    ]
    (deletion,) = rig.pipeline_changes(pipeline_id)
    assert deletion.hop == ("pipeline", pipeline_id, None, "DELETED")
    run_changes = rig.changes(running, since=mark) + rig.changes(held, since=mark)
    everything = sorted([*run_changes, deletion], key=lambda change: change.seq)
    assert everything[-1] == deletion  # last, after every run's change
    assert [c.seq for c in everything] == list(range(mark + 1, mark + 1 + len(everything)))
    assert {(c.actor_kind, c.actor, c.at) for c in everything} == {("user", DELETER, T0 + 1_000)}

    with pytest.raises(PipelineNotFound):
        rig.start(pipeline_id)
    assert rig.try_claim() is None
    assert running_claim.send(running_claim.finished()).cancel


def test_a_deleted_pipeline_s_clean_up_jobs_do_not_run(rig: Rig) -> None:
    """Unlike a stop, a deletion leaves no run going: clean-up jobs are canceled too."""
    pipeline_id = rig.pipeline(
        stage(
            "BUILD",
            rig.job("COMPILE"),
            rig.job("TIDY", depends_on=["COMPILE"], condition="${{ always() }}"),
        )
    )
    run_id = rig.start(pipeline_id)
    rig.clock.advance(1_000)

    rig.delete(pipeline_id, user=DELETER)

    snap = rig.snapshot(run_id)
    assert snap.statuses() == {
        "run": "CANCELED",
        "BUILD": "CANCELED",
        "COMPILE": "CANCELED",
        "STEP_COMPILE": "CANCELED",
        "TIDY": "CANCELED",
        "STEP_TIDY": "CANCELED",
    }
    assert snap.run.end_time == T0 + 1_000
    assert rig.try_claim() is None
