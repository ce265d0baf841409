"""Whether a pipeline's trigger takes an event: the event type enabled, the branch filter met.

A trigger is stored as `{git_url, git_type, events: [{type, enable, branches?}], hook_id, …}`.
`branches` holds names or `fnmatch` globs (`main`, `release/*`): for a push, the pushed branch
must match one; for a merge request, its target branch. No `branches` (or an empty list) means
every branch. Matching is case-sensitive, and `*` also matches `/`.
"""

from collections.abc import Mapping, Sequence
from fnmatch import fnmatchcase
from typing import Any

from stageline.domain.webhooks.events import EventKind, Ignored, TriggerEvent

FILTERED_KINDS = frozenset({EventKind.PUSH, EventKind.MERGE_REQUEST})
"""The events a branch filter applies to."""


def branch_matches(branch: str, patterns: Sequence[str]) -> bool:
    return any(fnmatchcase(branch, pattern) for pattern in patterns)


def admits(trigger: Mapping[str, Any], found: TriggerEvent) -> Ignored | None:
    """None when the trigger starts a run for `found`; otherwise why not."""
    events = trigger.get("events") or []
    setting = next(
        (e for e in events if isinstance(e, Mapping) and e.get("type") == found.kind.value), None
    )
    if setting is None or not setting.get("enable"):
        return Ignored(f"the trigger does not enable {found.kind.value} events")
    patterns = setting.get("branches") or []
    filtered = found.kind in FILTERED_KINDS and bool(patterns)
    if filtered and (found.branch is None or not branch_matches(found.branch, patterns)):
        which = "target branch" if found.kind is EventKind.MERGE_REQUEST else "branch"
        return Ignored(f"{which} {found.branch!r} matches none of the trigger's branches")
    return None
