"""The query of the status feeds (POST and GET batch status): `branch=` and `status=`.

Parsed by hand from the query string, and only when there is one: the plain POST of batch
status, the benchmarked path, pays nothing for filters it does not use.
"""

from collections.abc import Mapping
from dataclasses import dataclass

from stageline.domain.errors import InvalidInput, excerpt
from stageline.domain.statuses import RunStatus

BRANCH_MAX_CHARS = 255
"""As wide as the column that records the branch a run built."""
_RUN_STATUSES = ", ".join(RunStatus)


@dataclass(frozen=True)
class FeedFilters:
    branch: str | None = None
    """Answer each pipeline's latest run on this branch (its `build_params.target_branch`)."""
    statuses: frozenset[str] | None = None
    """Only pipelines whose latest run (on the branch) is in one of these."""


NO_FILTERS = FeedFilters()


def parse_feed_filters(query: Mapping[str, str]) -> FeedFilters:
    """`branch` and `status` of a query; `InvalidInput` for an empty or too long branch, or a
    status that is not a run status."""
    branch = query.get("branch")
    if branch is not None and not 0 < len(branch) <= BRANCH_MAX_CHARS:
        raise InvalidInput(f"branch: 1 to {BRANCH_MAX_CHARS} characters")
    text = query.get("status")
    statuses = None
    if text is not None:
        names = text.split(",")
        for index, name in enumerate(names):
            if name not in RunStatus.__members__:
                raise InvalidInput(
                    f"status[{index}]: {excerpt(name)!r} is not a run status ({_RUN_STATUSES})"
                )
        statuses = frozenset(names)
    return FeedFilters(branch, statuses)
