"""Real processes for fault tests: a `stageline serve` that can be killed and started again,
`stageline agent` processes, and a TCP proxy that can cut an agent off from its server.

Every process starts in a session of its own, so that `kill -9` of its process group takes
down exactly what it started (the steps an agent runs are in sessions of their own too).
"""

import contextlib
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .conftest import CLI_TIMEOUT, _wait_until_healthy, free_port

STOP_TIMEOUT = 15.0


def admin_cli(env: dict[str, str], database_url: str, *args: str) -> dict[str, Any]:
    """`python -m stageline admin ARGS --database-url URL --json`; must succeed."""
    command = [sys.executable, "-m", "stageline", "admin", *args]
    command += ["--database-url", database_url, "--json"]
    result = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=CLI_TIMEOUT, check=False
    )
    assert result.returncode == 0, f"{args} exited {result.returncode}: {result.stderr}"
    parsed: dict[str, Any] = json.loads(result.stdout)
    return parsed


def kill_group(process: "subprocess.Popen[bytes]") -> None:
    """`kill -9` the process group of a process started in its own session."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=STOP_TIMEOUT)


def kill_step(pid: int, root: Path) -> None:
    """`kill -9` the process group of the step whose bash has `pid`, if that process still is
    a step running in a workspace under `root` (PIDs are reused)."""
    try:
        command_line = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return
    if str(root.resolve()).encode() in command_line:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)


def runs_script_of(pid: int, step_run_id: str) -> bool:
    """Whether process `pid` is alive and is the bash of step `step_run_id` (its script is
    `.stageline/<step_run_id>.sh`)."""
    try:
        command_line = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return f".stageline/{step_run_id}.sh".encode() in command_line


def end_gently(process: "subprocess.Popen[bytes]", sig: signal.Signals) -> None:
    """Send `sig`; `kill -9` its group if the process has not exited in time."""
    if process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        kill_group(process)


def wait_until(check: Callable[[], Any], what: str, *, timeout: float = 30.0) -> Any:
    """Poll `check` until it returns something truthy, and return that (a bound, not a timing)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.05)


@dataclass
class ServeProcess:
    """`stageline serve --no-agent` on a fixed port; `kill()` and `start()` again at will."""

    database_url: str
    env: dict[str, str]
    log_path: Path
    port: int = field(default_factory=free_port)
    process: "subprocess.Popen[bytes] | None" = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        command = [sys.executable, "-m", "stageline", "serve", "--no-agent", "--host", "127.0.0.1"]
        command += ["--port", str(self.port), "--database-url", self.database_url]
        with self.log_path.open("ab") as log_file:
            self.process = subprocess.Popen(
                command,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _wait_until_healthy(self.process, self.base_url, self.log_path)

    def kill(self) -> None:
        assert self.process is not None
        kill_group(self.process)

    def stop(self) -> None:
        if self.process is not None:
            end_gently(self.process, signal.SIGTERM)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


@dataclass
class AgentProcess:
    """`stageline agent` in a session of its own."""

    name: str
    process: "subprocess.Popen[bytes]"
    log_path: Path

    def kill(self) -> None:
        kill_group(self.process)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_agent(
    server_url: str, *, ak: str, sk: str, name: str, pool: str, root: Path
) -> AgentProcess:
    """`python -m stageline agent` with one slot, a 0.5 s heartbeat and its keys in the env."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("STAGELINE_") and not k.lower().endswith("_proxy")
    }
    env.update(STAGELINE_AGENT_AK=ak, STAGELINE_AGENT_SK=sk, PYTHONUNBUFFERED="1")
    command = [sys.executable, "-m", "stageline", "agent", "--server", server_url]
    command += ["--workdir", str(root / f"{name}-work"), "--pool", pool]
    command += ["--concurrency", "1", "--heartbeat", "0.5"]
    log_path = root / f"{name}.log"
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(
            command,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return AgentProcess(name, process, log_path)


class TcpProxy:
    """Forwards 127.0.0.1:`port` to 127.0.0.1:`target_port`, a thread pair per connection.

    `cut()` closes the listening socket (new connections are refused) and resets every open
    connection; `listen()` listens again on the same port.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.connections_seen = 0
        self._lock = threading.Lock()
        self._links: set[_Link] = set()
        self._listener: socket.socket | None = None
        self._accepter: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def listen(self) -> None:
        assert self._listener is None, "already listening"
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.05)  # accept() wakes up to notice cut()
        self._listener = listener
        self._accepter = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._accepter.start()

    def cut(self) -> None:
        listener, self._listener = self._listener, None
        if self._accepter is not None:
            self._accepter.join(timeout=5)
        if listener is not None:
            listener.close()
        with self._lock:
            links, self._links = self._links, set()
        for link in links:
            link.reset()

    def _accept(self, listener: socket.socket) -> None:
        while self._listener is listener:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                _reset(client)
                continue
            upstream.settimeout(None)
            link = _Link(client, upstream, on_close=self._forget)
            with self._lock:
                self._links.add(link)
                self.connections_seen += 1
            link.start()

    def _forget(self, link: "_Link") -> None:
        with self._lock:
            self._links.discard(link)


class _Link:
    """One proxied connection: bytes pumped both ways until both ends are done."""

    def __init__(
        self, client: socket.socket, upstream: socket.socket, on_close: Callable[["_Link"], None]
    ) -> None:
        self._sockets = (client, upstream)
        self._on_close = on_close
        self._lock = threading.Lock()
        self._open_directions = 2

    def start(self) -> None:
        client, upstream = self._sockets
        for source, sink in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def reset(self) -> None:
        for sock in self._sockets:
            _reset(sock)

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
            sink.shutdown(socket.SHUT_WR)  # pass the half-close on
        except OSError:
            self.reset()
        with self._lock:
            self._open_directions -= 1
            done = self._open_directions == 0
        if done:
            for sock in self._sockets:
                sock.close()
            self._on_close(self)


def _reset(sock: socket.socket) -> None:
    """Close with RST (linger 0), as a dropped link looks to both ends; shutdown() first wakes
    a thread blocked in recv() on it."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
