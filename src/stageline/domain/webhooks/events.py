"""What a delivery means: a triggering event with the build params it names, or `Ignored`."""

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from stageline.domain.build_params import BUILD_PARAM_KEYS
from stageline.domain.errors import InvalidInput
from stageline.domain.statuses import TriggerType


class Host(StrEnum):
    """Who sent a delivery; also the driver that reads it."""

    GITLAB = "gitlab"
    GITHUB = "github"
    GITEA = "gitea"
    """Gitea, Forgejo and Gogs: the same payloads."""
    CODEARTS = "codearts"
    """CodeArts Repo: GitLab-shaped payloads, told apart by the body's `object_kind`."""


class EventKind(StrEnum):
    """The trigger event types a pipeline enables (`triggers[].events[].type`)."""

    PUSH = "push"
    MERGE_REQUEST = "merge_request"
    TAG_PUSH = "tag_push"
    ISSUE = "issue"
    NOTE = "note"


TRIGGER_TYPES: Mapping[EventKind, TriggerType] = {
    EventKind.PUSH: TriggerType.PUSH,
    EventKind.MERGE_REQUEST: TriggerType.MR,
    EventKind.TAG_PUSH: TriggerType.CREATE_TAG,
    EventKind.ISSUE: TriggerType.ISSUE,
    EventKind.NOTE: TriggerType.NOTE,
}

MESSAGE_MAX_CHARS = 16384
"""A commit message, title or comment is kept up to this many characters (comments can be
long, and every run row carries its message)."""
USER_MAX_CHARS = 128
"""The executor name column's width."""


class InvalidPayload(InvalidInput):
    """A body that is not a JSON object (or a form with a `payload` field holding one): 400."""


@dataclass(frozen=True)
class Ignored:
    """A delivery that starts nothing, and why (answered to the host, which shows it)."""

    reason: str


@dataclass(frozen=True)
class TriggerEvent:
    """A delivery that may start a run."""

    host: Host
    kind: EventKind
    params: Mapping[str, str | None]
    """Every key of `BUILD_PARAM_KEYS`; `event_type` is `trigger_type`'s value."""
    branch: str | None
    """The branch a trigger's branch filter applies to: the pushed branch, or a merge
    request's target branch; None for other events (no filter applies)."""
    user: str | None
    """The host's user name of whoever caused the event, for the run's executor name."""

    @property
    def trigger_type(self) -> TriggerType:
        return TRIGGER_TYPES[self.kind]


def clean(value: Any, limit: int = MESSAGE_MAX_CHARS) -> str | None:
    """A payload value as build-param text: strings as they are (NUL characters, which no
    database column holds, removed; cut to `limit`), numbers as decimal text, anything else
    (None, booleans, objects, lists) None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return value.replace("\x00", "")[:limit]
    return None


class Doc:
    """Tolerant access to a JSON document: a missing key or a value of another type along a
    path gives None, never a KeyError or TypeError."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def get(self, *path: str) -> Any:
        node = self.value
        for key in path:
            if not isinstance(node, dict):
                return None
            node = node.get(key)
        return node

    def text(self, *path: str) -> str | None:
        return clean(self.get(*path))

    def doc(self, *path: str) -> "Doc":
        return Doc(self.get(*path))

    def items(self, *path: str) -> list["Doc"]:
        found = self.get(*path)
        return [Doc(item) for item in found] if isinstance(found, list) else []

    def truthy(self, *path: str) -> bool:
        return self.get(*path) is True

    def present(self, *path: str) -> bool:
        """The key at the end of `path` is there and not null."""
        return self.get(*path) is not None


def event(
    host: Host,
    kind: EventKind,
    *,
    branch: str | None = None,
    user: str | None = None,
    **params: str | None,
) -> TriggerEvent:
    """A TriggerEvent whose params are `params`, every other key of `BUILD_PARAM_KEYS` None."""
    unknown = set(params) - set(BUILD_PARAM_KEYS)
    assert not unknown, unknown
    full: dict[str, str | None] = dict.fromkeys(BUILD_PARAM_KEYS)
    full.update(params)
    full["event_type"] = TRIGGER_TYPES[kind].value
    return TriggerEvent(
        host=host,
        kind=kind,
        params=full,
        branch=branch,
        user=clean(user, USER_MAX_CHARS) or None,
    )
