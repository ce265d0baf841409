"""Repeated read measurements and their medians.

On a shared two-CPU machine one window of a few seconds can land on a neighbour's burst, and a
ratio of two such windows then says more about the neighbour than about the code. So every read
measurement is several short windows, reported by the median of each figure, with the windows
kept beside it; measurements that are compared with each other (the limit and the bare route)
take their windows in turn, so that a slow minute slows both.
"""

import statistics
from collections.abc import Callable
from typing import Any

MEDIAN_FIGURES = ("rps", "p50_ms", "p90_ms", "p99_ms", "server_cpu_us")

Window = Callable[[bool], dict[str, Any]]
"""Measures one window; its argument says whether this is the measurement's first window
(which warms the server up for longer)."""


def combine(windows: list[dict[str, Any]]) -> dict[str, Any]:
    """One row from its windows: the median of each rate, latency and CPU figure (taken figure by
    figure), the sums of the counts and seconds, and the windows themselves under `repeats`."""
    row: dict[str, Any] = {
        "requests": sum(w["requests"] for w in windows),
        "errors": sum(w["errors"] for w in windows),
        "seconds": round(sum(w["seconds"] for w in windows), 3),
        "all_requests": sum(w["all_requests"] for w in windows),
    }
    for figure in MEDIAN_FIGURES:
        row[figure] = statistics.median(w[figure] for w in windows)
    row["response_bytes"] = max(w["response_bytes"] for w in windows)
    row["repeats"] = windows
    return row


def in_turn(measurements: dict[str, Window], repeats: int) -> dict[str, dict[str, Any]]:
    """`repeats` windows of every measurement, taken round-robin; one combined row for each."""
    windows: dict[str, list[dict[str, Any]]] = {name: [] for name in measurements}
    for round_ in range(repeats):
        for name, window in measurements.items():
            windows[name].append(window(round_ == 0))
    return {name: combine(taken) for name, taken in windows.items()}


def ratios(numerator: dict[str, Any], denominator: dict[str, Any]) -> list[float]:
    """req/s of `numerator` over `denominator`, window by window (for rows taken in turn)."""
    return [
        round(n["rps"] / d["rps"], 3) if d["rps"] else 0.0
        for n, d in zip(numerator["repeats"], denominator["repeats"], strict=True)
    ]
