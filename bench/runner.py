"""One benchmark run: generate, serve, drive, measure; `bench/report.py` turns it into figures.

Every figure comes from one run: the batch route, the limit route and the bare route are
measured against the same data and driver, the first two against the same server, so their
ratios mean something.
"""

import json
import os
import random
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import inspect
from sqlalchemy.engine import make_url

from bench import writers
from bench.dataset import Dataset, Generator
from bench.driver import DriverConfig, run_driver
from bench.repeats import Window, in_turn
from bench.report import summarize
from bench.servers import BareServer, HttpServer, StagelineServer
from stageline.settings import Settings
from stageline.store import migrate
from stageline.store.database import Database, normalize_url
from stageline.store.queries import runs as run_queries

BENCH_SECRET = "stageline-bench-secret-not-for-production"
REWARM_SECONDS = 0.5
"""Warm-up of every window after a measurement's first: new connections to a warm server."""
WRITER_SLACK_SECONDS = 0.5
"""Per read window, for the driver process to start: the writers outlast the reads by little."""


@dataclass
class BenchOptions:
    database_url: str
    scales: list[int]
    pipelines: int = 10_000
    stages: int = 4
    seed: int = 42
    batch: int = 100
    concurrency: int = 4
    duration_seconds: float = 10.0
    """Measured seconds of each read measurement, split over its `repeats` windows."""
    repeats: int = 3
    warmup_seconds: float = 2.0
    workers: int = 2
    writers: int = 1
    pin: bool = True
    output: Path = Path("bench/results/latest.json")
    command_line: str = ""
    log: list[str] = field(default_factory=list)

    @property
    def window_seconds(self) -> float:
        return self.duration_seconds / self.repeats

    @property
    def rewarm_seconds(self) -> float:
        return min(REWARM_SECONDS, self.warmup_seconds)

    def say(self, text: str) -> None:
        self.log.append(text)
        print(text, file=sys.stderr, flush=True)  # noqa: T201 - progress for the person waiting


def request_bodies(dataset: Dataset, *, batch: int, count: int, seed: int) -> list[str]:
    """`count` request bodies of `batch` IDs: 80 % with runs, 10 % never run, 10 % unknown."""
    rng = random.Random(seed)
    with_runs = round(batch * 0.8)
    never = round(batch * 0.1)
    bodies = []
    for _ in range(count):
        ids = rng.sample(dataset.run_pipeline_ids, min(with_runs, len(dataset.run_pipeline_ids)))
        ids += rng.sample(
            dataset.never_run_pipeline_ids, min(never, len(dataset.never_run_pipeline_ids))
        )
        ids += [f"{rng.getrandbits(128):032x}" for _ in range(batch - len(ids))]
        rng.shuffle(ids)
        bodies.append(json.dumps(ids))
    return bodies


def prepare_database(database_url: str) -> None:
    """An empty, migrated database: the bench wipes the one it is given."""
    url = make_url(normalize_url(database_url))
    if url.get_backend_name() == "sqlite" and url.database:
        for suffix in ("", "-wal", "-shm"):
            Path(url.database + suffix).unlink(missing_ok=True)
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    db = Database(database_url)
    if "alembic_version" in inspect(db.engine).get_table_names():
        migrate.downgrade(db.engine, "base")
    migrate.upgrade(db.engine)
    db.dispose()


def floor_lookup_us(
    database_url: str, dataset: Dataset, bodies: list[str], rounds: int = 300
) -> float:
    """The store-layer lookup of one body's IDs, no HTTP, as batch status makes it for the
    pipelines it does not hold: mean microseconds per lookup. (What it holds costs one tail of
    the change log per request instead.)"""
    db = Database(database_url)
    id_lists = [json.loads(body) for body in bodies]
    for ids in id_lists[:20]:
        with db.connection() as connection:
            run_queries.latest_runs_of(connection, pipeline_ids=ids)
    started = time.perf_counter()
    for index in range(rounds):
        with db.connection() as connection:
            run_queries.latest_runs_of(connection, pipeline_ids=id_lists[index % len(id_lists)])
    elapsed = time.perf_counter() - started
    db.dispose()
    return elapsed / rounds * 1e6


def _cpus() -> list[int]:
    return sorted(os.sched_getaffinity(0))


def _token(server: HttpServer, dataset: Dataset) -> str:
    identity = {
        "methods": ["password"],
        "password": {"user": {"name": dataset.user_name, "password": dataset.password}},
    }
    response = httpx.post(
        f"{server.base_url}/v3/auth/tokens", json={"auth": {"identity": identity}}, timeout=30
    )
    response.raise_for_status()
    return response.headers["X-Subject-Token"]


