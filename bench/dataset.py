"""A reproducible benchmark dataset: N pipelines, runs added in steps, K stages per run.

Written in bulk through the store layer. Every ID and value comes from one seeded generator, so
the same seed gives the same rows. Runs are added in steps (e.g. up to 10^4, then 10^5, then 10^6
runs in all) so that the read path can be measured as history grows under the same pipelines.
"""

import json
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from stageline.auth import accounts
from stageline.auth.roles import Role
from stageline.domain.statuses import RUN_IN_PROGRESS
from stageline.settings import Settings
from stageline.store.database import Database
from stageline.store.queries import bulk
from stageline.store.tables import Pipeline, PipelineRun, StageRun

CHUNK_ROWS = 20_000
NEVER_RUN_SHARE = 0.10
ARTIFACT_SHARE = 0.10
LATEST_STATUSES = (
    ("COMPLETED", 70),
    ("FAILED", 12),
    ("CANCELED", 5),
    ("RUNNING", 10),
    ("PAUSED", 3),
)
"""How the latest run of each pipeline ends up: finished, running and paused runs."""
OLDER_STATUSES = (("COMPLETED", 85), ("FAILED", 12), ("CANCELED", 3))
BENCH_PASSWORD = "bench-password"


@dataclass
class Dataset:
    """What the load driver needs to know about the generated data."""

    project_id: str
    user_name: str
    password: str
    ak: str
    sk: str
    run_pipeline_ids: list[str]
    never_run_pipeline_ids: list[str]
    stages: int
    runs: int = 0
    runs_per_pipeline: list[int] = field(default_factory=list)


def _hex_id(rng: random.Random) -> str:
    return f"{rng.getrandbits(128):032x}"


def _definition(stages: int) -> str:
    return json.dumps(
        {
            "stages": [
                {
                    "name": f"Stage_{s}",
                    "identifier": f"STAGE_{s}",
                    "jobs": [
                        {
                            "name": f"Job_{s}",
                            "identifier": f"JOB_{s}",
                            "steps": [
                                {
                                    "task": "official_shell_plugin",
                                    "inputs": [
                                        {"key": "OFFICIAL_SHELL_SCRIPT_INPUT", "value": "make"}
                                    ],
                                }
                            ],
                        }
                    ],
                }
                for s in range(stages)
            ]
        },
        separators=(",", ":"),
    )


