"""Git refs and object names as hosts send them."""

import re

ZERO_SHA = "0" * 40
"""In `before`: the ref was created; in `after`: it was deleted (every host)."""
BRANCH_PREFIX = "refs/heads/"
TAG_PREFIX = "refs/tags/"
_COMMIT = re.compile(r"^[0-9a-f]{40}$")


def branch_of(ref: str | None) -> str | None:
    """`refs/heads/<name>` → `<name>` (which may hold `/`); anything else None."""
    if ref and ref.startswith(BRANCH_PREFIX) and len(ref) > len(BRANCH_PREFIX):
        return ref[len(BRANCH_PREFIX) :]
    return None


def tag_of(ref: str | None) -> str | None:
    """`refs/tags/<name>` → `<name>`; anything else None."""
    if ref and ref.startswith(TAG_PREFIX) and len(ref) > len(TAG_PREFIX):
        return ref[len(TAG_PREFIX) :]
    return None


def short(ref: str | None, prefix: str) -> str | None:
    """A ref that hosts send short (`v1.0`) but might send long (`refs/tags/v1.0`): short."""
    if not ref:
        return None
    return ref.removeprefix(prefix) or None


def commit(*candidates: str | None) -> str | None:
    """The first candidate that is a commit ID (40 lowercase hex digits, not all zeros), or
    None: a run without one builds the head of its branch."""
    for candidate in candidates:
        if candidate and candidate != ZERO_SHA and _COMMIT.fullmatch(candidate):
            return candidate
    return None


def is_zero(sha: str | None) -> bool:
    return sha == ZERO_SHA
