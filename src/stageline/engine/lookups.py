"""Find what a request names, or raise its NotFound: a project's live pipeline, a pipeline's run
(used by the engine's commands and the API's reads alike)."""

from sqlalchemy.orm import Session

from stageline.domain.errors import PipelineNotFound, RunNotFound, excerpt
from stageline.store.queries import pipelines as pipeline_queries
from stageline.store.queries import runs as run_queries
from stageline.store.tables import Pipeline, PipelineRun


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