def _pick(rng: random.Random, weighted: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([w[0] for w in weighted], weights=[w[1] for w in weighted])[0]


def _stage_plan(
    rng: random.Random, status: str, stages: int, start: int
) -> list[tuple[str, int | None, int | None]]:
    """(status, start, end) of each stage of a run that ends up `status`."""
    stop_at = rng.randrange(stages)
    plan: list[tuple[str, int | None, int | None]] = []
    clock = start + 1000
    for index in range(stages):
        took = rng.randint(5_000, 120_000)
        if status == "COMPLETED" or index < stop_at:
            plan.append(("COMPLETED", clock, clock + took))
        elif index == stop_at:
            end = None if status in RUN_IN_PROGRESS else clock + took
            plan.append((status, clock, end))
        else:
            plan.append(("CANCELED" if status == "CANCELED" else "INIT", None, None))
        clock += took
    return plan


class Generator:
    def __init__(self, db: Database, settings: Settings, *, seed: int, stages: int) -> None:
        self.db = db
        self.settings = settings
        self.rng = random.Random(seed)
        self.seed = seed
        self.stages = stages
        self.definition = _definition(stages)
        self.executor_id = ""

    def create_pipelines(self, count: int) -> Dataset:
        now = int(time.time() * 1000)
        suffix = f"{self.seed}-{self.rng.getrandbits(32):08x}"
        user_name = f"bench-{suffix}"
        project_id = accounts.create_project(self.db, name=f"bench-{suffix}", now=now)
        self.executor_id = accounts.create_user(
            self.db, name=user_name, password=BENCH_PASSWORD, display_name="Bench Robot", now=now
        )
        accounts.add_member(self.db, project_id=project_id, user_name=user_name, role=Role.ADMIN)
        pair = accounts.create_access_key(self.db, self.settings, user_name=user_name, now=now)
        rows: list[dict[str, Any]] = []
        for index in range(count):
            sources: list[dict[str, Any]] = [
                {
                    "type": "code",
                    "params": {
                        "git_type": "gitlab",
                        "git_url": f"https://git.example.com/team{index % 50}/app{index}.git",
                        "default_branch": "main",
                        "codehub_id": str(2_000_000 + index),
                    },
                }
            ]
            if self.rng.random() < ARTIFACT_SHARE:
                sources = [
                    {
                        "type": "artifact",
                        "params": {
                            "artifact_type": "docker",
                            "package_name": f"app{index}",
                            "version": f"1.{index % 10}.0",
                            "organization": "acme",
                            "branch_filter": "release/*",
                        },
                    }
                ]
            rows.append(
                {
                    "id": _hex_id(self.rng),
                    "project_id": project_id,
                    "name": f"app-{index:06d}",
                    "description": "",
                    "is_publish": False,
                    "manifest_version": "3.0",
                    "definition": self.definition,
                    "sources": sources,
                    "variables": [],
                    "schedules": [],
                    "triggers": [],
                    "creator_id": self.executor_id,
                    "updater_id": self.executor_id,
                    "created_at": now,
                    "updated_at": now,
                    "deleted": False,
                    "run_counter": 0,
                }
            )
        for chunk in _chunks(rows):
            with self.db.writer() as session:
                bulk.insert_rows(session, Pipeline, chunk)
        never = max(1, int(count * NEVER_RUN_SHARE))
        ids: list[str] = [row["id"] for row in rows]
        self._sources = {row["id"]: row["sources"][0] for row in rows}
        return Dataset(
            project_id=project_id,
            user_name=user_name,
            password=BENCH_PASSWORD,
            ak=pair.ak,
            sk=pair.sk,
            run_pipeline_ids=ids[never:],
            never_run_pipeline_ids=ids[:never],
            stages=self.stages,
            runs_per_pipeline=[0] * (count - never),
        )

    def grow_to(self, dataset: Dataset, total_runs: int) -> float:
        """Add runs until the dataset holds `total_runs`; returns the seconds it took."""
        started = time.perf_counter()
        pipelines = dataset.run_pipeline_ids
        base, extra = divmod(total_runs, len(pipelines))
        runs: list[dict[str, Any]] = []
        stage_rows: list[dict[str, Any]] = []
        latest: list[dict[str, Any]] = []
        for index, pipeline_id in enumerate(pipelines):
            target = base + (1 if index < extra else 0)
            have = dataset.runs_per_pipeline[index]
            for number in range(have + 1, target + 1):
                run, stages = self._run(dataset, pipeline_id, number, is_latest=number == target)
                runs.append(run)
                stage_rows.extend(stages)
                if number == target:
                    latest.append(
                        {
                            "id": pipeline_id,
                            "latest_run_id": run["id"],
                            "run_counter": number,
                        }
                    )
            dataset.runs_per_pipeline[index] = max(have, target)
            if len(stage_rows) >= CHUNK_ROWS:
                self._flush(runs, stage_rows, latest)
                runs, stage_rows, latest = [], [], []
        self._flush(runs, stage_rows, latest)
        self.db.maintain()
        dataset.runs = sum(dataset.runs_per_pipeline)
        return time.perf_counter() - started

    def _flush(
        self,
        runs: list[dict[str, Any]],
        stages: list[dict[str, Any]],
        latest: list[dict[str, Any]],
    ) -> None:
        with self.db.writer() as session:
            bulk.insert_rows(session, PipelineRun, runs)
            bulk.insert_rows(session, StageRun, stages)
            bulk.point_latest_runs(session, latest)

    def _run(
        self, dataset: Dataset, pipeline_id: str, number: int, *, is_latest: bool
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        rng = self.rng
        run_id = _hex_id(rng)
        status = _pick(rng, LATEST_STATUSES if is_latest else OLDER_STATUSES)
        start = 1_700_000_000_000 + number * 3_600_000 + rng.randrange(3_600_000)
        plan = _stage_plan(rng, status, self.stages, start)
        ends = [end for _, _, end in plan if end is not None]
        end_time = None if status in RUN_IN_PROGRESS else max(ends, default=start)
        source = self._sources[pipeline_id]
        params = source["params"]
        stage_ids = [_hex_id(rng) for _ in plan]
        summary = [
            {
                "id": stage_ids[i],
                "name": f"Stage_{i}",
                "sequence": i,
                "status": s,
                "start_time": b,
                "end_time": e,
            }
            for i, (s, b, e) in enumerate(plan)
        ]
        run = {
            "id": run_id,
            "pipeline_id": pipeline_id,
            "project_id": dataset.project_id,
            "run_number": number,
            "status": status,
            "trigger_type": "Push" if number % 3 else "Manual",
            "executor_id": self.executor_id,
            "executor_name": "Bench Robot",
            "description": "",
            "message": None,
            "build_params": {
                "action": None,
                "build_type": "branch",
                "commit_id": f"{rng.getrandbits(160):040x}",
                "event_type": "Push" if number % 3 else "Manual",
                "merge_id": None,
                "message": f"change {number}",
                "source_branch": None,
                "tag": None,
                "target_branch": "main",
                "codehub_id": params.get("codehub_id"),
                "git_url": params.get("git_url"),
                "source_codehub_id": None,
                "source_codehub_url": None,
                "source_codehub_http_url": None,
            },
            "artifact_params": (
                {
                    k: params.get(k)
                    for k in ("version", "branch_filter", "package_name", "organization")
                }
                if source["type"] == "artifact"
                else None
            ),
            "sources": [],
            "variables": [],
            "definition": self.definition,
            "stage_summary": summary,
            "start_time": start,
            "end_time": end_time,
            "updated_at": end_time or start,
        }
        stages: list[dict[str, Any]] = [
            {
                "id": stage_ids[i],
                "run_id": run_id,
                "sequence": i,
                "name": f"Stage_{i}",
                "identifier": f"STAGE_{i}",
                "status": s,
                "is_select": True,
                "run_always": False,
                "depends_on": [],
                "start_time": b,
                "end_time": e,
            }
            for i, (s, b, e) in enumerate(plan)
        ]
        return run, stages


def _chunks(rows: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(rows), CHUNK_ROWS):
        yield rows[start : start + CHUNK_ROWS]
