"""Tests for `stageline.domain.rollup`: a stage's status from its jobs, a run's from its stages."""

from dataclasses import dataclass

import pytest

from stageline.domain.rollup import run_status, stage_status
from stageline.domain.statuses import RunStatus, StageStatus

S = StageStatus
R = RunStatus


@dataclass(frozen=True)
class StageCase:
    id: str
    jobs: tuple[StageStatus, ...]
    expected: StageStatus


@dataclass(frozen=True)
class RunCase:
    id: str
    stages: tuple[StageStatus, ...]
    expected: RunStatus


STAGE_CASES = [
    StageCase("no jobs is completed", (), S.COMPLETED),
    StageCase("all completed", (S.COMPLETED, S.COMPLETED), S.COMPLETED),
    StageCase("single completed", (S.COMPLETED,), S.COMPLETED),
    StageCase("one running among completed", (S.COMPLETED, S.RUNNING, S.COMPLETED), S.RUNNING),
    StageCase("running wins over failed", (S.FAILED, S.RUNNING), S.RUNNING),
    StageCase("queued only", (S.QUEUED, S.QUEUED), S.QUEUED),
    StageCase("queued and init without progress", (S.QUEUED, S.INIT), S.QUEUED),
    StageCase("completed and queued is progress", (S.COMPLETED, S.QUEUED), S.RUNNING),
    StageCase("failed and queued is progress", (S.FAILED, S.QUEUED), S.RUNNING),
    StageCase("completed and init is progress", (S.COMPLETED, S.INIT), S.RUNNING),
    StageCase("init only", (S.INIT, S.INIT), S.INIT),
    StageCase("init and suspend has not begun", (S.INIT, S.SUSPEND), S.INIT),
    StageCase("all suspended", (S.SUSPEND, S.SUSPEND), S.SUSPEND),
    StageCase("failed and completed", (S.COMPLETED, S.FAILED), S.FAILED),
    StageCase("failed wins over canceled", (S.CANCELED, S.FAILED), S.FAILED),
    StageCase("canceled and completed", (S.COMPLETED, S.CANCELED), S.CANCELED),
    StageCase("canceled and skipped", (S.SKIPPED, S.CANCELED), S.CANCELED),
    StageCase("all skipped", (S.SKIPPED, S.SKIPPED), S.SKIPPED),
    StageCase("skipped and unselected", (S.SKIPPED, S.UNSELECTED), S.SKIPPED),
    StageCase("all unselected", (S.UNSELECTED, S.UNSELECTED), S.UNSELECTED),
    StageCase("all ignored", (S.IGNORED,), S.IGNORED),
    StageCase("skipped and completed", (S.SKIPPED, S.COMPLETED), S.COMPLETED),
    StageCase("unselected and completed", (S.UNSELECTED, S.COMPLETED), S.COMPLETED),
    StageCase("unselected is not progress: init", (S.INIT, S.UNSELECTED), S.INIT),
    StageCase("unselected is not progress: queued", (S.QUEUED, S.UNSELECTED), S.QUEUED),
    StageCase("unselected is not progress: suspend", (S.SUSPEND, S.UNSELECTED), S.SUSPEND),
    StageCase("unselected beside ignored", (S.IGNORED, S.UNSELECTED), S.IGNORED),
    StageCase("unselected beside running", (S.RUNNING, S.UNSELECTED), S.RUNNING),
    StageCase("unselected beside failed", (S.FAILED, S.UNSELECTED), S.FAILED),
    StageCase("paused wins over queued", (S.QUEUED, S.PAUSED), S.PAUSED),
    StageCase("paused wins over completed", (S.COMPLETED, S.PAUSED), S.PAUSED),
    StageCase("running wins over paused", (S.PAUSED, S.RUNNING), S.RUNNING),
    StageCase("redispatch among completed", (S.COMPLETED, S.REDISPATCH), S.REDISPATCH),
    StageCase("redispatch wins over paused", (S.PAUSED, S.REDISPATCH), S.REDISPATCH),
    StageCase("running wins over redispatch", (S.REDISPATCH, S.RUNNING), S.RUNNING),
    StageCase("async running alone", (S.ASYNC_RUNNING,), S.ASYNC_RUNNING),
    StageCase("async running with completed", (S.COMPLETED, S.ASYNC_RUNNING), S.ASYNC_RUNNING),
    StageCase("async running and queued is progress", (S.ASYNC_RUNNING, S.QUEUED), S.RUNNING),
    StageCase("failed wins over async running", (S.ASYNC_RUNNING, S.FAILED), S.FAILED),
    StageCase("async failed with completed", (S.COMPLETED, S.ASYNC_FAILED), S.ASYNC_FAILED),
    StageCase(
        "async running wins over async failed", (S.ASYNC_FAILED, S.ASYNC_RUNNING), S.ASYNC_RUNNING
    ),
    StageCase("failed wins over async failed", (S.ASYNC_FAILED, S.FAILED), S.FAILED),
]

