"""Why a queued job still waits for a build agent, said in words, and when it stops waiting.

A job waits for an agent of its pool that has all its labels. Who is connected is the caller's
knowledge (agents seen lately); this module only compares and words it, so that the sweep, the
claim and the tests agree on every sentence.
"""

from collections.abc import Collection, Iterable
from dataclasses import dataclass

WAITING = "waiting for "
"""How every waiting reason starts; a job's message keeps what came before it (see `with_wait`)."""
_JOINER = "; "


@dataclass(frozen=True)
class AgentSeen:
    """A build agent seen lately: the pool it claims from and the labels it has."""

    name: str
    pool: str
    labels: frozenset[str]

    def can_take(self, pool: str, labels: Collection[str]) -> bool:
        return self.pool == pool and self.labels.issuperset(labels)


@dataclass(frozen=True)
class Wait:
    """Why a job waits: `reason` in words, and how many connected agents could take it."""

    reason: str
    able: int

    @property
    def hopeless(self) -> bool:
        """No connected agent could ever take the job: only a new agent would end the wait."""
        return self.able == 0


def explain(pool: str, labels: Collection[str], agents: Iterable[AgentSeen]) -> Wait:
    """Why a job asking for `pool` and `labels` is not claimed, given the connected `agents`."""
    wanted = sorted(set(labels))
    asked = f"pool '{pool}'" + (f" with labels [{', '.join(wanted)}]" if wanted else "")
    in_pool = [agent for agent in agents if agent.pool == pool]
    able = sum(agent.can_take(pool, wanted) for agent in in_pool)
    if able:
        busy = "busy" if able == 1 else "all busy"
        return Wait(f"{WAITING}a free agent in {asked} ({able} connected, {busy})", able)
    if not in_pool:
        return Wait(f"{WAITING}an agent in {asked}: no agent of that pool is connected", 0)
    return Wait(f"{WAITING}an agent in {asked}: no connected agent has them", 0)


def without_wait(message: str | None) -> str | None:
    """`message` without its waiting reason: what a job says once an agent took it."""
    if message is None or message.startswith(WAITING):
        return None
    return message.partition(_JOINER + WAITING)[0]


def with_wait(message: str | None, reason: str) -> str:
    """`message` saying `reason` instead of any earlier one; what it said before (such as why
    the job was taken from a lost agent) is kept in front."""
    before = without_wait(message)
    return f"{before}{_JOINER}{reason}" if before else reason


def gave_up(limit_seconds: int, reason: str) -> str:
    """The message of a job that failed because no agent could take it in time."""
    return f"no agent could take it within {format_seconds(limit_seconds)}: {reason}"


def format_seconds(seconds: int) -> str:
    """`20s`, `90s`, `30m`, `2h`: in the largest whole unit, as definitions write durations."""
    if seconds and seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds and seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"
