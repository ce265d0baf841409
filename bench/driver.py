"""The load driver: fixed concurrency for a fixed time over keep-alive connections.

Runs in its own process (`python -m bench.driver`, configuration as JSON on stdin,
results as JSON on stdout) so that it competes with the server for nothing but the CPU it is
pinned to. Plain HTTP/1.1 over asyncio streams: the driver's own cost per request stays small.
"""

import asyncio
import json
import random
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

from bench.processes import child_env, python_command
from stageline.auth import signing


@dataclass
class DriverConfig:
    host: str
    port: int
    path: str
    bodies: list[str]
    """Request bodies to cycle through (each a JSON array of pipeline IDs)."""
    concurrency: int
    duration_seconds: float
    warmup_seconds: float
    token: str | None = None
    ak: str | None = None
    sk: str | None = None


@dataclass
class DriverResult:
    requests: int
    errors: int
    seconds: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    response_bytes: int
    all_requests: int
    """Including the warm-up: what the server's CPU time over the whole run is divided by."""


def _request(config: DriverConfig, body: bytes) -> bytes:
    headers = {"Content-Type": "application/json", "Host": f"{config.host}:{config.port}"}
    if config.token:
        headers["X-Auth-Token"] = config.token
    else:
        assert config.ak
        assert config.sk
        url = f"http://{config.host}:{config.port}{config.path}"
        headers = signing.sign("POST", url, headers, body, config.ak, config.sk)
    lines = [f"POST {config.path} HTTP/1.1"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines += [f"Content-Length: {len(body)}", "", ""]
    return "\r\n".join(lines).encode() + body


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, int]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    await reader.readexactly(length)
    return status, length


async def _connection(
    config: DriverConfig,
    start_at: float,
    stop_at: float,
    latencies: list[float],
    counters: dict[str, int],
    seed: int,
) -> None:
    rng = random.Random(seed)
    bodies = [body.encode() for body in config.bodies]
    signed = config.token is None
    prepared = [] if signed else [_request(config, body) for body in bodies]
    reader, writer = await asyncio.open_connection(config.host, config.port)
    try:
        while True:
            now = time.perf_counter()
            if now >= stop_at:
                return
            index = rng.randrange(len(bodies))
            request = _request(config, bodies[index]) if signed else prepared[index]
            sent = time.perf_counter()
            writer.write(request)
            status, length = await _read_response(reader)
            elapsed = time.perf_counter() - sent
            counters["all"] += 1
            if sent >= start_at:
                latencies.append(elapsed)
                counters["bytes"] = length
                if status != 200:
                    counters["errors"] += 1
    finally:
        writer.close()


def _percentile(sorted_values: list[float], share: float) -> float:
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * share))]


async def drive(config: DriverConfig) -> DriverResult:
    latencies: list[float] = []
    counters = {"errors": 0, "bytes": 0, "all": 0}
    start_at = time.perf_counter() + config.warmup_seconds
    stop_at = start_at + config.duration_seconds
    await asyncio.gather(
        *(
            _connection(config, start_at, stop_at, latencies, counters, seed)
            for seed in range(config.concurrency)
        )
    )
    latencies.sort()
    return DriverResult(
        requests=len(latencies),
        errors=counters["errors"],
        seconds=config.duration_seconds,
        rps=len(latencies) / config.duration_seconds,
        p50_ms=_percentile(latencies, 0.50) * 1000,
        p90_ms=_percentile(latencies, 0.90) * 1000,
        p99_ms=_percentile(latencies, 0.99) * 1000,
        response_bytes=counters["bytes"],
        all_requests=counters["all"],
    )


def run_driver(config: DriverConfig, *, cpu: int | None) -> dict[str, Any]:
    """Run the driver in a child process (pinned to `cpu` when given) and return its result."""
    finished = subprocess.run(
        python_command("-m", "bench.driver", cpu=cpu),
        input=json.dumps(asdict(config)),
        capture_output=True,
        text=True,
        check=True,
        env=child_env(),
        timeout=config.warmup_seconds + config.duration_seconds + 120,
    )
    result: dict[str, Any] = json.loads(finished.stdout)
    return result


def main() -> None:
    config = DriverConfig(**json.loads(sys.stdin.read()))
    result = asyncio.run(drive(config))
    json.dump(asdict(result), sys.stdout)


if __name__ == "__main__":
    main()
