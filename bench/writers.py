"""The write-load processes (`bench/writer.py`) as the runner starts and collects them.

The writers get pipelines of their own, so that reads and writes touch different rows, and run
unpinned: the write load takes whatever CPU the server and the driver leave.
"""

import json
import subprocess
from dataclasses import asdict, dataclass
from typing import Any

from bench.dataset import Generator
from bench.processes import child_env, python_command
from bench.writer import WriterConfig
from stageline.settings import Settings
from stageline.store.database import Database


@dataclass
class WriterSet:
    database_url: str
    project_id: str
    user_id: str
    pipeline_ids: list[str]

    def start(self, processes: int, seconds: float) -> list["subprocess.Popen[str]"]:
        """`processes` writers for `seconds`, each on its own share of the pipelines."""
        return [
            _start(
                WriterConfig(
                    database_url=self.database_url,
                    project_id=self.project_id,
                    pipeline_ids=self.pipeline_ids[index::processes],
                    user_id=self.user_id,
                    duration_seconds=seconds,
                    claimant=f"bench-writer-{index}",
                )
            )
            for index in range(processes)
        ]


def writer_set(database_url: str, secret_key: str, stages: int, count: int) -> WriterSet:
    db = Database(database_url)
    settings = Settings(database_url=database_url, secret_key=secret_key)
    generator = Generator(db, settings, seed=7, stages=stages)
    made = generator.create_pipelines(count)
    db.dispose()
    pipeline_ids = made.run_pipeline_ids + made.never_run_pipeline_ids
    return WriterSet(database_url, made.project_id, generator.executor_id, pipeline_ids)


def _start(config: WriterConfig) -> "subprocess.Popen[str]":
    process = subprocess.Popen(
        python_command("-m", "bench.writer"),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=child_env(),
    )
    assert process.stdin is not None
    process.stdin.write(json.dumps(asdict(config)))
    process.stdin.close()
    return process


def result(process: "subprocess.Popen[str]") -> dict[str, Any]:
    """Wait for a writer and return what it measured."""
    assert process.stdout is not None
    output = process.stdout.read()
    if process.wait() != 0:
        raise RuntimeError(f"a writer process failed with {process.returncode}")
    measured: dict[str, Any] = json.loads(output)
    return measured
