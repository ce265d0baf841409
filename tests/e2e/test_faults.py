"""Faults with real processes: agents and servers killed with `kill -9`, an agent cut off from
its server by a proxy; and the run lifecycle (reviews, stop, retry, outputs, artifacts) driven
through the official SDK.

The fault tests start their own `stageline serve --no-agent` (the lease each scenario needs) and
their own `stageline agent` processes, over one database per module bootstrapped with the admin
CLI. Each test's jobs go to a pool of its own, so a run a failed test left behind cannot reach
the agents of the next one. Step scripts talk to the test through files (markers they wait for,
lines they append), which is possible because the agents run on this host.
"""

import hashlib
import json
import os
import secrets
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from huaweicloudsdkcodeartspipeline.v2 import (
    AcceptManualReviewRequest,
    LogQuery,
    PipelineLatestRun,
    RejectManualReviewRequest,
    RetryPipelineRequest,
    RetryPipelineRunRequest,
    ShowPipelineArtifactsRequest,
    ShowPipelineLogRequest,
    ShowPipelineRunDetailRequest,
    ShowStepOutputsRequest,
    StopPipelineRunRequest,
)
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException

from tests.databases import sibling_database
from tests.factories import definition, shell_job, stage

from .conftest import Account, Server, Tenant, _server_env
from .processes import (
    AgentProcess,
    ServeProcess,
    TcpProxy,
    admin_cli,
    kill_group,
    kill_step,
    runs_script_of,
    start_agent,
    wait_until,
)

pytestmark = pytest.mark.slow

PUBLIC_BASE_URL = "https://faults.e2e.test"
MARKER_WAIT = "for _ in $(seq 1200); do [ -f {marker} ] && break; sleep 0.1; done; [ -f {marker} ]"
"""Wait (at most 120 s, so a step orphaned by a failed test ends) until `marker` exists."""
CUT_OFF_SECONDS = 30.0


# -- a database, a project and two agent identities per module ------------------------------


@dataclass
class Bed:
    """What every fault test of a module shares: a database, bootstrapped with the admin CLI."""

    database_url: str
    project_id: str
    account: Account
    agent_keys: dict[str, tuple[str, str, str]]
    """"a" and "b": (identity name, AK, SK) from `admin create-agent`."""


@pytest.fixture(scope="module")
def bed(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bed]:
    root = tmp_path_factory.mktemp("faults")
    with sibling_database(database_url, root) as own_database_url:
        env = _server_env(root / "cli-data", PUBLIC_BASE_URL)

        def admin(*args: str) -> dict[str, Any]:
            return admin_cli(env, own_database_url, *args)

        suffix = secrets.token_hex(4)
        project_id = admin("create-project", f"faults-{suffix}")["project_id"]
        name, password = f"faults-admin-{suffix}", secrets.token_urlsafe(12)
        user = admin("create-user", name, "--password", password)
        admin("add-member", project_id, name, "--role", "admin")
        keys = admin("create-access-key", name)
        account = Account("admin", name, password, name, user["user_id"], keys["ak"], keys["sk"])
        agent_keys = {}
        for label in ("a", "b"):
            identity = f"faults-agent-{label}-{suffix}"
            pair = admin("create-agent", identity)
            agent_keys[label] = (identity, pair["ak"], pair["sk"])
        yield Bed(own_database_url, project_id, account, agent_keys)


