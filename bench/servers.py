"""The two servers the benchmark drives, each a uvicorn process tree pinned to the same CPU.

`StagelineServer` is `stageline serve --workers N --no-agent --bench-routes`, the way the README
tells production users to run it. `BareServer` is `bench/bare_app.py`: the same FastAPI and
uvicorn with the same worker count and options, and none of Stageline (see that module).
"""

import socket
import subprocess
import time
from pathlib import Path

import httpx

from bench.bare_app import READY_PATH
from bench.processes import (
    child_env,
    python_command,
    python_rss_mb,
    stop_group,
    tree_cpu_seconds,
)

STARTUP_SECONDS = 60.0
SETTLE_SECONDS = 1.0
"""After the first answer: let every worker finish starting, not just the first to answer."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class HttpServer:
    """A server process group on a free loopback port, started and waited for."""

    def __init__(
        self,
        command: list[str],
        *,
        env: dict[str, str],
        port: int,
        log_path: Path,
        ready: httpx.Request,
    ) -> None:
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("wb") as log_file:
            self.process = subprocess.Popen(
                command, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
            )
        try:
            self._wait_ready(ready)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, ready: httpx.Request) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        with httpx.Client(trust_env=False, timeout=2) as client:
            while True:
                try:
                    if client.send(ready).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"{self.base_url} did not start:\n" + self.log_path.read_text()[-3000:]
                    )
                time.sleep(0.2)
        time.sleep(SETTLE_SECONDS)

    def cpu_seconds(self) -> float:
        """CPU time the server's processes have used so far, user and system."""
        return tree_cpu_seconds(self.process.pid)

    def worker_rss_mb(self) -> list[float]:
        """Resident memory of every Python process under the server (supervisor and workers)."""
        return python_rss_mb(self.process.pid)

    def stop(self) -> None:
        stop_group(self.process)


class StagelineServer(HttpServer):
    def __init__(
        self,
        *,
        database_url: str,
        workers: int,
        data_dir: Path,
        secret_key: str,
        cpu: int | None,
    ) -> None:
        port = free_port()
        args = ["-m", "stageline", "serve", "--port", str(port), "--database-url", database_url]
        args += ["--workers", str(workers), "--no-agent", "--bench-routes"]
        env = child_env({"STAGELINE_SECRET_KEY": secret_key, "STAGELINE_DATA_DIR": str(data_dir)})
        super().__init__(
            python_command(*args, cpu=cpu),
            env=env,
            port=port,
            log_path=data_dir / "server.log",
            ready=httpx.Request("GET", f"http://127.0.0.1:{port}/health"),
        )


class BareServer(HttpServer):
    def __init__(self, *, workers: int, log_dir: Path, cpu: int | None) -> None:
        port = free_port()
        args = ["-m", "bench.bare_app", "--port", str(port), "--workers", str(workers)]
        super().__init__(
            python_command(*args, cpu=cpu),
            env=child_env(),
            port=port,
            log_path=log_dir / "bare.log",
            ready=httpx.Request("POST", f"http://127.0.0.1:{port}{READY_PATH}"),
        )
