"""A pipeline's page (run history, the Run form, its definition as YAML) and its edit page.

Both read and write through the API's own handlers, called as functions with the session's
caller: a run started here, or an edit saved here, is validated and carried out exactly as the
same request to the API would be, and refused with the same messages.

The page's run history is kept current by a stream (Server-Sent Events) that says only *that*
the pipeline's runs changed, once per batch of committed changes: the page then fetches itself
again and takes the new history from it, so the rows are always the server's own rendering.
"""

import json
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from pydantic import ValidationError
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from stageline.api.deps import Caller, Services
from stageline.api.element_updates import HEARTBEAT_SECONDS, STREAM_SECONDS, ended, event_id
from stageline.api.errors import field_path
from stageline.api.routes.pipelines import show_pipeline_detail, update_pipeline_info
from stageline.api.routes.runs import list_pipeline_runs, run_pipeline
from stageline.auth.roles import Role
from stageline.domain.errors import Conflict, InvalidInput
from stageline.schemas.pipeline_yaml import definition_from_yaml
from stageline.schemas.pipelines import PipelineCreate
from stageline.schemas.runs import RunCreate, RunListQuery
from stageline.store.queries import changes as change_queries
from stageline.web.login_pages import read_form
from stageline.web.sessions import (
    CSRF_FIELD,
    ApiSession,
    ChangingSession,
    PageSession,
    caller_on,
    check_csrf,
    services_of,
)
from stageline.web.templating import render

router = APIRouter(include_in_schema=False)
RUNS_PER_PAGE = 20
RETRY_MS = 2000
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
EDITABLE = ("name", "description", "variables", "definition")
"""The edit form's fields; an error is shown at the one its field path starts with."""
KEPT = (
    "is_publish",
    "manifest_version",
    "sources",
    "schedules",
    "triggers",
    "group_id",
    "concurrency_control",
)
"""What an edit sends back unchanged, as ShowPipelineDetail gave it."""


def _pipeline_url(project_id: str, pipeline_id: str) -> str:
    return f"/projects/{project_id}/pipelines/{pipeline_id}"


