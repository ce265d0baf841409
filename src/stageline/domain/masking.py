"""Hiding secret values in what a step reports: log lines, and its outputs' keys and values.

The agent masks before anything leaves the host; the server masks outputs again when it stores
them, so that an agent of an earlier version cannot leak a secret through an output's key.
"""

from collections.abc import Callable, Iterable

MASK = "***"


def masker(secrets: Iterable[str]) -> Callable[[str], str]:
    """A function that replaces every occurrence of a secret with `MASK`, literally.

    Logs are masked line by line, so a multi-line secret is masked one line at a time; longer
    values go first, so that a secret containing another is masked whole."""
    lines = {line for secret in secrets for line in secret.splitlines() if line.strip()}
    values = sorted(lines, key=len, reverse=True)

    def mask(text: str) -> str:
        for value in values:
            text = text.replace(value, MASK)
        return text

    return mask


def masked_outputs(
    outputs: Iterable[tuple[str, str]], mask: Callable[[str], str]
) -> list[tuple[str, str]]:
    """Outputs with keys and values masked. Two keys that differ only in a secret become one,
    in the first one's place with the last one's value, as a key written twice is."""
    found: dict[str, str] = {}
    for key, value in outputs:
        found[mask(key)] = mask(value)
    return list(found.items())