@dataclass
class Faults:
    """One test's processes (all ended at teardown) and its own agent pool."""

    bed: Bed
    root: Path
    pool: str = field(default_factory=lambda: f"faults-{secrets.token_hex(4)}")
    servers: list[ServeProcess] = field(default_factory=list)
    agents: list[AgentProcess] = field(default_factory=list)

    def serve(self, *, lease_seconds: float) -> tuple[ServeProcess, Tenant]:
        """A server without a built-in agent, its data dir fresh, its lease `lease_seconds`."""
        env = _server_env(self.root / "data", PUBLIC_BASE_URL)
        env["STAGELINE_AGENT_LEASE_SECONDS"] = str(lease_seconds)
        server = ServeProcess(self.bed.database_url, env, self.root / "server.log")
        self.servers.append(server)
        server.start()
        assert server.process is not None
        view = Server(
            server.base_url,
            PUBLIC_BASE_URL,
            self.bed.database_url,
            env,
            server.process,
            server.log_path,
        )
        roles = dict.fromkeys(("admin", "developer", "viewer"), self.bed.account)
        return server, Tenant(view, self.bed.project_id, roles, {})

    def agent(self, label: str, server_url: str) -> AgentProcess:
        _identity, ak, sk = self.bed.agent_keys[label]
        started = start_agent(
            server_url, ak=ak, sk=sk, name=f"agent-{label}", pool=self.pool, root=self.root
        )
        self.agents.append(started)
        return started

    @property
    def step_pids(self) -> Path:
        """Every step of this test's jobs appends its PID (its process group) here."""
        return self.root / "step-pids"

    def job(self, identifier: str, script: str) -> dict[str, Any]:
        script = f"echo $$ >> {self.step_pids}\n{script}"
        return shell_job(identifier, script, resource=json.dumps({"pool": self.pool}))

    def close(self) -> None:
        """Kill the agents and any step still running (a failed test leaves some), by PID;
        then stop the servers."""
        for agent in self.agents:
            kill_group(agent.process)
        pids = self.step_pids.read_text().split() if self.step_pids.exists() else []
        for pid in map(int, pids):
            kill_step(pid, self.root)
        for server in self.servers:
            server.stop()


@pytest.fixture
def faults(bed: Bed, tmp_path: Path) -> Iterator[Faults]:
    processes = Faults(bed, tmp_path)
    try:
        yield processes
    finally:
        processes.close()


# -- reading a run ----------------------------------------------------------------------------


def run_detail(tenant: Tenant, pipeline_id: str, run_id: str) -> Any:
    return tenant.client("viewer").show_pipeline_run_detail(
        ShowPipelineRunDetailRequest(
            project_id=tenant.project_id, pipeline_id=pipeline_id, pipeline_run_id=run_id
        )
    )


def only_job(tenant: Tenant, pipeline_id: str, run_id: str, stage_index: int = 0) -> Any:
    [job] = run_detail(tenant, pipeline_id, run_id).stages[stage_index].jobs
    return job


def log_lines(tenant: Tenant, pipeline_id: str, run_id: str, job: Any) -> list[str]:
    """The whole log of the job's (only) step, through the SDK."""
    [step] = job.steps
    log = tenant.client("viewer").show_pipeline_log(
        ShowPipelineLogRequest(
            project_id=tenant.project_id,
            pipeline_id=pipeline_id,
            pipeline_run_id=run_id,
            job_run_id=job.id,
            step_run_id=step.id,
            body=LogQuery(start_offset=0, limit=1000, sort="asc"),
        )
    )
    lines: list[str] = (log.log or "").splitlines()
    return lines


def stage_statuses(item: PipelineLatestRun) -> list[str]:
    return [s.status for s in item.stage_status_list]


def numbered(count: int, prefix: str = "line") -> list[str]:
    return [f"{prefix} {i}" for i in range(1, count + 1)]


# -- 1. an agent dies mid-job -----------------------------------------------------------------


