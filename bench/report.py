"""The results of one run: ratios and targets, the printed table, the JSON files.

Every ratio is taken between rows of the same run (same server, data and driver), each row the
median of its windows (`bench/repeats.py`).
"""

import json
from pathlib import Path
from typing import Any

from bench.repeats import ratios

TARGETS = {
    "batch_to_limit": (">=", 0.8),
    "limit_to_bare": (">=", 0.8),
    "p99_growth": ("<=", 1.2),
    "transitions_per_s": (">=", 1000.0),
    "read_p99_under_writes_ratio": ("<=", 1.5),
    "rss_mb": ("<=", 300.0),
}


def summarize(results: dict[str, Any]) -> dict[str, Any]:
    """Add the headline figures, the ratios and the verdict on each target to `results`."""
    scales = results["scales"]
    smallest, largest = scales[min(scales, key=int)], scales[max(scales, key=int)]
    results["batch_rps"] = round(largest["rps"], 1)
    results["limit_rps"] = round(results["limit"]["rps"], 1)
    results["bare_rps"] = round(results["bare"]["rps"], 1)
    results["batch_to_limit"] = round(largest["rps"] / results["limit"]["rps"], 3)
    results["limit_to_bare"] = round(results["limit"]["rps"] / results["bare"]["rps"], 3)
    results["limit_to_bare_per_repeat"] = ratios(results["limit"], results["bare"])
    results["limit_to_bare_cpu"] = round(
        results["bare"]["server_cpu_us"] / results["limit"]["server_cpu_us"], 3
    )
    results["p99_ms"] = {scale: round(r["p99_ms"], 2) for scale, r in scales.items()}
    results["p50_ms"] = {scale: round(r["p50_ms"], 2) for scale, r in scales.items()}
    results["p99_growth"] = round(largest["p99_ms"] / smallest["p99_ms"], 3)
    results["transitions_per_s"] = round(sum(w["transitions_per_s"] for w in results["writers"]), 1)
    results["transitions_per_s_alone"] = round(
        sum(w["transitions_per_s"] for w in results["writers_alone"]), 1
    )
    results["read_p99_under_writes_ratio"] = round(
        results["under_writes"]["p99_ms"] / largest["p99_ms"], 3
    )
    results["rss_mb"] = max(results["rss_mb_per_worker"], default=0.0)
    results["targets"] = {
        name: {
            "target": f"{op} {limit}",
            "met": (results[name] >= limit) if op == ">=" else (results[name] <= limit),
        }
        for name, (op, limit) in TARGETS.items()
    }
    return results


def table(results: dict[str, Any]) -> str:
    pinning = "server and driver pinned to separate CPUs" if results["pinned"] else "not pinned"
    lines = [
        f"Stageline batch-status benchmark: {results['database']}, "
        f"{results['workers']} API workers, {pinning}",
        f"{results['pipelines']:,} pipelines x {results['stages']} stages; "
        f"batch of {results['batch']} IDs (80 % with runs, 10 % never run, 10 % unknown); "
        f"{results['concurrency']} connections; each row the median of {results['repeats']} "
        f"windows of {results['window_seconds']:.1f} s",
        "",
        f"{'what':<34}{'req/s':>9}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'errors':>8}"
        f"{'server CPU us/req':>19}",
    ]

    def row(name: str, r: dict[str, Any]) -> None:
        lines.append(
            f"{name:<34}{r['rps']:>9.0f}{r['p50_ms']:>9.2f}{r['p90_ms']:>9.2f}"
            f"{r['p99_ms']:>9.2f}{r['errors']:>8}{r['server_cpu_us']:>19.0f}"
        )

    for scale, r in results["scales"].items():
        row(f"batch, token, {int(scale):,} runs", r)
    row("limit route, token", results["limit"])
    row("bare FastAPI route, no auth", results["bare"])
    row("batch, AK/SK", results["batch_aksk"])
    row("limit route, AK/SK", results["limit_aksk"])
    row("batch, token, under write load", results["under_writes"])
    generated = results["generation_seconds"].items()
    writer_runs = sum(w["runs_completed"] for w in results["writers"])
    per_repeat = ", ".join(f"{r:.3f}" for r in results["limit_to_bare_per_repeat"])
    lines += [
        "",
        f"store-layer lookup of {results['batch']} IDs (no HTTP): "
        f"{results['floor_lookup_us']:.0f} us",
        "generation: " + ", ".join(f"{int(s):,} runs in {t} s" for s, t in generated),
        f"write load: {results['transitions_per_s']:.0f} stage transitions/s under the read "
        f"load ({writer_runs} runs through the engine); "
        f"{results['transitions_per_s_alone']:.0f}/s with no read load",
        f"worker RSS: {', '.join(f'{mb:.0f} MB' for mb in results['rss_mb_per_worker'])}",
        f"limit / bare, window by window: {per_repeat}; by server CPU per request: "
        f"{results['limit_to_bare_cpu']}",
        "",
        "targets:",
    ]
    for name, verdict in results["targets"].items():
        outcome = "met" if verdict["met"] else "MISSED"
        lines.append(f"  {name:<30} {results[name]!s:>10}   {verdict['target']:<9} {outcome}")
    return "\n".join(lines)


def write_results(results: dict[str, Any], output: Path) -> None:
    """`output` (bench/results/latest.json by default) and `<database>-latest.json` beside it."""
    output.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(results, indent=2) + "\n"
    output.write_text(text)
    (output.parent / f"{results['database']}-latest.json").write_text(text)
