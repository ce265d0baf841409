"""Tests for `stageline.domain.waiting`: why a queued job waits, in words."""

import pytest

from stageline.domain.waiting import (
    AgentSeen,
    explain,
    format_seconds,
    gave_up,
    with_wait,
    without_wait,
)


def agent(pool: str, *labels: str) -> AgentSeen:
    return AgentSeen(name=f"a/{pool}-{'-'.join(labels)}", pool=pool, labels=frozenset(labels))


def test_no_agent_of_the_pool() -> None:
    wait = explain("gpu", ["linux", "cuda"], [agent("default", "cuda", "linux")])
    assert wait.hopeless
    assert wait.reason == (
        "waiting for an agent in pool 'gpu' with labels [cuda, linux]:"
        " no agent of that pool is connected"
    )


def test_agents_of_the_pool_without_the_labels() -> None:
    wait = explain("gpu", ["linux", "cuda"], [agent("gpu", "cuda"), agent("gpu", "linux")])
    assert wait.hopeless
    assert wait.reason == (
        "waiting for an agent in pool 'gpu' with labels [cuda, linux]: no connected agent has them"
    )


def test_no_labels_asked_for() -> None:
    assert explain("default", [], []).reason == (
        "waiting for an agent in pool 'default': no agent of that pool is connected"
    )


@pytest.mark.parametrize(
    ("agents", "said"),
    [
        ([agent("default")], "(1 connected, busy)"),
        ([agent("default", "x"), agent("default"), agent("other")], "(2 connected, all busy)"),
    ],
)
def test_fitting_agents_are_busy(agents: list[AgentSeen], said: str) -> None:
    wait = explain("default", [], agents)
    assert not wait.hopeless
    assert wait.reason == f"waiting for a free agent in pool 'default' {said}"


def test_a_waiting_reason_replaces_the_last_one_and_keeps_what_came_before() -> None:
    first = with_wait(None, "waiting for a free agent in pool 'p' (1 connected, busy)")
    assert first == "waiting for a free agent in pool 'p' (1 connected, busy)"
    assert with_wait(first, "waiting for x") == "waiting for x"
    assert without_wait(first) is None

    lost = "agent lost (a/host:1); redispatching"
    both = with_wait(lost, "waiting for x")
    assert both == "agent lost (a/host:1); redispatching; waiting for x"
    assert with_wait(both, "waiting for y") == "agent lost (a/host:1); redispatching; waiting for y"
    assert without_wait(both) == lost
    assert without_wait(lost) == lost
    assert without_wait(None) is None


@pytest.mark.parametrize(
    ("seconds", "text"), [(20, "20s"), (90, "90s"), (120, "2m"), (3600, "1h"), (5400, "90m")]
)
def test_durations_read_as_definitions_write_them(seconds: int, text: str) -> None:
    assert format_seconds(seconds) == text
    assert (
        gave_up(seconds, "waiting for x") == f"no agent could take it within {text}: waiting for x"
    )
