"""`python -m bench [options]`: parse the options, run the benchmark, print and save the results.

Run it from the repository root (`make bench` does): the results land in `bench/results/`.
"""

import argparse
import shlex
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from bench.report import table, write_results
from bench.runner import BenchOptions, run

DEFAULT_SCALES = (10_000, 100_000, 1_000_000)
LARGE_SCALE = 10_000_000


def _at_least(low: float, kind: Callable[[str], float] = int) -> Callable[[str], float]:
    def parse(text: str) -> float:
        value = kind(text)
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}")
        return value

    return parse


def _scales(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError("comma-separated run counts, e.g. 10000,100000") from None


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="Measure batch status: scale series, limit and bare routes, AK/SK, "
        "store floor, write load, RSS.",
    )
    p.add_argument(
        "--database-url",
        help="database to WIPE and fill (default: SQLite under .stageline/bench)",
    )
    p.add_argument("--large", action="store_true", help="add 10^7 runs to the scale series")
    p.add_argument(
        "--scales", type=_scales, help="comma-separated run counts, e.g. 10000,100000,1000000"
    )
    p.add_argument("--pipelines", type=_at_least(10), default=10_000)
    p.add_argument("--stages", type=_at_least(1), default=4)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--batch", type=_at_least(10), default=100, help="IDs per request")
    p.add_argument("--concurrency", type=_at_least(1), default=4, help="connections")
    p.add_argument(
        "--duration",
        type=_at_least(0.1, float),
        default=10.0,
        help="measured seconds of each read measurement, split over its repeats (default 10)",
    )
    p.add_argument(
        "--repeats",
        type=_at_least(1),
        default=3,
        help="windows per read measurement; each row is their median (default 3)",
    )
    p.add_argument("--workers", type=_at_least(1), default=2, help="API worker processes")
    p.add_argument("--writers", type=_at_least(1), default=1, help="write-load processes")
    p.add_argument(
        "--pin",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="pin the servers and the driver to separate CPUs (default: on)",
    )
    p.add_argument("--output", type=Path, default=Path("bench/results/latest.json"))
    return p


def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    url = args.database_url or f"sqlite:///{Path('.stageline/bench/bench.db').resolve()}"
    series = list(args.scales or DEFAULT_SCALES)
    if args.large:
        series.append(LARGE_SCALE)
    options = BenchOptions(
        database_url=url,
        scales=series,
        pipelines=args.pipelines,
        stages=args.stages,
        seed=args.seed,
        batch=args.batch,
        concurrency=args.concurrency,
        duration_seconds=args.duration,
        repeats=args.repeats,
        warmup_seconds=min(2.0, args.duration / 2),
        workers=args.workers,
        writers=args.writers,
        pin=args.pin,
        output=args.output,
        command_line=shlex.join(
            ["python", "-m", "bench", *(sys.argv[1:] if argv is None else argv)]
        ),
    )
    results = run(options)
    write_results(results, args.output)
    print(table(results))  # noqa: T201 - the report is this command's output
    print(f"\nresults: {args.output}")  # noqa: T201
