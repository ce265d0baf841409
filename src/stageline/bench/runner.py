"""`stageline bench`: generate, serve, drive, measure, report.

Every figure comes from one run of this module: the batch route and the limit route are
measured against the same server, data and driver, so their ratio means something.
"""

import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import inspect
from sqlalchemy.engine import make_url

from stageline.bench.dataset import Dataset, Generator
from stageline.bench.driver import DriverConfig, run_driver
from stageline.bench.writer import WriterConfig
from stageline.settings import Settings
from stageline.store import migrate
from stageline.store.database import Database, normalize_url
from stageline.store.queries import runs as run_queries

BENCH_SECRET = "stageline-bench-secret-not-for-production"
TARGETS = {
    "batch_to_limit": (">=", 0.8),
    "p99_growth": ("<=", 1.2),
    "transitions_per_s": (">=", 1000.0),
    "read_p99_under_writes_ratio": ("<=", 1.5),
    "rss_mb": ("<=", 300.0),
}


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
    warmup_seconds: float = 2.0
    workers: int = 2
    writers: int = 1
    pin: bool = True
    output: Path = Path("bench/results/latest.json")
    command_line: str = ""
    log: list[str] = field(default_factory=list)

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


def _cpus() -> list[int]:
    return sorted(os.sched_getaffinity(0))


class Server:
    """`stageline serve --workers N --no-agent --bench-routes`, optionally pinned to a CPU."""

    def __init__(self, options: BenchOptions, data_dir: Path, cpu: int | None) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        command = [sys.executable, "-m", "stageline", "serve", "--port", str(self.port)]
        command += ["--database-url", options.database_url, "--workers", str(options.workers)]
        command += ["--no-agent", "--bench-routes"]
        if cpu is not None:
            command = ["taskset", "-c", str(cpu), *command]
        env = {
            **os.environ,
            "STAGELINE_SECRET_KEY": BENCH_SECRET,
            "STAGELINE_DATA_DIR": str(data_dir),
        }
        self.log_path = data_dir / "server.log"
        data_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log_file:
            self.process = subprocess.Popen(
                command, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.base_url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.base_url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    "the server did not start:\n" + self.log_path.read_text()[-3000:]
                )
            time.sleep(0.2)
        time.sleep(1.0)  # let every worker finish starting, not just the first to answer

    def worker_rss_mb(self) -> list[float]:
        """Resident memory of every Python process under the server (the API workers)."""
        sizes = []
        for pid in _descendants(self.process.pid):
            try:
                status = Path(f"/proc/{pid}/status").read_text()
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"python" not in cmdline and b"stageline" not in cmdline:
                continue
            for line in status.splitlines():
                if line.startswith("VmRSS:"):
                    sizes.append(int(line.split()[1]) / 1024)
        return sizes

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def _descendants(pid: int) -> list[int]:
    found = []
    pending = [pid]
    while pending:
        current = pending.pop()
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                children = [int(c) for c in task.read_text().split()]
                found.extend(children)
                pending.extend(children)
    return found


def prepare_database(options: BenchOptions) -> None:
    """An empty, migrated database: the bench wipes the one it is given."""
    url = make_url(normalize_url(options.database_url))
    if url.get_backend_name() == "sqlite" and url.database:
        for suffix in ("", "-wal", "-shm"):
            Path(url.database + suffix).unlink(missing_ok=True)
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    db = Database(options.database_url)
    if "alembic_version" in inspect(db.engine).get_table_names():
        migrate.downgrade(db.engine, "base")
    migrate.upgrade(db.engine)
    db.dispose()


def floor_lookup_us(
    database_url: str, dataset: Dataset, bodies: list[str], rounds: int = 300
) -> float:
    """The store-layer lookup of one body's IDs, no HTTP: mean microseconds per lookup."""
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


def _writer_process(config: WriterConfig, cpu: int | None) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "stageline.bench.writer"]
    if cpu is not None:
        command = ["taskset", "-c", str(cpu), *command]
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert process.stdin is not None
    process.stdin.write(json.dumps(asdict(config)))
    process.stdin.close()
    return process


@dataclass
class WriterSet:
    project_id: str
    user_id: str
    pipeline_ids: list[str]


def _writer_result(process: subprocess.Popen[str]) -> dict[str, Any]:
    assert process.stdout is not None
    output = process.stdout.read()
    if process.wait() != 0:
        raise RuntimeError(f"a writer process failed with {process.returncode}")
    result: dict[str, Any] = json.loads(output)
    return result


def writer_set(database_url: str, stages: int, count: int) -> WriterSet:
    """Pipelines of their own for the writers, so that reads and writes touch different rows."""
    db = Database(database_url)
    settings = Settings(database_url=database_url, secret_key=BENCH_SECRET)
    generator = Generator(db, settings, seed=7, stages=stages)
    made = generator.create_pipelines(count)
    db.dispose()
    pipeline_ids = made.run_pipeline_ids + made.never_run_pipeline_ids
    return WriterSet(made.project_id, generator.executor_id, pipeline_ids)


