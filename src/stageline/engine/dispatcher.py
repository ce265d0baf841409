"""Executors take work from here: claim the next queued job as a `JobAssignment`, and learn
which of the jobs they run have been stopped meanwhile."""

from sqlalchemy.orm import Session

from stageline.domain.pipeline import SHELL_SCRIPT_INPUT, SHELL_TASK
from stageline.domain.statuses import STAGE_TERMINAL
from stageline.engine.clock import Clock, system_clock
from stageline.schemas.jobs import JobAssignment, StepAssignment
from stageline.store.database import Database
from stageline.store.queries import jobs as job_queries
from stageline.store.queries import runs as run_queries
from stageline.store.tables import JobRun, Pipeline, PipelineRun, StageRun, StepRun


def job_environment(
    pipeline: Pipeline, run: PipelineRun, stage: StageRun, job: JobRun
) -> dict[str, str]:
    """Run metadata and variables as every step of the job sees them (documented in README)."""
    params = run.build_params or {}
    commit = params.get("commit_id") or ""
    env = {
        "CI": "true",
        "STAGELINE": "true",
        "PROJECT_ID": run.project_id,
        "PIPELINE_ID": pipeline.id,
        "PIPELINE_NAME": pipeline.name,
        "PIPELINE_RUN_ID": run.id,
        "RUN_NUMBER": str(run.run_number),
        "PIPELINE_NUMBER": str(run.run_number),
        "TRIGGER_TYPE": run.trigger_type,
        "EXECUTOR_ID": run.executor_id,
        "EXECUTE_USER": run.executor_name,
        "COMMIT_ID": commit,
        "COMMIT_ID_SHORT": commit[:8],
        "COMMIT_MESSAGE": params.get("message") or "",
        "BUILD_TYPE": params.get("build_type") or "",
        "BRANCH": params.get("target_branch") or "",
        "TARGET_BRANCH": params.get("target_branch") or "",
        "SOURCE_BRANCH": params.get("source_branch") or "",
        "TAG": params.get("tag") or "",
        "MERGE_ID": params.get("merge_id") or "",
        "REPO_URL": params.get("git_url") or "",
        "STAGE_NAME": stage.name,
        "JOB_NAME": job.name,
        "JOB_RUN_ID": job.id,
    }
    for variable in run.variables:
        env[variable["name"]] = variable["value"]
    return env


def _script(step: StepRun) -> str | None:
    if step.task != SHELL_TASK:
        return None
    return next((i["value"] for i in step.inputs if i["key"] == SHELL_SCRIPT_INPUT), None)


def build_assignment(session: Session, job: JobRun) -> JobAssignment:
    run = session.get_one(PipelineRun, job.run_id)
    stage = session.get_one(StageRun, job.stage_run_id)
    pipeline = session.get_one(Pipeline, run.pipeline_id)
    steps = [s for s in run_queries.list_steps(session, run_id=run.id) if s.job_run_id == job.id]
    return JobAssignment(
        job_run_id=job.id,
        run_id=run.id,
        pipeline_id=pipeline.id,
        name=job.name,
        steps=tuple(
            StepAssignment(step_run_id=s.id, name=s.name, task=s.task, script=_script(s))
            for s in steps
        ),
        env=job_environment(pipeline, run, stage, job),
        secrets=tuple(v["value"] for v in run.variables if v["is_secret"] and v["value"]),
    )


class JobQueue:
    """The database-backed queue executors pull from."""

    def __init__(self, db: Database, *, clock: Clock = system_clock) -> None:
        self.db = db
        self.clock = clock

    def claim_next(self, claimant: str) -> JobAssignment | None:
        """The oldest unclaimed QUEUED job, now claimed by `claimant`; None when there is none."""
        with self.db.writer() as session:
            job = job_queries.claim_next_job(session, claimant=claimant, now=self.clock())
            return None if job is None else build_assignment(session, job)

    def stopped_among(self, job_run_ids: list[str]) -> set[str]:
        """Which of these jobs have ended without their executor (stopped, failed over)."""
        if not job_run_ids:
            return set()
        with self.db.reader() as session:
            statuses = job_queries.list_job_statuses(session, job_run_ids=job_run_ids)
        return {job_id for job_id, status in statuses.items() if status in STAGE_TERMINAL}
