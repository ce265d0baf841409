"""How soon a change reaches a status stream served by another server process.

`python -m bench.stream_delay [--database-url URL]` serves `stageline serve --workers 2
--no-agent` on a fresh database (it WIPES the one it is given), opens one status stream on a
few pipelines, and starts runs of them one after another, each over a new connection, so that
the kernel hands about half of them to the worker that does not serve the stream. A run's delay
is from the moment its start was answered (its transaction had committed) to the moment the
stream's first event naming it arrived. Prints the figures; nothing asserts them.
"""

import argparse
import contextlib
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx

from bench.runner import BENCH_SECRET, prepare_database
from bench.servers import StagelineServer
from stageline.auth import accounts
from stageline.auth.roles import Role
from stageline.store.database import Database

PASSWORD = "stream-delay-password"
DEFINITION = json.dumps(
    {
        "stages": [
            {
                "identifier": "S",
                "name": "S",
                "jobs": [
                    {
                        "identifier": "J",
                        "name": "J",
                        "steps": [
                            {
                                "name": "sh",
                                "task": "official_shell_plugin",
                                "identifier": "STEP",
                                "inputs": [{"key": "OFFICIAL_SHELL_SCRIPT_INPUT", "value": "true"}],
                            }
                        ],
                    }
                ],
            }
        ]
    }
)


def _project(database_url: str) -> str:
    db = Database(database_url)
    now = int(time.time() * 1000)
    project_id = accounts.create_project(db, name="stream-delay", now=now)
    accounts.create_user(db, name="stream-delay", password=PASSWORD, now=now)
    accounts.add_member(db, project_id=project_id, user_name="stream-delay", role=Role.ADMIN)
    db.dispose()
    return project_id


def _token(base_url: str) -> str:
    identity = {
        "methods": ["password"],
        "password": {"user": {"name": "stream-delay", "password": PASSWORD}},
    }
    response = httpx.post(f"{base_url}/v3/auth/tokens", json={"auth": {"identity": identity}})
    response.raise_for_status()
    return response.headers["X-Subject-Token"]


class Listener(threading.Thread):
    """Reads the stream; records when each run ID first appeared in it."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self.url, self.headers = url, headers
        self.seen: dict[str, float] = {}
        self.ready = threading.Event()

    def run(self) -> None:
        with (
            contextlib.suppress(httpx.HTTPError),  # the server stops at the end
            httpx.Client(timeout=None, trust_env=False) as http,
            http.stream("GET", self.url, headers=self.headers) as response,
        ):
            self.ready.set()
            for line in response.iter_lines():
                if line.startswith("data: {"):
                    run_id = json.loads(line[6:]).get("pipeline_run_id")
                    self.seen.setdefault(run_id, time.monotonic())


def measure(database_url: str, runs: int, pipelines: int) -> dict[str, float]:
    prepare_database(database_url)
    project_id = _project(database_url)
    with tempfile.TemporaryDirectory(prefix="stageline-stream-delay-") as work_dir:
        server = StagelineServer(
            database_url=database_url,
            workers=2,
            data_dir=Path(work_dir),
            secret_key=BENCH_SECRET,
            cpu=None,
        )
        try:
            headers = {"X-Auth-Token": _token(server.base_url)}
            base = f"{server.base_url}/v5/{project_id}/api"
            ids = []
            for index in range(pipelines):
                body = {"name": f"p{index}", "is_publish": False, "definition": DEFINITION}
                created = httpx.post(f"{base}/pipelines", json=body, headers=headers)
                created.raise_for_status()
                ids.append(created.json()["pipeline_id"])
            listener = Listener(
                f"{base}/pipelines/status/stream?pipeline_ids={','.join(ids)}", headers
            )
            listener.start()
            listener.ready.wait(30)
            time.sleep(1)
            answered: dict[str, float] = {}
            for index in range(runs):
                with httpx.Client(trust_env=False) as fresh_connection:
                    started = fresh_connection.post(
                        f"{base}/pipelines/{ids[index % pipelines]}/run", json={}, headers=headers
                    )
                answered[started.json()["pipeline_run_id"]] = time.monotonic()
                time.sleep(0.05)
            deadline = time.monotonic() + 10
            while (
                len(listener.seen.keys() & answered.keys()) < runs and time.monotonic() < deadline
            ):
                time.sleep(0.1)
        finally:
            server.stop()
    delays = sorted(
        (listener.seen[run_id] - at) * 1000
        for run_id, at in answered.items()
        if run_id in listener.seen
    )
    quantiles = statistics.quantiles(delays, n=100) if len(delays) > 1 else delays * 99
    return {
        "runs": runs,
        "missed": runs - len(delays),
        "p50_ms": round(statistics.median(delays), 1),
        "p90_ms": round(quantiles[89], 1),
        "p99_ms": round(quantiles[98], 1),
        "max_ms": round(delays[-1], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default="sqlite:///.stageline/bench/stream-delay.db")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--pipelines", type=int, default=20)
    options = parser.parse_args()
    print(json.dumps(measure(options.database_url, options.runs, options.pipelines)))  # noqa: T201


if __name__ == "__main__":
    main()