def run(options: BenchOptions) -> dict[str, Any]:
    cpus = _cpus()
    can_pin = options.pin and len(cpus) >= 2 and shutil.which("taskset") is not None
    server_cpu, driver_cpu = (cpus[0], cpus[1]) if can_pin else (None, None)
    database = make_url(normalize_url(options.database_url)).get_backend_name()
    options.say(
        f"database {database}; {options.workers} API workers; "
        + (
            f"servers pinned to CPU {server_cpu}, driver to CPU {driver_cpu}"
            if can_pin
            else "not pinned"
        )
    )
    prepare_database(options.database_url)
    settings = Settings(database_url=options.database_url, secret_key=BENCH_SECRET)
    db = Database(options.database_url)
    generator = Generator(db, settings, seed=options.seed, stages=options.stages)
    dataset = generator.create_pipelines(options.pipelines)
    bodies = request_bodies(dataset, batch=options.batch, count=256, seed=options.seed)
    work_dir = Path(tempfile.mkdtemp(prefix="stageline-bench-"))
    results: dict[str, Any] = {
        "command": options.command_line,
        "database": database,
        "workers": options.workers,
        "pinned": can_pin,
        "cpus": len(cpus),
        "pipelines": options.pipelines,
        "stages": options.stages,
        "batch": options.batch,
        "concurrency": options.concurrency,
        "duration_seconds": options.duration_seconds,
        "repeats": options.repeats,
        "window_seconds": round(options.window_seconds, 3),
        "seed": options.seed,
        "generation_seconds": {},
        "scales": {},
    }
    servers: list[HttpServer] = []
    try:
        server = StagelineServer(
            database_url=options.database_url,
            workers=options.workers,
            data_dir=work_dir,
            secret_key=BENCH_SECRET,
            cpu=server_cpu,
        )
        servers.append(server)
        token = _token(server, dataset)
        path = f"/v5/{dataset.project_id}/api/pipelines/status"

        def window(target: HttpServer, route: str, **auth: Any) -> Window:
            def measure(first: bool) -> dict[str, Any]:
                config = DriverConfig(
                    host="127.0.0.1",
                    port=target.port,
                    path=route,
                    bodies=bodies,
                    concurrency=options.concurrency,
                    duration_seconds=options.window_seconds,
                    warmup_seconds=options.warmup_seconds if first else options.rewarm_seconds,
                    **(auth or {"token": token}),
                )
                cpu_before = target.cpu_seconds()
                result = run_driver(config, cpu=driver_cpu)
                cpu = target.cpu_seconds() - cpu_before
                # Immune to a neighbour taking CPU time from the server, unlike req/s.
                result["server_cpu_us"] = cpu / max(result["all_requests"], 1) * 1e6
                return result

            return measure

        def measured(**windows: Window) -> dict[str, dict[str, Any]]:
            return in_turn(windows, options.repeats)

        for scale in options.scales:
            seconds = generator.grow_to(dataset, scale)
            results["generation_seconds"][str(scale)] = round(seconds, 1)
            options.say(f"{scale:>12,} runs generated in {seconds:.1f} s; measuring batch status")
            results["scales"][str(scale)] = measured(batch=window(server, path))["batch"]
        size = results["scales"][str(options.scales[-1])]["response_bytes"]
        limit = f"/v5/{dataset.project_id}/api/bench/limit?bytes={size}"
        options.say("measuring the limit route and the bare route, in turn")
        bare = BareServer(workers=options.workers, log_dir=work_dir, cpu=server_cpu)
        servers.append(bare)
        results |= measured(
            limit=window(server, limit),
            bare=window(bare, f"/v5/{dataset.project_id}/api/bench/bare?bytes={size}"),
        )
        bare.stop()
        servers.remove(bare)
        options.say("measuring AK/SK signing and the store floor")
        signed: dict[str, str] = {"ak": dataset.ak, "sk": dataset.sk}
        results |= measured(
            batch_aksk=window(server, path, **signed),
            limit_aksk=window(server, limit, **signed),
        )
        results["floor_lookup_us"] = round(
            floor_lookup_us(options.database_url, dataset, bodies), 1
        )
        results["rss_mb_per_worker"] = [round(mb, 1) for mb in server.worker_rss_mb()]
        options.say("measuring reads under the write load")
        own = writers.writer_set(options.database_url, BENCH_SECRET, options.stages, 200)
        alone = own.start(options.writers, options.duration_seconds)
        results["writers_alone"] = [writers.result(w) for w in alone]
        reading_seconds = (
            options.warmup_seconds
            + (options.repeats - 1) * options.rewarm_seconds
            + options.duration_seconds
            + options.repeats * WRITER_SLACK_SECONDS
        )
        busy = own.start(options.writers, reading_seconds)
        results |= measured(under_writes=window(server, path))
        results["writers"] = [writers.result(w) for w in busy]
    finally:
        for running in servers:
            running.stop()
        db.dispose()
        shutil.rmtree(work_dir, ignore_errors=True)
    return summarize(results)