@router.get("/projects/{project_id}/pipelines/{pipeline_id}")
async def pipeline_page(
    request: Request, session: PageSession, project_id: str, pipeline_id: str, page: int = 1
) -> Response:
    caller = await caller_on(request, session, project_id, Role.VIEWER)
    services = services_of(request)
    # The change log's mark before the read: the stream tells of what changed after it.
    mark, _ = await services.log_tail.fresh()
    page = max(1, min(page, 100_000))
    query = RunListQuery(offset=(page - 1) * RUNS_PER_PAGE, limit=RUNS_PER_PAGE)
    detail = await run_in_threadpool(show_pipeline_detail, caller, services, pipeline_id)
    runs = await run_in_threadpool(list_pipeline_runs, caller, services, pipeline_id, query)
    stages = json.loads(detail["definition"]).get("stages", [])
    context = {
        "mark": mark,
        "project_id": project_id,
        "pipeline": detail,
        "stages": stages,
        "runs": runs["pipeline_runs"],
        "total": runs["total"],
        "page": page,
        "pages": max(1, -(-runs["total"] // RUNS_PER_PAGE)),
        "runtime_variables": [v for v in detail["variables"] if v.get("is_runtime")],
        "can_run": caller.role >= Role.DEVELOPER,
        "can_edit": caller.role >= Role.ADMIN,
    }
    return render(request, "pipeline.html", context, session=session)


@router.get("/projects/{project_id}/pipelines/{pipeline_id}/stream")
async def history_stream(
    request: Request, session: ApiSession, project_id: str, pipeline_id: str, after: str = ""
) -> Response:
    """An event (its data `{}`, its `id` the change sequence it is current up to) whenever a
    run of the pipeline changed; the first at once if one changed after `after` (or
    Last-Event-ID, on a reconnection)."""
    caller = await caller_on(request, session, project_id, Role.VIEWER)
    services = services_of(request)
    await run_in_threadpool(show_pipeline_detail, caller, services, pipeline_id)  # 404s up front
    resume_after = event_id(request.headers.get("last-event-id") or after)
    events = _history_events(services, project_id, pipeline_id, resume_after)
    return EventSourceResponse(events, ping=HEARTBEAT_SECONDS, headers=STREAM_HEADERS)


async def _history_events(
    services: Services, project_id: str, pipeline_id: str, after: int | None
) -> AsyncIterator[ServerSentEvent]:
    deadline = time.monotonic() + STREAM_SECONDS
    with services.live.watch(project_id=project_id, pipeline_ids=frozenset({pipeline_id})) as watch:
        yield ServerSentEvent(comment="pipeline history", retry=RETRY_MS)
        seq = after or 0
        if after is not None:
            seq, changed = await run_in_threadpool(_changed_after, services, pipeline_id, after)
            if changed:
                yield ServerSentEvent("{}", id=str(seq))
        while not ended(deadline):
            changes = await watch.next(min(HEARTBEAT_SECONDS, deadline - time.monotonic()))
            if watch.take_overflow() or changes:
                seq = max([seq, *(change.seq for change in changes)])
                yield ServerSentEvent("{}", id=str(seq))


def _changed_after(services: Services, pipeline_id: str, after: int) -> tuple[int, bool]:
    """The change log's mark, and whether the pipeline changed after `after` (up to the mark
    at least): a reconnection resumes from the mark, so a change is told once."""
    with services.db.connection() as connection:
        mark = change_queries.latest_seq(connection)
        changed = change_queries.pipelines_changed_after(
            connection, after_seq=after, pipeline_ids=[pipeline_id]
        )
    return max(mark, after), changed is None or pipeline_id in changed


@router.post("/projects/{project_id}/pipelines/{pipeline_id}/run")
async def start_run(
    request: Request, session: ChangingSession, project_id: str, pipeline_id: str
) -> dict[str, str]:
    """JSON in (RunPipelineDTO: `variables`, `choose_stages`, …), the new run's page out."""
    caller = await caller_on(request, session, project_id, Role.DEVELOPER)
    try:
        body = RunCreate.model_validate_json(await request.body() or b"{}")
    except ValidationError as error:
        first = error.errors()[0]
        raise InvalidInput(f"{field_path(first['loc'])}: {first['msg']}") from None
    services = services_of(request)
    started = await run_in_threadpool(run_pipeline, caller, services, pipeline_id, body)
    run_id = started["pipeline_run_id"]
    url = f"{_pipeline_url(project_id, pipeline_id)}/runs/{run_id}"
    return {"pipeline_run_id": run_id, "url": url}


@router.get("/projects/{project_id}/pipelines/{pipeline_id}/edit")
async def edit_page(
    request: Request, session: PageSession, project_id: str, pipeline_id: str
) -> Response:
    caller = await caller_on(request, session, project_id, Role.ADMIN)
    services = services_of(request)
    detail = await run_in_threadpool(show_pipeline_detail, caller, services, pipeline_id)
    form = {
        "name": detail["name"],
        "description": detail["description"] or "",
        "variables": json.dumps(detail["variables"], indent=2),
        "definition": detail["yaml_definition"],
        "format": "yaml",
    }
    context = {"project_id": project_id, "pipeline": detail, "form": form, "errors": {}}
    return render(request, "edit.html", context, session=session)


@router.post("/projects/{project_id}/pipelines/{pipeline_id}/edit")
async def save_edit(
    request: Request, session: PageSession, project_id: str, pipeline_id: str
) -> Response:
    form = await read_form(request)
    check_csrf(session, form.get(CSRF_FIELD))
    caller = await caller_on(request, session, project_id, Role.ADMIN)
    services = services_of(request)
    detail = await run_in_threadpool(show_pipeline_detail, caller, services, pipeline_id)
    shown = {name: form.get(name, "") for name in EDITABLE}
    shown["format"] = "json" if form.get("format") == "json" else "yaml"
    try:
        body = _edited(detail, shown)
        await run_in_threadpool(_save, caller, services, pipeline_id, body)
    except _FieldError as error:
        context = {
            "project_id": project_id,
            "pipeline": detail,
            "form": shown,
            "errors": {error.field: error.message},
        }
        return render(request, "edit.html", context, session=session, status_code=400)
    return RedirectResponse(_pipeline_url(project_id, pipeline_id), status_code=303)


class _FieldError(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _field_of(message: str) -> str:
    """The form field an API error message is about, by the field path it starts with."""
    head = message.split(":", 1)[0].strip()
    root = head.split(".", 1)[0].split("[", 1)[0]
    if root in EDITABLE:
        return root
    return "definition" if root in ("stages", "yaml_definition") else "form"


def _edited(detail: Any, form: dict[str, str]) -> PipelineCreate:
    """The PipelineDTO of the edit: the form's four fields over what the pipeline has."""
    try:
        variables = json.loads(form["variables"] or "[]")
    except json.JSONDecodeError as error:
        raise _FieldError("variables", f"variables: not JSON: {error}") from None
    if form["format"] == "yaml":
        try:
            definition = definition_from_yaml(form["definition"])
        except InvalidInput as error:
            raise _FieldError("definition", f"definition: {error.message}") from None
    else:
        definition = form["definition"]
    body = {name: detail[name] for name in KEPT}
    body |= {
        "name": form["name"],
        "description": form["description"],
        "variables": variables,
        "definition": definition,
    }
    try:
        return PipelineCreate.model_validate(body)
    except ValidationError as error:
        first = error.errors()[0]
        message = f"{field_path(first['loc'])}: {first['msg']}"
        raise _FieldError(_field_of(message), message) from None


def _save(caller: Caller, services: Services, pipeline_id: str, body: PipelineCreate) -> None:
    try:
        update_pipeline_info(caller, services, pipeline_id, body)
    except (InvalidInput, Conflict) as error:
        raise _FieldError(_field_of(error.message), error.message) from None
