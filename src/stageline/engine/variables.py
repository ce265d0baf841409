"""Pipeline and run variables as stored: secret values sealed on the way in, and opened only
for the agent that runs a job (and, in memory, for conditions and the masking of outputs).

Variables are stored as `[{name, value, is_secret, …}]`; the value of a secret one is sealed
(`auth.vault`), except an empty value, which stays empty (it hides nothing and shows as empty).
"""

from collections.abc import Iterable, Mapping
from typing import Any

from stageline.auth.vault import Vault


class NoVault(RuntimeError):
    """An engine built without a vault met a secret value: it refuses rather than store or send
    it in clear."""


def _required(vault: Vault | None) -> Vault:
    if vault is None:
        raise NoVault("a secret variable value needs a vault, and this engine has none")
    return vault


def sealed(variable: dict[str, Any], vault: Vault | None) -> dict[str, Any]:
    """The variable with its value sealed, if it is a secret with a value given in clear."""
    if not variable.get("is_secret") or not variable.get("value"):
        return variable
    return {**variable, "value": _required(vault).seal(variable["value"])}


def resealed(variable: dict[str, Any], vault: Vault | None) -> dict[str, Any]:
    """The variable with its stored value sealed under the current key: a value an earlier
    version stored in clear is sealed as it is carried into a new row."""
    if not variable.get("is_secret") or not variable.get("value"):
        return variable
    return {**variable, "value": _required(vault).reseal(variable["value"])}


def opened(variables: Iterable[Mapping[str, Any]], vault: Vault | None) -> dict[str, str]:
    """Every variable's value by name, secret ones opened."""
    return {
        v["name"]: _required(vault).open(v["value"])
        if v.get("is_secret") and v.get("value")
        else v.get("value") or ""
        for v in variables
    }


def secret_values(variables: Iterable[Mapping[str, Any]], vault: Vault | None) -> tuple[str, ...]:
    """The opened values of the secret variables that have one: what logs and outputs mask."""
    return tuple(
        _required(vault).open(v["value"]) for v in variables if v.get("is_secret") and v["value"]
    )