def test_a_job_whose_agent_was_killed_is_redispatched_and_runs_again(
    faults: Faults, tmp_path: Path
) -> None:
    runs_file, marker = tmp_path / "runs", tmp_path / "marker"
    script = f"""
echo ran >> {runs_file}
attempt=$(( $(wc -l < {runs_file}) ))
for i in 1 2 3 4 5; do echo "attempt $attempt line $i"; done
{MARKER_WAIT.format(marker=marker)}
echo "attempt $attempt done"
"""
    server, tenant = faults.serve(lease_seconds=3)
    agent_a = faults.agent("a", server.base_url)
    pipeline_id = tenant.create_pipeline(definition(stage("BUILD", faults.job("SLOW", script))))
    run_id = tenant.run(pipeline_id)
    first_attempt = numbered(5, "attempt 1 line")
    wait_until(
        lambda: (
            log_lines(tenant, pipeline_id, run_id, only_job(tenant, pipeline_id, run_id))
            == first_attempt
        ),
        "the first attempt's lines reached the server",
    )

    # A dead host: the agent and the step it runs (in a session of its own) go at once.
    agent_a.kill()
    assert agent_a.process.returncode == -signal.SIGKILL
    [step_pid] = faults.step_pids.read_text().split()
    os.killpg(int(step_pid), signal.SIGKILL)

    taken_back = tenant.wait_latest(
        pipeline_id, lambda item: stage_statuses(item) == ["REDISPATCH"], timeout=30
    )
    assert taken_back.status == "RUNNING"
    job = only_job(tenant, pipeline_id, run_id)
    assert job.status == "REDISPATCH"
    identity_a, identity_b = faults.bed.agent_keys["a"][0], faults.bed.agent_keys["b"][0]
    assert f"agent lost ({identity_a}/" in job.message
    assert job.steps[0].status == "QUEUED"

    marker.touch()
    faults.agent("b", server.base_url)
    latest = tenant.wait_run(pipeline_id, run_id, "COMPLETED")
    assert stage_statuses(latest) == ["COMPLETED"]
    job = only_job(tenant, pipeline_id, run_id)
    assert job.status == "COMPLETED"
    assert f"agent lost ({identity_a}/" in job.message
    assert "redispatching" in job.message
    assert job.exec_id.startswith(f"{identity_b}/")
    assert runs_file.read_text().splitlines() == ["ran", "ran"]
    assert log_lines(tenant, pipeline_id, run_id, job) == [
        *first_attempt,
        *numbered(5, "attempt 2 line"),
        "attempt 2 done",
    ]


# -- 2. the server dies mid-run ---------------------------------------------------------------


def test_a_server_killed_mid_run_and_restarted_gets_every_line_from_the_agent(
    faults: Faults, tmp_path: Path
) -> None:
    marker, finished = tmp_path / "marker", tmp_path / "finished"
    script = f"""
for i in $(seq 1 40); do echo "line $i"; sleep 0.05; done
{MARKER_WAIT.format(marker=marker)}
echo "after the marker"
touch {finished}
"""
    server, tenant = faults.serve(lease_seconds=60)
    agent = faults.agent("a", server.base_url)
    pipeline_id = tenant.create_pipeline(
        definition(
            stage("BUILD", faults.job("PRINT", script)),
            stage("AFTER", faults.job("NEXT", "echo second stage")),
        )
    )
    run_id = tenant.run(pipeline_id)
    wait_until(
        lambda: (
            len(log_lines(tenant, pipeline_id, run_id, only_job(tenant, pipeline_id, run_id))) >= 3
        ),
        "the step's first lines reached the server",
    )
    dispatch_id = only_job(tenant, pipeline_id, run_id).last_dispatch_id

    server.kill()
    marker.touch()  # the step ends while nobody can hear it: the agent keeps what it says
    wait_until(finished.exists, "the step finished while the server was down")
    assert agent.process.poll() is None
    server.start()  # same port, same database

    latest = tenant.wait_run(pipeline_id, run_id, "COMPLETED")
    assert stage_statuses(latest) == ["COMPLETED", "COMPLETED"]
    job = only_job(tenant, pipeline_id, run_id)
    assert job.last_dispatch_id == dispatch_id  # the same claim: nothing was redispatched
    assert job.message is None
    assert log_lines(tenant, pipeline_id, run_id, job) == [*numbered(40), "after the marker"]
    second = only_job(tenant, pipeline_id, run_id, stage_index=1)
    assert log_lines(tenant, pipeline_id, run_id, second) == ["second stage"]


# -- 3. an agent cut off from its server ------------------------------------------------------


