"""Tests for `stageline.domain.transitions` and the vocabularies of `stageline.domain.statuses`.

The allowed edges are written out here on purpose: the test states the intended state machine
and checks every ordered pair of statuses against it, so a changed edge table shows up as a
failing pair rather than silently agreeing with itself.
"""

from collections import deque
from enum import StrEnum
from itertools import product

import pytest

from stageline.domain.statuses import STAGE_TERMINAL, RunStatus, StageStatus, TriggerType
from stageline.domain.transitions import Decision, Intent, decide, route

S = StageStatus
R = RunStatus

_IN_FLIGHT = (S.QUEUED, S.RUNNING, S.PAUSED, S.REDISPATCH, S.ASYNC_RUNNING)
_ENDINGS = (S.COMPLETED, S.FAILED, S.CANCELED, S.ASYNC_FAILED)

EXPECTED_STAGE_EDGES: frozenset[tuple[StageStatus, StageStatus]] = frozenset(
    {
        (S.INIT, S.QUEUED),
        (S.INIT, S.SUSPEND),
        (S.INIT, S.SKIPPED),
        (S.INIT, S.UNSELECTED),
        (S.INIT, S.IGNORED),
        (S.INIT, S.CANCELED),
        (S.SUSPEND, S.INIT),
        (S.SUSPEND, S.QUEUED),
        (S.SUSPEND, S.IGNORED),
        (S.SUSPEND, S.CANCELED),
        (S.QUEUED, S.SKIPPED),
        # In-flight work may move to any other in-flight status or end in any way: a stage's
        # status is derived from its jobs', and one report may carry a job's whole life.
        *((a, b) for a in _IN_FLIGHT for b in (*_IN_FLIGHT, *_ENDINGS) if a != b),
    }
)
EXPECTED_STAGE_CREATION = frozenset({S.INIT, S.UNSELECTED})
EXPECTED_STAGE_RETRY_EDGES = frozenset(
    (a, S.INIT) for a in (S.COMPLETED, S.FAILED, S.CANCELED, S.SKIPPED, S.ASYNC_FAILED)
)
_REDISPATCHABLE = (*_IN_FLIGHT, *_ENDINGS, S.SKIPPED)
EXPECTED_STAGE_REDISPATCH_EDGES = frozenset(
    (a, b) for a in _REDISPATCHABLE for b in (S.REDISPATCH, S.QUEUED) if a != b
)

EXPECTED_RUN_EDGES: frozenset[tuple[RunStatus, RunStatus]] = frozenset(
    {
        (R.RUNNING, R.COMPLETED),
        (R.RUNNING, R.FAILED),
        (R.RUNNING, R.CANCELED),
        (R.RUNNING, R.PAUSED),
        (R.PAUSED, R.RUNNING),
        (R.PAUSED, R.COMPLETED),
        (R.PAUSED, R.FAILED),
        (R.PAUSED, R.CANCELED),
        (R.SUSPEND, R.RUNNING),
        (R.SUSPEND, R.IGNORED),
        (R.SUSPEND, R.CANCELED),
    }
)
EXPECTED_RUN_CREATION = frozenset({R.RUNNING, R.SUSPEND, R.IGNORED})
EXPECTED_RUN_RETRY_EDGES = frozenset(
    {(R.FAILED, R.RUNNING), (R.CANCELED, R.RUNNING), (R.FAILED, R.SUSPEND), (R.CANCELED, R.SUSPEND)}
)

STAGE_PAIRS = list(product(StageStatus, StageStatus))
RUN_PAIRS = list(product(RunStatus, RunStatus))


def _pair_id(pair: tuple[StageStatus, StageStatus] | tuple[RunStatus, RunStatus]) -> str:
    return f"{pair[0].value}->{pair[1].value}"


def _allowed_targets(status: StageStatus) -> set[StageStatus]:
    return {target for target in StageStatus if decide(status, target).accepted}


