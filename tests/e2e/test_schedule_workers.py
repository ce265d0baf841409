"""A schedule due every minute on `stageline serve --workers 2`: one run per slot, also after
the leading worker process is killed with `kill -9`.

Minutes of wall time, so the SQLite and the PostgreSQL server sets run at once, each on a
thread of its own, and CI waits once.
"""

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from stageline.engine.clock import system_clock
from stageline.engine.schedules import LEASE_NAME
from stageline.store.database import Database
from stageline.store.queries import leases as lease_queries
from stageline.store.tables import PipelineRun, ScheduleFire
from tests.conftest import POSTGRES_ADMIN_URL, REQUIRE_POSTGRES
from tests.databases import fresh_postgres
from tests.e2e.conftest import _server_env, _stop, _wait_until_healthy, free_port
from tests.e2e.processes import admin_cli, wait_until
from tests.factories import definition, shell_job, stage

pytestmark = pytest.mark.slow

MINUTE_MS = 60_000
SLOTS = 3
"""Slots watched: the first, then the leader dies, then the others under the next leader."""
TAKEOVER_SECONDS = 20.0
"""Bound for another worker to lead after a kill (lease 10 s, a tick of 1 s, some load)."""


@dataclass
class Outcome:
    database: str
    slots: list[int]
    """The slots the test waited for."""
    fired: list[int]
    """The slots recorded as fired."""
    runs: list[tuple[int, str]]
    """(run number, trigger type) of every run."""
    killed_pid: int
    leaders: list[str]
    takeover_seconds: float
    """From the kill to another worker holding the lease."""


def test_a_schedule_fires_once_per_slot_across_workers_and_a_killed_leader(
    tmp_path: Path,
) -> None:
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        urls = {"sqlite": f"sqlite:///{tmp_path / 'schedules.db'}"}
        try:
            urls["postgresql"] = stack.enter_context(fresh_postgres(POSTGRES_ADMIN_URL))
        except OperationalError:
            if REQUIRE_POSTGRES:
                raise
            # the SQLite half still runs; the PostgreSQL half is what CI requires
        with ThreadPoolExecutor(len(urls)) as pool:
            futures = [
                pool.submit(_scenario, kind, url, tmp_path / kind) for kind, url in urls.items()
            ]
            outcomes = [future.result() for future in futures]
    assert [outcome.database for outcome in outcomes] == list(urls)
    for outcome in outcomes:
        assert outcome.fired == outcome.slots, outcome
        assert outcome.runs == [(n, "Scheduler") for n in range(1, SLOTS + 1)], outcome
        assert len(set(outcome.leaders)) == 2, outcome
        assert str(outcome.killed_pid) in outcome.leaders[0], outcome
    takeovers = ", ".join(f"{o.database} {o.takeover_seconds:.1f} s" for o in outcomes)
    print(f"schedule e2e took {time.monotonic() - started:.0f} s; takeover: {takeovers}")  # noqa: T201


def _scenario(kind: str, database_url: str, root: Path) -> Outcome:
    root.mkdir()
    with _workers(database_url, root) as (process, base_url, env):
        token, project_id = _admin(env, database_url, base_url)
        now = system_clock()
        first = now - now % MINUTE_MS + MINUTE_MS
        if first - now < 5_000:  # time to save it before its first slot
            first += MINUTE_MS
        schedule = {
            "type": "fixed",
            "name": "every minute",
            "enable": True,
            "start_time": first,
            "interval_time": 1,
            "interval_unit": "minute",
            "time_zone": "UTC",
        }
        body = {
            "name": f"every-minute-{secrets.token_hex(3)}",
            "is_publish": False,
            "definition": definition(stage("S", shell_job("J", "true"))),
            "schedules": [schedule],
        }
        created = httpx.post(
            f"{base_url}/v5/{project_id}/api/pipelines",
            json=body,
            headers={"X-Auth-Token": token},
            trust_env=False,
            timeout=30,
        )
        assert created.status_code == 200, created.text
        pipeline_id = created.json()["pipeline_id"]
        db = Database(database_url)
        try:
            slots = [first + i * MINUTE_MS for i in range(SLOTS)]
            wait_until(lambda: _fired(db, pipeline_id), "the first slot fired", timeout=75)
            leader = _leader(db)
            assert leader is not None, "the slot fired, so some worker leads"
            pid = int(leader.split("/")[1])
            assert _parent_of(pid) == process.pid, f"{leader} is no worker of this server"
            os.kill(pid, signal.SIGKILL)
            killed_at = time.monotonic()
            successor: str = wait_until(
                lambda: (holder := _leader(db)) and str(pid) not in holder and holder,
                "another worker leads",
                timeout=TAKEOVER_SECONDS,
            )
            takeover = time.monotonic() - killed_at
            last = slots[-1]
            time.sleep(max(0.0, (last - system_clock()) / 1000))
            wait_until(
                lambda: len(_fired(db, pipeline_id)) >= SLOTS, "every slot fired", timeout=30
            )
            time.sleep(2)  # a second fire of a slot, if any, would show by now
            fired = _fired(db, pipeline_id)
            runs = _runs(db, pipeline_id)
            return Outcome(kind, slots, fired, runs, pid, [leader, successor], takeover)
        finally:
            db.dispose()


@contextlib.contextmanager
def _workers(
    database_url: str, root: Path
) -> Iterator[tuple["subprocess.Popen[bytes]", str, dict[str, str]]]:
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = _server_env(root / "data", base_url)
    log_path = root / "server.log"
    command = [sys.executable, "-m", "stageline", "serve", "--no-agent", "--workers", "2"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--database-url", database_url]
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            command, env=env, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT
        )
    try:
        _wait_until_healthy(process, base_url, log_path)
        yield process, base_url, env
    finally:
        _stop(process)


def _admin(env: dict[str, str], database_url: str, base_url: str) -> tuple[str, str]:
    """A project and its admin, made with the admin CLI; (the admin's token, project ID)."""
    suffix = secrets.token_hex(4)
    project_id = admin_cli(env, database_url, "create-project", f"sched-{suffix}")["project_id"]
    name, password = f"admin-{suffix}", secrets.token_urlsafe(12)
    admin_cli(env, database_url, "create-user", name, "--password", password)
    admin_cli(env, database_url, "add-member", project_id, name, "--role", "admin")
    login = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {"user": {"name": name, "password": password}},
            }
        }
    }
    response = httpx.post(f"{base_url}/v3/auth/tokens", json=login, trust_env=False, timeout=30)
    assert response.status_code == 201, response.text
    return response.headers["X-Subject-Token"], project_id


def _leader(db: Database) -> str | None:
    with db.reader() as session:
        return lease_queries.read_lease_holder(session, name=LEASE_NAME, now=system_clock())


def _fired(db: Database, pipeline_id: str) -> list[int]:
    with db.reader() as session:
        query = select(ScheduleFire.slot_at).where(ScheduleFire.pipeline_id == pipeline_id)
        return list(session.scalars(query.order_by(ScheduleFire.slot_at)))


def _runs(db: Database, pipeline_id: str) -> list[tuple[int, str]]:
    with db.reader() as session:
        query = select(PipelineRun.run_number, PipelineRun.trigger_type).where(
            PipelineRun.pipeline_id == pipeline_id
        )
        return [(n, t) for n, t in session.execute(query.order_by(PipelineRun.run_number))]


def _parent_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("PPid:"):
            return int(line.split()[1])
    raise AssertionError(f"no parent of {pid}")