def test_an_agent_cut_off_for_thirty_seconds_delivers_everything_in_order(
    faults: Faults, tmp_path: Path
) -> None:
    marker, finished = tmp_path / "marker", tmp_path / "finished"
    script = f"""
for i in $(seq 1 60); do echo "line $i"; sleep 0.05; done
{MARKER_WAIT.format(marker=marker)}
echo "after the marker"
touch {finished}
"""
    expected = [*numbered(60), "after the marker"]
    server, tenant = faults.serve(lease_seconds=60)
    proxy = TcpProxy(server.port)
    proxy.listen()
    try:
        agent = faults.agent("a", proxy.url)
        pipeline_id = tenant.create_pipeline(
            definition(stage("BUILD", faults.job("PRINT", script)))
        )
        run_id = tenant.run(pipeline_id)
        wait_until(
            lambda: (
                len(log_lines(tenant, pipeline_id, run_id, only_job(tenant, pipeline_id, run_id)))
                >= 5
            ),
            "the step's first lines reached the server",
        )
        before = only_job(tenant, pipeline_id, run_id)

        proxy.cut()
        cut_at = time.monotonic()
        marker.touch()
        wait_until(finished.exists, "the step finished while its agent was cut off")
        seen: set[str] = set()
        while time.monotonic() - cut_at < CUT_OFF_SECONDS:
            job = only_job(tenant, pipeline_id, run_id)
            seen.add(job.status)
            assert len(log_lines(tenant, pipeline_id, run_id, job)) < len(expected)
            time.sleep(0.5)
        assert seen == {"RUNNING"}  # the lease outlived the cut: never REDISPATCH
        assert agent.process.poll() is None
        connections_before = proxy.connections_seen
        proxy.listen()  # same port

        latest = tenant.wait_run(pipeline_id, run_id, "COMPLETED")
    finally:
        proxy.cut()
    assert stage_statuses(latest) == ["COMPLETED"]
    assert proxy.connections_seen > connections_before
    job = only_job(tenant, pipeline_id, run_id)
    assert job.last_dispatch_id == before.last_dispatch_id
    assert job.exec_id == before.exec_id
    assert job.message is None
    assert log_lines(tenant, pipeline_id, run_id, job) == expected


# -- 4. the run lifecycle through the official SDK (the session server, built-in agent) -------


def review_job(identifier: str, *approvers: str) -> dict[str, Any]:
    inputs = [
        {"key": "approvers", "value": list(approvers)},
        {"key": "check_strategy", "value": "any"},
    ]
    return {
        "identifier": identifier,
        "name": identifier,
        "steps": [
            {
                "name": "review",
                "task": "official_devcloud_checkpoint",
                "identifier": f"STEP_{identifier}",
                "inputs": inputs,
            }
        ],
    }


def paused_review(tenant: Tenant) -> tuple[str, str, Any]:
    """A run paused at a review only the developer may decide: (pipeline, run, review job)."""
    pipeline_id = tenant.create_pipeline(
        definition(
            stage("REVIEW", review_job("APPROVE", tenant.accounts["developer"].user_id)),
            stage("SHIP", shell_job("SHIP_IT", "echo shipped")),
        )
    )
    run_id = tenant.run(pipeline_id)
    tenant.wait_latest(pipeline_id, lambda item: stage_statuses(item)[0] == "PAUSED")
    return pipeline_id, run_id, only_job(tenant, pipeline_id, run_id)


def test_sdk_passes_a_manual_review(tenant: Tenant) -> None:
    pipeline_id, run_id, job = paused_review(tenant)
    request = AcceptManualReviewRequest(
        project_id=tenant.project_id,
        pipeline_id=pipeline_id,
        pipeline_run_id=run_id,
        job_run_id=job.id,
        step_run_id=job.steps[0].id,
        approval_description="looks good",
    )
    with pytest.raises(ClientRequestException) as raised:  # the admin is not an approver
        tenant.client("admin").accept_manual_review(request)
    assert raised.value.status_code == 403
    assert raised.value.error_code == "DEVCP.00014031"

    response = tenant.client("developer").accept_manual_review(request)
    assert response.success is True
    latest = tenant.wait_run(pipeline_id, run_id, "COMPLETED")
    assert stage_statuses(latest) == ["COMPLETED", "COMPLETED"]
    [step] = only_job(tenant, pipeline_id, run_id).steps
    assert step.status == "COMPLETED"
    assert step.message == f"passed by {tenant.accounts['developer'].name}: looks good"


