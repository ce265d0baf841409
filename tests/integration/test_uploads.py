"""Artifact uploads over real HTTP, on a server of their own: its artifacts directory is no other
test's, so files can be counted, and its `STAGELINE_ARTIFACT_MAX_BYTES` is small.

Uploads are streamed to storage and have their own limit, above the 12 MB of every other body.
An upload is checked (job, current dispatch, step of the job) before its body is read, and a
refused one leaves no file behind.
"""

import hashlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy import update

from stageline.api.app import create_app
from stageline.auth import accounts, signing
from stageline.engine.clock import system_clock
from stageline.settings import Settings
from stageline.store.database import Database
from stageline.store.tables import JobRun
from tests.conftest import serving
from tests.factories import World
from tests.integration.test_agent_protocol import PlayedAgent, one_job_pipeline, unique_pool
from tests.rawhttp import send_chunked_until_answered

MB = 1024 * 1024
ARTIFACT_MAX_BYTES = 24 * MB
"""Above the 12 MB of other bodies, and small enough to pass quickly."""


@pytest.fixture(scope="module")
def upload_settings(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return settings.model_copy(
        update={
            "artifact_max_bytes": ARTIFACT_MAX_BYTES,
            "data_dir": tmp_path_factory.mktemp("uploads"),
        }
    )


@pytest.fixture(scope="module")
def upload_server(upload_settings: Settings, db: Database) -> Iterator[str]:
    with serving(create_app(upload_settings, db=db)) as url:
        yield url


@dataclass
class Upload:
    """A job claimed by a played agent, whose step may upload artifacts."""

    world: World
    agent: PlayedAgent
    pipeline_id: str
    run_id: str
    job: dict[str, object]
    artifact_dir: Path

    @property
    def step_run_id(self) -> str:
        steps = self.job["steps"]
        assert isinstance(steps, list)
        return str(steps[0]["step_run_id"])

    def put(
        self,
        content: bytes | Iterator[bytes],
        *,
        name: str = "dist/app.bin",
        dispatch_id: str | None = None,
        step_run_id: str | None = None,
        job_run_id: str | None = None,
    ) -> httpx.Response:
        """Upload `content`: bytes go with a Content-Length, an iterator chunked without one."""
        query = urlencode(
            {
                "dispatch_id": dispatch_id or self.job["dispatch_id"],
                "step_run_id": step_run_id or self.step_run_id,
                "name": name,
            }
        )
        path = f"/agent/v1/jobs/{job_run_id or self.job['job_run_id']}/artifacts?{query}"
        headers = signing.sign(
            "PUT",
            f"http://testserver{path}",
            {"Content-Type": "application/octet-stream"},
            signing.UNSIGNED_BODY,
            self.agent.ak,
            self.agent.sk,
        )
        return self.agent.client.put(path, content=content, headers=headers)

    def listed(self) -> list[tuple[str, str]]:
        """(name, file_size) of the run's artifacts."""
        response = self.world.client.get(
            f"{self.world.base}/pipelines/{self.pipeline_id}/pipeline-runs/{self.run_id}/artifacts",
            headers=self.world.viewer.headers,
        )
        assert response.status_code == 200, response.text
        return [(a["name"], a["file_size"]) for a in response.json()["artifacts"]]

    def files(self) -> list[Path]:
        """Every file under the artifacts directory, temporary ones included."""
        return sorted(p for p in self.artifact_dir.rglob("*") if p.is_file())


@pytest.fixture
def upload(upload_server: str, upload_settings: Settings, db: Database) -> Iterator[Upload]:
    with httpx.Client(base_url=upload_server, timeout=60) as client:
        world = World.create(client, db, upload_settings)
        name = f"uploader-{secrets.token_hex(4)}"
        key = accounts.create_agent(db, upload_settings, name=name, now=system_clock())
        agent = PlayedAgent(client, name, key.ak, key.sk)
        pool = unique_pool()
        pipeline_id = one_job_pipeline(world, pool)
        run_id = world.run(pipeline_id)
        job = agent.take(pool)
        yield Upload(world, agent, pipeline_id, run_id, job, upload_settings.artifact_dir)


def chunks(size: int, piece: bytes = b"a" * MB) -> Iterator[bytes]:
    """`size` bytes as an iterator: httpx sends it chunked, without a Content-Length."""
    while size > 0:
        yield piece[:size]
        size -= len(piece)


class TestSizes:
    def test_a_chunked_artifact_larger_than_other_bodies_is_accepted(self, upload: Upload) -> None:
        size = 13 * MB
        answer = upload.put(chunks(size))
        assert answer.status_code == 200, answer.text
        expected = hashlib.sha256(b"a" * size).hexdigest()
        assert answer.json() == {"name": "dist/app.bin", "size": size, "sha256": expected}
        assert upload.listed() == [("dist/app.bin", str(size))]

    def test_an_artifact_with_a_content_length_over_12_mb_is_accepted(self, upload: Upload) -> None:
        size = 20 * MB
        answer = upload.put(b"b" * size)
        assert answer.status_code == 200, answer.text
        assert answer.json()["size"] == size

    def test_a_chunked_artifact_past_its_limit_is_a_413_and_leaves_no_file(
        self, upload: Upload
    ) -> None:
        before = upload.files()
        answer = upload.put(chunks(ARTIFACT_MAX_BYTES + MB, b"c" * MB))
        assert answer.status_code == 413, answer.text
        assert answer.json()["error_code"] == "APIGW.0201"
        assert str(ARTIFACT_MAX_BYTES) in answer.json()["error_msg"]
        assert upload.files() == before
        assert upload.listed() == []

    def test_an_artifact_up_to_its_limit_is_accepted(self, upload: Upload) -> None:
        answer = upload.put(chunks(ARTIFACT_MAX_BYTES, b"d" * MB))
        assert answer.status_code == 200, answer.text
        assert answer.json()["size"] == ARTIFACT_MAX_BYTES


class TestRefused:
    """An upload is checked before its body is read; a refused one leaves no file behind."""

    def test_refused_uploads_leave_no_file(self, upload: Upload) -> None:
        before = upload.files()
        stale = upload.put(chunks(5 * MB), dispatch_id=secrets.token_hex(16))
        unknown_job = upload.put(chunks(5 * MB), job_run_id=secrets.token_hex(16))
        other_step = upload.put(chunks(5 * MB), step_run_id=secrets.token_hex(16))
        assert (stale.status_code, unknown_job.status_code, other_step.status_code) == (
            409,
            404,
            404,
        )
        assert stale.json()["error_code"] == "STAGELINE.AGENT.0409"
        assert upload.files() == before
        assert upload.listed() == []

        kept = upload.put(chunks(5 * MB))
        assert kept.status_code == 200, kept.text
        assert len(upload.files()) == len(before) + 1  # no temporary file left over either

    def test_a_stale_upload_is_refused_before_its_body_is_read(
        self, upload: Upload, upload_server: str
    ) -> None:
        query = urlencode(
            {
                "dispatch_id": secrets.token_hex(16),
                "step_run_id": upload.step_run_id,
                "name": "big.bin",
            }
        )
        target = f"/agent/v1/jobs/{upload.job['job_run_id']}/artifacts?{query}"
        headers = signing.sign(
            "PUT",
            f"http://testserver{target}",
            {"Content-Type": "application/octet-stream", "Transfer-Encoding": "chunked"},
            signing.UNSIGNED_BODY,
            upload.agent.ak,
            upload.agent.sk,
        )
        offered = 10 * ARTIFACT_MAX_BYTES
        before = upload.files()
        answer = send_chunked_until_answered(upload_server, "PUT", target, offered, headers)
        assert answer.status == 409, answer.body
        # Had the body been read first, the answer would be the 413 of a body past the limit.
        assert answer.sent < ARTIFACT_MAX_BYTES
        assert upload.files() == before

    def test_an_upload_whose_claim_is_taken_back_while_it_arrives_leaves_no_file(
        self, upload: Upload, db: Database
    ) -> None:
        """It passes the first check, then the job goes to another dispatch mid-transfer."""
        before = upload.files()

        def taken_back_midway() -> Iterator[bytes]:
            yield b"e" * MB
            with db.writer() as session:
                session.execute(
                    update(JobRun)
                    .where(JobRun.id == upload.job["job_run_id"])
                    .values(dispatch_id=secrets.token_hex(16))
                )
            yield b"e" * MB

        answer = upload.put(taken_back_midway())
        assert answer.status_code == 409, answer.text
        assert upload.files() == before
        assert upload.listed() == []
