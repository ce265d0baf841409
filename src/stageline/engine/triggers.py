"""Pipeline triggers as stored: each gets a webhook (`hook_id`) and a secret
(`security_token`) generated here, the secret sealed with the vault like a secret variable.

An update keeps a trigger's hook and secret when the client sends its `hook_id` back (as
ShowPipelineDetail showed it) or, failing that, names the same `git_url` as a stored trigger:
the user never has to paste a new secret into the forge because the pipeline was edited. A
trigger removed and added again in a later update gets a new hook and secret (which is how a
secret is replaced).
"""

import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from stageline.auth.vault import Vault
from stageline.domain.errors import InvalidInput, excerpt
from stageline.domain.webhooks.triggers import FILTERED_KINDS
from stageline.schemas.pipelines import PipelineTrigger
from stageline.store.ids import new_id

TOKEN_BYTES = 32
"""Random bytes in a new security_token (43 URL-safe characters)."""
SERVER_FIELDS = ("hook_id", "security_token", "callback_url")
"""What the server fills in; the client's values only name a trigger to keep."""
FILTERED_TYPES = frozenset(kind.value for kind in FILTERED_KINDS)


def _check(index: int, trigger: PipelineTrigger) -> None:
    seen: set[str] = set()
    for position, setting in enumerate(trigger.events):
        where = f"triggers[{index}].events[{position}]"
        if setting.type in seen:
            raise InvalidInput(f"{where}.type: event type '{setting.type}' is listed twice")
        seen.add(setting.type)
        if setting.branches and setting.type not in FILTERED_TYPES:
            raise InvalidInput(
                f"{where}.branches: only push and merge_request events take a branch filter"
            )


def stored_triggers(
    given: Sequence[PipelineTrigger], stored: Sequence[Mapping[str, Any]], vault: Vault
) -> list[dict[str, Any]]:
    """The triggers to store: validated, each with its hook ID and sealed secret (kept from
    `stored` where the trigger is the same, else new). InvalidInput names the field."""
    previous = [t for t in stored if t.get("hook_id") and t.get("security_token")]
    by_hook = {t["hook_id"]: t for t in previous}
    taken: set[str] = set()
    urls: set[str] = set()
    result = []
    for index, trigger in enumerate(given):
        _check(index, trigger)
        if trigger.git_url in urls:
            raise InvalidInput(
                f"triggers[{index}].git_url: another trigger already names"
                f" '{excerpt(trigger.git_url)}'"
            )
        urls.add(trigger.git_url)
        kept = by_hook.get(trigger.hook_id or "")
        if kept is None or kept["hook_id"] in taken:
            kept = next(
                (
                    t
                    for t in previous
                    if t.get("git_url") == trigger.git_url and t["hook_id"] not in taken
                ),
                None,
            )
        if kept is not None:
            taken.add(kept["hook_id"])
            hook_id, token = kept["hook_id"], vault.reseal(kept["security_token"])
        else:
            hook_id, token = new_id(), vault.seal(secrets.token_urlsafe(TOKEN_BYTES))
        fields = trigger.model_dump(exclude_none=True, exclude=set(SERVER_FIELDS))
        result.append({**fields, "hook_id": hook_id, "security_token": token})
    return result


def shown_triggers(stored: Sequence[Mapping[str, Any]], vault: Vault) -> list[dict[str, Any]]:
    """The triggers with their secrets opened, for the pipeline's administrators to paste into
    the forge's webhook form."""
    return [
        {**t, "security_token": vault.open(t["security_token"])}
        if isinstance(t.get("security_token"), str)
        else dict(t)
        for t in stored
    ]


def hook_ids(stored: Sequence[Mapping[str, Any]]) -> list[str]:
    return [t["hook_id"] for t in stored if isinstance(t.get("hook_id"), str)]