def test_sdk_refuses_a_manual_review(tenant: Tenant) -> None:
    pipeline_id, run_id, job = paused_review(tenant)
    response = tenant.client("developer").reject_manual_review(
        RejectManualReviewRequest(
            project_id=tenant.project_id,
            pipeline_id=pipeline_id,
            pipeline_run_id=run_id,
            job_run_id=job.id,
            step_run_id=job.steps[0].id,
            approval_description="not today",
        )
    )
    assert response.success is True
    latest = tenant.wait_run(pipeline_id, run_id, "FAILED")
    assert stage_statuses(latest)[0] == "FAILED"
    job = only_job(tenant, pipeline_id, run_id)
    assert job.status == "FAILED"
    verdict = f"refused by {tenant.accounts['developer'].name}: not today"
    assert (job.message, job.steps[0].message) == (verdict, verdict)
    assert only_job(tenant, pipeline_id, run_id, stage_index=1).start_time is None  # never ran


def test_sdk_stops_a_run_and_retries_it_in_place(tenant: Tenant, tmp_path: Path) -> None:
    """Retried at once after the stop, so the agent may claim the job again before it has
    learned that its first go was stopped: that go must die all the same."""
    marker, pids = tmp_path / "marker", tmp_path / "pids"
    script = f"""
echo $$ >> {pids}
if [ -f {marker} ]; then echo "second go"; else echo "first go"; sleep 300; fi
"""
    pipeline_id = tenant.create_pipeline(definition(stage("S", shell_job("LONG", script))))
    run_id = tenant.run(pipeline_id)
    wait_until(
        lambda: (
            log_lines(tenant, pipeline_id, run_id, only_job(tenant, pipeline_id, run_id))
            == ["first go"]
        ),
        "the step started",
    )
    client = tenant.client("developer")
    stopped = client.stop_pipeline_run(
        StopPipelineRunRequest(
            project_id=tenant.project_id, pipeline_id=pipeline_id, pipeline_run_id=run_id
        )
    )
    assert stopped.success is True
    assert stage_statuses(tenant.wait_run(pipeline_id, run_id, "CANCELED")) == ["CANCELED"]

    marker.touch()
    retried = client.retry_pipeline_run(
        RetryPipelineRunRequest(
            project_id=tenant.project_id,
            pipeline_id=pipeline_id,
            pipeline_run_id=run_id,
            body=RetryPipelineRequest(),
        )
    )
    assert retried.success is True
    latest = tenant.wait_run(pipeline_id, run_id, "COMPLETED")
    assert latest.run_number == 1
    job = only_job(tenant, pipeline_id, run_id)
    assert log_lines(tenant, pipeline_id, run_id, job) == ["first go", "second go"]
    first_go = int(pids.read_text().split()[0])
    step_run_id = job.steps[0].id
    wait_until(
        lambda: not runs_script_of(first_go, step_run_id), "the stopped go was killed", timeout=15
    )


