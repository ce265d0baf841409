"""Artifacts of a run: list them, download one
(`/v5/{project_id}/api/pipelines/{pipeline_id}/pipeline-runs/{pipeline_run_id}/artifacts…`)."""

from starlette.responses import FileResponse

from stageline.api.deps import ServicesDep, ViewerCaller
from stageline.api.render import Renderer, artifact_package_type
from stageline.api.routing import v5_router
from stageline.domain.errors import NotFound, excerpt
from stageline.engine.lookups import find_pipeline, find_run
from stageline.schemas.responses.runs import PipelineArtifact, PipelineArtifacts
from stageline.store.queries import artifacts as artifact_queries
from stageline.store.tables import Artifact, PipelineRun

router = v5_router("/v5/{project_id}/api/pipelines/{pipeline_id}/pipeline-runs")


@router.get("/{pipeline_run_id}/artifacts")
def show_pipeline_artifacts(
    caller: ViewerCaller, services: ServicesDep, pipeline_id: str, pipeline_run_id: str
) -> PipelineArtifacts:
    with services.db.reader() as session:
        pipeline = find_pipeline(session, caller.project_id, pipeline_id)
        run = find_run(session, pipeline, pipeline_run_id)
        found = artifact_queries.list_artifacts(session, run_id=run.id)
    renderer = services.renderer
    return {"artifacts": [_artifact(renderer, run, artifact) for artifact in found]}


@router.get(
    "/{pipeline_run_id}/artifacts/{artifact_id}/download",
    response_class=FileResponse,  # not JSON: the file itself
    responses={
        200: {
            "description": "The file, named in Content-Disposition.",
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        }
    },
)
def download_pipeline_artifact(
    caller: ViewerCaller,
    services: ServicesDep,
    pipeline_id: str,
    pipeline_run_id: str,
    artifact_id: str,
) -> FileResponse:
    with services.db.reader() as session:
        pipeline = find_pipeline(session, caller.project_id, pipeline_id)
        run = find_run(session, pipeline, pipeline_run_id)
        artifact = artifact_queries.read_artifact(session, run_id=run.id, artifact_id=artifact_id)
    if artifact is None:
        raise NotFound(f"artifact {excerpt(artifact_id)} not found in run {run.id}")
    path = services.blobs.path(artifact.sha256)
    if not path.exists():
        raise NotFound(f"the file of artifact {artifact.name} is gone from storage")
    filename = artifact.name.rpartition("/")[2]
    return FileResponse(path, filename=filename, media_type="application/octet-stream")


def _artifact(renderer: Renderer, run: PipelineRun, artifact: Artifact) -> PipelineArtifact:
    """An `Artifact` of ShowPipelineArtifacts; every field a string, as the SDK declares."""
    return {
        "project_id": run.project_id,
        "name": artifact.name,
        "artifact_version": str(run.run_number),
        "upload_target": "stageline",
        "artifact_package_type": artifact_package_type(artifact.name),
        "artifact_uri": f"{run.id}/{artifact.name}",
        "artifact_download_url_with_id": renderer.artifact_url(run, artifact),
        "artifact_type": "file",
        "job_id": artifact.job_run_id,
        "build_no": str(run.run_number),
        "daily_build_number": str(run.run_number),
        "file_size": str(artifact.size),
        "hash_code": [{"hash_type": "sha256", "hash_value": artifact.sha256}],
    }