class TestDecideStage:
    @pytest.mark.parametrize("pair", STAGE_PAIRS, ids=_pair_id)
    def test_accepts_exactly_the_expected_edges(
        self, pair: tuple[StageStatus, StageStatus]
    ) -> None:
        current, proposed = pair

        decision = decide(current, proposed)

        assert decision.accepted is (pair in EXPECTED_STAGE_EDGES)

    @pytest.mark.parametrize("pair", STAGE_PAIRS, ids=_pair_id)
    def test_refusals_carry_a_reason_and_acceptances_do_not(
        self, pair: tuple[StageStatus, StageStatus]
    ) -> None:
        decision = decide(*pair)

        if decision.accepted:
            assert decision.reason == ""
            assert decision.path == (pair[1],)
        else:
            assert decision.reason.strip() != ""

    @pytest.mark.parametrize("status", list(StageStatus), ids=str)
    def test_staying_put_is_refused_as_already(self, status: StageStatus) -> None:
        decision = decide(status, status)

        assert decision == Decision(accepted=False, reason=f"already {status.value}")
        assert "already" in decision.reason

    def test_refusal_names_both_statuses(self) -> None:
        decision = decide(S.COMPLETED, S.RUNNING)

        assert not decision.accepted
        assert "COMPLETED" in decision.reason
        assert "RUNNING" in decision.reason

    def test_expected_table_keeps_every_row(self) -> None:
        # Guards the hand-written table itself against accidental loss of rows.
        assert len(EXPECTED_STAGE_EDGES) == 11 + 5 * 8

    @pytest.mark.parametrize("status", [None, *StageStatus], ids=str)
    def test_work_is_created_only_as_planned(self, status: StageStatus | None) -> None:
        if status is None:
            return
        assert decide(None, status).accepted is (status in EXPECTED_STAGE_CREATION)

    @pytest.mark.parametrize("pair", STAGE_PAIRS, ids=_pair_id)
    def test_retry_puts_ended_work_back_to_init_and_nothing_else(
        self, pair: tuple[StageStatus, StageStatus]
    ) -> None:
        accepted = decide(*pair, Intent.RETRY).accepted
        assert accepted is (pair in EXPECTED_STAGE_RETRY_EDGES)

    @pytest.mark.parametrize("pair", STAGE_PAIRS, ids=_pair_id)
    def test_redispatch_queues_work_of_a_lost_agent_again(
        self, pair: tuple[StageStatus, StageStatus]
    ) -> None:
        accepted = decide(*pair, Intent.REDISPATCH).accepted
        assert accepted is (pair in EXPECTED_STAGE_REDISPATCH_EDGES)


class TestStageGraph:
    def test_every_status_is_reachable_from_init(self) -> None:
        seen = {S.INIT}
        frontier = deque([S.INIT])
        while frontier:
            for target in _allowed_targets(frontier.popleft()):
                if target not in seen:
                    seen.add(target)
                    frontier.append(target)

        assert seen == set(StageStatus)

    def test_terminal_group_is_exactly_the_end_states(self) -> None:
        assert (
            frozenset(
                {
                    S.COMPLETED,
                    S.FAILED,
                    S.CANCELED,
                    S.SKIPPED,
                    S.IGNORED,
                    S.UNSELECTED,
                    S.ASYNC_FAILED,
                }
            )
            == STAGE_TERMINAL
        )

    @pytest.mark.parametrize("status", sorted(STAGE_TERMINAL), ids=str)
    def test_terminal_statuses_never_move_forward(self, status: StageStatus) -> None:
        assert _allowed_targets(status) == set()


class TestRoute:
    """Callers name a target; the domain finds the path along the table's edges."""

    @pytest.mark.parametrize(
        ("current", "target", "via", "path"),
        [
            (S.INIT, S.QUEUED, None, (S.QUEUED,)),
            (S.INIT, S.COMPLETED, None, (S.QUEUED, S.COMPLETED)),
            (S.INIT, S.COMPLETED, S.RUNNING, (S.QUEUED, S.RUNNING, S.COMPLETED)),
            (S.INIT, S.PAUSED, S.RUNNING, (S.QUEUED, S.RUNNING, S.PAUSED)),
            (S.PAUSED, S.COMPLETED, S.RUNNING, (S.RUNNING, S.COMPLETED)),
            (S.RUNNING, S.FAILED, S.RUNNING, (S.FAILED,)),
            (S.QUEUED, S.CANCELED, None, (S.CANCELED,)),
            (S.SUSPEND, S.RUNNING, None, (S.QUEUED, S.RUNNING)),
        ],
    )
    def test_finds_the_shortest_path_through_via(
        self,
        current: StageStatus,
        target: StageStatus,
        via: StageStatus | None,
        path: tuple[StageStatus, ...],
    ) -> None:
        decision = route(current, target, via=via)

        assert decision == Decision(accepted=True, path=path)

    @pytest.mark.parametrize(
        ("current", "target"), [(S.COMPLETED, S.RUNNING), (S.SKIPPED, S.QUEUED)]
    )
    def test_refuses_targets_no_path_reaches(
        self, current: StageStatus, target: StageStatus
    ) -> None:
        decision = route(current, target, via=S.RUNNING)

        assert not decision.accepted
        assert f"{current} cannot become {target}" == decision.reason

    def test_refuses_staying_put(self) -> None:
        assert route(S.RUNNING, S.RUNNING) == Decision(accepted=False, reason="already RUNNING")

    def test_retry_routes_only_along_retry_edges(self) -> None:
        assert route(S.FAILED, S.INIT, Intent.RETRY).path == (S.INIT,)
        assert not route(S.FAILED, S.QUEUED, Intent.RETRY).accepted

    def test_runs_are_admitted_at_creation(self) -> None:
        for status in RunStatus:
            assert route(None, status).accepted is (status in EXPECTED_RUN_CREATION)


