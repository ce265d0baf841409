"""Find what a request names, or raise its NotFound: a project's live pipeline, a pipeline's run,
a run's step (used by the engine's commands, the API's reads and the dashboard alike)."""

from sqlalchemy.orm import Session

from stageline.domain.errors import PipelineNotFound, RunNotFound, StepNotFound, excerpt
from stageline.store.queries import pipelines as pipeline_queries
from stageline.store.queries import runs as run_queries
from stageline.store.tables import Pipeline, PipelineRun, StepRun


def find_pipeline(
    session: Session, project_id: str, pipeline_id: str, *, for_update: bool = False
) -> Pipeline:
    pipeline = pipeline_queries.read_pipeline(
        session, project_id=project_id, pipeline_id=pipeline_id, for_update=for_update
    )
    if pipeline is None:
        raise PipelineNotFound(f"pipeline {excerpt(pipeline_id)} not found")
    return pipeline


def find_run(session: Session, pipeline: Pipeline, run_id: str) -> PipelineRun:
    run = run_queries.read_run(session, run_id=run_id, pipeline_id=pipeline.id)
    if run is None:
        raise RunNotFound(f"pipeline run {excerpt(run_id)} not found")
    return run


def find_step(
    session: Session, run: PipelineRun, step_run_id: str, *, job_run_id: str | None = None
) -> StepRun:
    """The run's step (of job `job_run_id`, when given)."""
    step = run_queries.read_step(session, step_run_id=step_run_id)
    if job_run_id is not None:
        if step is None or step.run_id != run.id or step.job_run_id != job_run_id:
            raise StepNotFound(
                f"step run {excerpt(step_run_id)} not found in job run {excerpt(job_run_id)}"
            )
    elif step is None or step.run_id != run.id:
        raise StepNotFound(f"step run {excerpt(step_run_id)} not found in run {run.id}")
    return step
