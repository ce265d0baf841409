"""What the user types for a pipeline or a run, resolved to IDs.

A pipeline is its name or its ID. A run is `PIPELINE#NUMBER`, `PIPELINE#RUN_ID`, a pipeline
alone (its latest run) or a bare run ID, which is looked for among the project's pipelines
(their latest runs first, then one detail call per pipeline).
"""

import re
from dataclasses import dataclass

from stageline.cli.client.api_client import ApiClient
from stageline.cli.client.errors import ApiError, ClientError
from stageline.schemas.responses.pipelines import PipelineItem
from stageline.schemas.responses.runs import RunDetail

_ID = re.compile(r"[0-9a-zA-Z]{32}")
_NUMBER = re.compile(r"[0-9]{1,10}")


@dataclass(frozen=True)
class PipelineRef:
    id: str
    name: str


def _index(items: list[PipelineItem]) -> tuple[dict[str, PipelineRef], dict[str, PipelineRef]]:
    by_id = {i["pipeline_id"]: PipelineRef(i["pipeline_id"], i["name"]) for i in items}
    by_name = {ref.name: ref for ref in by_id.values()}
    return by_id, by_name


def resolve_pipelines(
    client: ApiClient, wanted: list[str], items: list[PipelineItem] | None = None
) -> list[PipelineRef]:
    """The pipelines named (by name or ID), in the order given; all of them for none."""
    items = client.list_pipelines() if items is None else items
    by_id, by_name = _index(items)
    if not wanted:
        return list(by_id.values())
    found = []
    for text in wanted:
        ref = by_name.get(text) or by_id.get(text)
        if ref is None:
            raise ClientError(f"no pipeline named {text!r} in project {client.project_id}")
        found.append(ref)
    return found


def resolve_pipeline(client: ApiClient, text: str) -> PipelineRef:
    [ref] = resolve_pipelines(client, [text])
    return ref


@dataclass(frozen=True)
class RunRef:
    pipeline: PipelineRef
    detail: RunDetail

    @property
    def run_id(self) -> str:
        return self.detail["id"]

    @property
    def label(self) -> str:
        return f"{self.pipeline.name}#{self.detail['run_number']}"


def resolve_run(client: ApiClient, text: str) -> RunRef:
    """The run `text` names, with its detail as it is now."""
    items = client.list_pipelines()
    by_id, by_name = _index(items)
    pipeline_text, hash_, run_text = text.partition("#")
    if hash_:
        pipeline = by_name.get(pipeline_text) or by_id.get(pipeline_text)
        if pipeline is None:
            raise ClientError(f"no pipeline named {pipeline_text!r} in project {client.project_id}")
        if _NUMBER.fullmatch(run_text):
            detail = client.run_detail(pipeline.id, run_number=int(run_text))
        elif _ID.fullmatch(run_text):
            detail = client.run_detail(pipeline.id, run_id=run_text)
        else:
            raise ClientError(f"{text!r}: after '#' comes a run number or a run ID")
        return RunRef(pipeline, detail)
    pipeline = by_name.get(text) or by_id.get(text)
    if pipeline is not None:  # a pipeline alone: its latest run
        return RunRef(pipeline, client.run_detail(pipeline.id))
    if not _ID.fullmatch(text):
        raise ClientError(f"{text!r} is neither a pipeline nor a run (PIPELINE#NUMBER, a run ID)")
    latest = [i for i in items if i["latest_run"] and i["latest_run"]["pipeline_run_id"] == text]
    for item in latest + [i for i in items if i not in latest]:
        try:
            detail = client.run_detail(item["pipeline_id"], run_id=text)
        except ApiError as error:
            if error.status_code == 404:
                continue
            raise
        return RunRef(by_id[item["pipeline_id"]], detail)
    raise ClientError(f"no run {text} in project {client.project_id}")