class TestDecideRun:
    @pytest.mark.parametrize("pair", RUN_PAIRS, ids=_pair_id)
    def test_accepts_exactly_the_expected_edges(self, pair: tuple[RunStatus, RunStatus]) -> None:
        current, proposed = pair

        decision = decide(current, proposed)

        assert decision.accepted is (pair in EXPECTED_RUN_EDGES)

    @pytest.mark.parametrize("pair", RUN_PAIRS, ids=_pair_id)
    def test_retry_runs_failed_or_canceled_runs_again(
        self, pair: tuple[RunStatus, RunStatus]
    ) -> None:
        assert decide(*pair, Intent.RETRY).accepted is (pair in EXPECTED_RUN_RETRY_EDGES)

    @pytest.mark.parametrize("pair", RUN_PAIRS, ids=_pair_id)
    def test_refusals_carry_a_reason_and_acceptances_do_not(
        self, pair: tuple[RunStatus, RunStatus]
    ) -> None:
        decision = decide(*pair)

        if decision.accepted:
            assert decision.reason == ""
        else:
            assert decision.reason.strip() != ""

    @pytest.mark.parametrize("status", list(RunStatus), ids=str)
    def test_staying_put_is_refused_as_already(self, status: RunStatus) -> None:
        decision = decide(status, status)

        assert decision == Decision(accepted=False, reason=f"already {status.value}")

    @pytest.mark.parametrize(
        ("run_edge", "stage_edge"),
        [
            ((R.FAILED, R.RUNNING), (S.FAILED, S.RUNNING)),
            ((R.CANCELED, R.RUNNING), (S.CANCELED, S.RUNNING)),
            ((R.SUSPEND, R.RUNNING), (S.SUSPEND, S.RUNNING)),
        ],
        ids=["FAILED->RUNNING", "CANCELED->RUNNING", "SUSPEND->RUNNING"],
    )
    def test_run_statuses_use_the_run_table_despite_equal_spellings(
        self,
        run_edge: tuple[RunStatus, RunStatus],
        stage_edge: tuple[StageStatus, StageStatus],
    ) -> None:
        # StrEnum members with the same spelling compare equal; the verdicts must still differ.
        assert run_edge == stage_edge  # type: ignore[comparison-overlap]  # StrEnum equality

        assert decide(
            *run_edge, Intent.RETRY if run_edge[0] != R.SUSPEND else Intent.PROGRESS
        ).accepted
        assert not decide(*stage_edge, Intent.RETRY).accepted
        assert not decide(*stage_edge).accepted

    def test_expected_table_has_eleven_edges(self) -> None:
        assert len(EXPECTED_RUN_EDGES) == 11


class TestVocabularies:
    @pytest.mark.parametrize("status", list(RunStatus), ids=str)
    def test_run_status_wire_value_is_its_name(self, status: RunStatus) -> None:
        assert status.value == status.name

    @pytest.mark.parametrize("status", list(StageStatus), ids=str)
    def test_stage_status_wire_value_is_its_name(self, status: StageStatus) -> None:
        assert status.value == status.name

    def test_trigger_type_wire_values(self) -> None:
        assert [trigger.value for trigger in TriggerType] == [
            "Manual",
            "Scheduler",
            "MR",
            "Push",
            "CreateTag",
            "Issue",
            "Note",
        ]

    @pytest.mark.parametrize(
        ("enum", "count"),
        [(RunStatus, 7), (StageStatus, 14), (TriggerType, 7)],
        ids=["RunStatus", "StageStatus", "TriggerType"],
    )
    def test_vocabulary_sizes(self, enum: type[StrEnum], count: int) -> None:
        assert len(list(enum)) == count

    def test_run_status_names(self) -> None:
        assert {s.value for s in RunStatus} == {
            "COMPLETED",
            "RUNNING",
            "FAILED",
            "CANCELED",
            "PAUSED",
            "SUSPEND",
            "IGNORED",
        }

    def test_stage_status_names(self) -> None:
        assert {s.value for s in StageStatus} == {
            "INIT",
            "QUEUED",
            "RUNNING",
            "CANCELED",
            "COMPLETED",
            "FAILED",
            "SKIPPED",
            "IGNORED",
            "PAUSED",
            "SUSPEND",
            "ASYNC_RUNNING",
            "ASYNC_FAILED",
            "UNSELECTED",
            "REDISPATCH",
        }
