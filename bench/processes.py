"""Child processes of the benchmark: how to start them, pin them, find them and stop them.

The benchmark is not installed: children run `python -m bench.…` and `python -m stageline …`,
so each gets a PYTHONPATH that starts with the repository root, whatever its working directory.
"""

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment, with the repository root first on PYTHONPATH (and every
    relative entry made absolute, so that a child may run from another directory)."""
    inherited = [entry for entry in os.environ.get("PYTHONPATH", "").split(os.pathsep) if entry]
    path = [str(REPO_ROOT), *(str(Path(entry).resolve()) for entry in inherited)]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(path), **(extra or {})}


def python_command(*args: str, cpu: int | None = None) -> list[str]:
    """`python ARGS` with this interpreter, pinned to `cpu` with taskset when one is given."""
    command = [sys.executable, *args]
    if cpu is not None and shutil.which("taskset"):
        command = ["taskset", "-c", str(cpu), *command]
    return command


def descendants(pid: int) -> list[int]:
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


def tree_cpu_seconds(pid: int) -> float:
    """User and system CPU time used so far by `pid` and every process under it."""
    ticks = 0
    for member in [pid, *descendants(pid)]:
        try:
            stat = Path(f"/proc/{member}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
        ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return ticks / CLOCK_TICKS


def python_rss_mb(pid: int) -> list[float]:
    """Resident memory of every Python process under `pid` (a server's workers)."""
    sizes = []
    for child in descendants(pid):
        try:
            status = Path(f"/proc/{child}/status").read_text()
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"python" not in cmdline and b"stageline" not in cmdline:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                sizes.append(int(line.split()[1]) / 1024)
    return sizes


def stop_group(process: "subprocess.Popen[bytes]") -> None:
    """SIGTERM to the process group the child leads (uvicorn and its workers), then SIGKILL."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