def test_sdk_retries_only_the_listed_failed_job(tenant: Tenant, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    flaky = f'if [ -f {marker} ]; then echo "fine now"; else echo "broken"; exit 3; fi'
    pipeline_id = tenant.create_pipeline(
        definition(stage("S", shell_job("FIRST", flaky), shell_job("SECOND", flaky)))
    )
    run_id = tenant.run(pipeline_id)
    tenant.wait_run(pipeline_id, run_id, "FAILED")
    first, second = run_detail(tenant, pipeline_id, run_id).stages[0].jobs
    assert (first.status, second.status) == ("FAILED", "FAILED")

    marker.touch()

    def retry(body: RetryPipelineRequest | None, role: str = "developer") -> None:
        response = tenant.client(role).retry_pipeline_run(
            RetryPipelineRunRequest(
                project_id=tenant.project_id,
                pipeline_id=pipeline_id,
                pipeline_run_id=run_id,
                body=body,
            )
        )
        assert response.success is True

    retry(RetryPipelineRequest(job_run_ids=[first.id]))
    tenant.wait_run(pipeline_id, run_id, "FAILED")
    jobs = {j.identifier: j for j in run_detail(tenant, pipeline_id, run_id).stages[0].jobs}
    assert (jobs["FIRST"].status, jobs["SECOND"].status) == ("COMPLETED", "FAILED")
    assert log_lines(tenant, pipeline_id, run_id, jobs["FIRST"]) == ["broken", "fine now"]
    assert log_lines(tenant, pipeline_id, run_id, jobs["SECOND"]) == ["broken"]

    with pytest.raises(ClientRequestException) as raised:  # it is not failed any more
        # Another user (AK): the first retry's copy in the same second would be a replay.
        retry(RetryPipelineRequest(job_run_ids=[first.id]), role="admin")
    assert raised.value.status_code == 400
    assert raised.value.error_code == "DEVCP.00021400"

    retry(None)
    assert stage_statuses(tenant.wait_run(pipeline_id, run_id, "COMPLETED")) == ["COMPLETED"]


def test_sdk_reads_step_outputs_and_artifacts(tenant: Tenant) -> None:
    content = f"payload {secrets.token_hex(8)}\n".encode()
    script = f"""
mkdir -p dist
printf '{content.decode().strip()}\\n' > dist/app.txt
echo "version=1.2.3" >> "$STAGELINE_OUTPUTS"
echo "channel=beta" >> "$STAGELINE_OUTPUTS"
"""
    job_definition = shell_job("PACKAGE", script)
    job_definition["steps"][0]["inputs"].append({"key": "artifacts", "value": "dist/*.txt"})
    pipeline_id = tenant.create_pipeline(definition(stage("S", job_definition)))
    run_id = tenant.run(pipeline_id)
    tenant.wait_run(pipeline_id, run_id, "COMPLETED")
    job = only_job(tenant, pipeline_id, run_id)
    step_run_id = job.steps[0].id
    client = tenant.client("viewer")

    outputs = client.show_step_outputs(
        ShowStepOutputsRequest(
            project_id=tenant.project_id,
            pipeline_id=pipeline_id,
            pipeline_run_id=run_id,
            step_run_ids=step_run_id,
        )
    )
    [step_outputs] = outputs.step_outputs
    assert step_outputs.step_run_id == step_run_id
    assert step_outputs.output_result[0].key == "version"
    assert [(r.key, r.value) for r in step_outputs.output_result] == [
        ("version", "1.2.3"),
        ("channel", "beta"),
    ]
    assert isinstance(outputs.current_system_time, int)

    listed = client.show_pipeline_artifacts(
        ShowPipelineArtifactsRequest(
            project_id=tenant.project_id, pipeline_id=pipeline_id, pipeline_run_id=run_id
        )
    )
    [artifact] = listed.artifacts
    assert artifact.name == "dist/app.txt"  # its path in the workspace
    assert artifact.project_id == tenant.project_id
    assert artifact.job_id == job.id
    assert artifact.artifact_version == "1"
    assert artifact.file_size == str(len(content))
    [digest] = artifact.hash_code
    assert (digest.hash_type, digest.hash_value) == ("sha256", hashlib.sha256(content).hexdigest())
    public = tenant.server.public_base_url
    assert artifact.artifact_download_url_with_id.startswith(public + "/")
    download = httpx.get(
        tenant.base_url + artifact.artifact_download_url_with_id.removeprefix(public),
        headers={"X-Auth-Token": tenant.token("viewer")},
        trust_env=False,
    )
    assert download.status_code == 200, download.text
    assert download.content == content
