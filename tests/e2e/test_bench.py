"""The relocated benchmark (`python -m bench`, what `make bench` runs) end to end on a tiny
dataset: it runs from the repository root and its results are well formed.

No figure is judged here (speed is measured by the benchmark, never asserted by tests).
"""

import json
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from tests.databases import sibling_database

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[2]
REPEATS = 3
RESULT_KEYS = {
    "batch_rps",
    "limit_rps",
    "bare_rps",
    "batch_to_limit",
    "limit_to_bare",
    "limit_to_bare_per_repeat",
    "limit_to_bare_cpu",
    "p99_ms",
    "p99_growth",
    "transitions_per_s",
    "read_p99_under_writes_ratio",
    "rss_mb",
    "database",
    "workers",
    "command",
    "floor_lookup_us",
    "repeats",
    "targets",
}
READ_ROWS = ("limit", "bare", "batch_aksk", "limit_aksk", "under_writes")


def test_the_benchmark_runs_end_to_end_and_writes_its_results(
    database_url: str, tmp_path: Path
) -> None:
    output = tmp_path / "results" / "latest.json"
    with sibling_database(database_url, tmp_path) as url:
        finished = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench",
                "--database-url",
                url,
                "--pipelines",
                "40",
                "--scales",
                "40,120",
                "--duration",
                "0.6",
                "--repeats",
                str(REPEATS),
                "--concurrency",
                "2",
                "--output",
                str(output),
            ],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    assert finished.returncode == 0, finished.stderr[-3000:]
    results = json.loads(output.read_text())
    assert set(results) >= RESULT_KEYS
    assert set(results["p99_ms"]) == {"40", "120"}
    assert results["database"] == ("sqlite" if database_url.startswith("sqlite") else "postgresql")
    assert results["workers"] == 2
    assert results["repeats"] == REPEATS
    assert len(results["limit_to_bare_per_repeat"]) == REPEATS
    assert set(results["targets"]) >= {"batch_to_limit", "limit_to_bare"}
    for row in [*results["scales"].values(), *(results[name] for name in READ_ROWS)]:
        assert row["requests"] > 0
        assert row["errors"] == 0
        windows = row["repeats"]
        assert len(windows) == REPEATS
        assert row["requests"] == sum(window["requests"] for window in windows)
        assert row["rps"] == statistics.median(window["rps"] for window in windows)
        assert row["server_cpu_us"] >= 0
    assert results["bare"]["response_bytes"] == results["limit"]["response_bytes"]
    assert results["transitions_per_s"] > 0
    assert all(mb > 0 for mb in results["rss_mb_per_worker"])
    assert "batch, token, 120 runs" in finished.stdout
    assert "bare FastAPI route, no auth" in finished.stdout
    assert (output.parent / f"{results['database']}-latest.json").exists()