def run(options: BenchOptions) -> dict[str, Any]:
    cpus = _cpus()
    can_pin = options.pin and len(cpus) >= 2 and shutil.which("taskset") is not None
    server_cpu, driver_cpu = (cpus[0], cpus[1]) if can_pin else (None, None)
    database = make_url(normalize_url(options.database_url)).get_backend_name()
    options.say(
        f"database {database}; {options.workers} API workers; "
        + (
            f"server pinned to CPU {server_cpu}, driver to CPU {driver_cpu}"
            if can_pin
            else "not pinned"
        )
    )
    prepare_database(options)
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
        "seed": options.seed,
        "generation_seconds": {},
        "scales": {},
    }
    server = Server(options, work_dir, server_cpu)
    try:
        token = httpx.post(
            f"{server.base_url}/v3/auth/tokens",
            json={
                "auth": {
                    "identity": {
                        "methods": ["password"],
                        "password": {
                            "user": {"name": dataset.user_name, "password": dataset.password}
                        },
                    }
                }
            },
        ).headers["X-Subject-Token"]
        path = f"/v5/{dataset.project_id}/api/pipelines/status"

        def drive(route: str, **auth: Any) -> dict[str, Any]:
            config = DriverConfig(
                host="127.0.0.1",
                port=server.port,
                path=route,
                bodies=bodies,
                concurrency=options.concurrency,
                duration_seconds=options.duration_seconds,
                warmup_seconds=options.warmup_seconds,
                **(auth or {"token": token}),
            )
            return run_driver(config, cpu=driver_cpu)

        for scale in options.scales:
            seconds = generator.grow_to(dataset, scale)
            results["generation_seconds"][str(scale)] = round(seconds, 1)
            options.say(f"{scale:>12,} runs generated in {seconds:.1f} s; measuring batch status")
            results["scales"][str(scale)] = drive(path)
        largest = results["scales"][str(options.scales[-1])]
        size = largest["response_bytes"]
        options.say("measuring the limit route, AK/SK signing and the store floor")
        results["limit"] = drive(f"/v5/{dataset.project_id}/api/bench/limit?bytes={size}")
        results["batch_aksk"] = drive(path, ak=dataset.ak, sk=dataset.sk)
        results["limit_aksk"] = drive(
            f"/v5/{dataset.project_id}/api/bench/limit?bytes={size}", ak=dataset.ak, sk=dataset.sk
        )
        results["floor_lookup_us"] = round(
            floor_lookup_us(options.database_url, dataset, bodies), 1
        )
        results["rss_mb_per_worker"] = [round(mb, 1) for mb in server.worker_rss_mb()]
        options.say("measuring reads under the write load")
        own = writer_set(options.database_url, options.stages, 200)

        def start_writers(seconds: float) -> list[subprocess.Popen[str]]:
            # Unpinned: the write load takes whatever CPU the server and driver leave.
            return [
                _writer_process(
                    WriterConfig(
                        database_url=options.database_url,
                        project_id=own.project_id,
                        pipeline_ids=own.pipeline_ids[index :: options.writers],
                        user_id=own.user_id,
                        duration_seconds=seconds,
                        claimant=f"bench-writer-{index}",
                    ),
                    None,
                )
                for index in range(options.writers)
            ]

        results["writers_alone"] = [
            _writer_result(w) for w in start_writers(options.duration_seconds)
        ]
        writers = start_writers(options.warmup_seconds + options.duration_seconds + 1)
        results["under_writes"] = drive(path)
        results["writers"] = [_writer_result(writer) for writer in writers]
    finally:
        server.stop()
        db.dispose()
        shutil.rmtree(work_dir, ignore_errors=True)
    return summarize(results, options)


def summarize(results: dict[str, Any], options: BenchOptions) -> dict[str, Any]:
    scales = results["scales"]
    smallest, largest = scales[str(options.scales[0])], scales[str(options.scales[-1])]
    results["batch_rps"] = round(largest["rps"], 1)
    results["limit_rps"] = round(results["limit"]["rps"], 1)
    results["batch_to_limit"] = round(largest["rps"] / results["limit"]["rps"], 3)
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
        f"{results['concurrency']} connections x {results['duration_seconds']:.0f} s per row",
        "",
        f"{'what':<34}{'req/s':>9}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'errors':>8}",
    ]

    def row(name: str, r: dict[str, Any]) -> None:
        lines.append(
            f"{name:<34}{r['rps']:>9.0f}{r['p50_ms']:>9.2f}{r['p90_ms']:>9.2f}"
            f"{r['p99_ms']:>9.2f}{r['errors']:>8}"
        )

    for scale, r in results["scales"].items():
        row(f"batch, token, {int(scale):,} runs", r)
    row("limit route, token", results["limit"])
    row("batch, AK/SK", results["batch_aksk"])
    row("limit route, AK/SK", results["limit_aksk"])
    row("batch, token, under write load", results["under_writes"])
    generated = results["generation_seconds"].items()
    writer_runs = sum(w["runs_completed"] for w in results["writers"])
    lines += [
        "",
        f"store-layer lookup of {results['batch']} IDs (no HTTP): "
        f"{results['floor_lookup_us']:.0f} us",
        "generation: " + ", ".join(f"{int(s):,} runs in {t} s" for s, t in generated),
        f"write load: {results['transitions_per_s']:.0f} stage transitions/s under the read "
        f"load ({writer_runs} runs through the engine); "
        f"{results['transitions_per_s_alone']:.0f}/s with no read load",
        f"worker RSS: {', '.join(f'{mb:.0f} MB' for mb in results['rss_mb_per_worker'])}",
        "",
        "targets:",
    ]
    for name, verdict in results["targets"].items():
        outcome = "met" if verdict["met"] else "MISSED"
        lines.append(f"  {name:<30} {results[name]!s:>10}   {verdict['target']:<9} {outcome}")
    return "\n".join(lines)


def write_results(results: dict[str, Any], output: Path) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(results, indent=2)
    output.write_text(text + "\n")
    (output.parent / f"{results['database']}-latest.json").write_text(text + "\n")