RUN_CASES = [
    RunCase("running stage", (S.COMPLETED, S.RUNNING, S.INIT), R.RUNNING),
    RunCase("queued stage", (S.COMPLETED, S.QUEUED, S.INIT), R.RUNNING),
    RunCase("redispatched stage", (S.REDISPATCH, S.INIT), R.RUNNING),
    RunCase("running wins over failed", (S.FAILED, S.RUNNING), R.RUNNING),
    RunCase("failed stage then init stages", (S.COMPLETED, S.FAILED, S.INIT, S.INIT), R.FAILED),
    RunCase("failed wins over canceled", (S.CANCELED, S.FAILED), R.FAILED),
    RunCase("all completed", (S.COMPLETED, S.COMPLETED), R.COMPLETED),
    RunCase("no stages", (), R.COMPLETED),
    RunCase("completed then init is between stages", (S.COMPLETED, S.INIT), R.RUNNING),
    RunCase("only init stages", (S.INIT, S.INIT), R.RUNNING),
    RunCase("canceled stage then init", (S.COMPLETED, S.CANCELED, S.INIT), R.CANCELED),
    RunCase("paused stage", (S.COMPLETED, S.PAUSED, S.INIT), R.PAUSED),
    RunCase("paused wins over failed", (S.FAILED, S.PAUSED), R.PAUSED),
    RunCase("unselected and completed", (S.UNSELECTED, S.COMPLETED), R.COMPLETED),
    RunCase("skipped and completed", (S.COMPLETED, S.SKIPPED), R.COMPLETED),
    RunCase("async jobs still running hold the run", (S.COMPLETED, S.ASYNC_RUNNING), R.RUNNING),
    RunCase("an async failure does not fail the run", (S.COMPLETED, S.ASYNC_FAILED), R.COMPLETED),
    RunCase("unselected stages are neutral", (S.SUSPEND, S.UNSELECTED), R.SUSPEND),
    RunCase("all ignored", (S.IGNORED, S.IGNORED), R.IGNORED),
    RunCase("ignored and completed", (S.IGNORED, S.COMPLETED), R.COMPLETED),
    RunCase("suspended first stage", (S.SUSPEND, S.INIT), R.SUSPEND),
    RunCase("suspended after progress", (S.COMPLETED, S.SUSPEND), R.RUNNING),
]


class TestStageStatus:
    @pytest.mark.parametrize("case", STAGE_CASES, ids=lambda case: case.id)
    def test_rolls_up_job_statuses(self, case: StageCase) -> None:
        assert stage_status(case.jobs) == case.expected

    @pytest.mark.parametrize("case", STAGE_CASES, ids=lambda case: case.id)
    def test_order_of_jobs_does_not_matter(self, case: StageCase) -> None:
        assert stage_status(tuple(reversed(case.jobs))) == case.expected

    @pytest.mark.parametrize("case", STAGE_CASES, ids=lambda case: case.id)
    def test_accepts_any_collection(self, case: StageCase) -> None:
        assert stage_status(frozenset(case.jobs)) == case.expected


class TestRunStatus:
    @pytest.mark.parametrize("case", RUN_CASES, ids=lambda case: case.id)
    def test_rolls_up_stage_statuses(self, case: RunCase) -> None:
        assert run_status(case.stages) == case.expected

    def test_result_is_a_run_status(self) -> None:
        assert isinstance(run_status([S.COMPLETED]), RunStatus)
