"""Pipelines: create, list, show, update, delete (`/v5/{project_id}/api/pipelines…`)."""

from typing import Annotated, Any

from fastapi import Body
from sqlalchemy.orm import Session

from stageline.api.deps import AdminCaller, Caller, ServicesDep, ViewerCaller
from stageline.api.openapi import error_responses
from stageline.api.render import SECRET_MASK
from stageline.api.routing import v5_router
from stageline.auth.roles import Role
from stageline.auth.vault import Vault
from stageline.domain.errors import Conflict, InvalidInput
from stageline.domain.pipeline import parse_definition
from stageline.domain.schedules import parse_schedules
from stageline.domain.variables import reserved, reserved_problem
from stageline.engine.journal import Actor
from stageline.engine.lookups import find_pipeline
from stageline.engine.schedules import plan_schedules
from stageline.engine.sources import refuse_bad_sources
from stageline.engine.triggers import hook_ids, shown_triggers, stored_triggers
from stageline.engine.variables import resealed, sealed
from stageline.schemas.pipelines import PipelineCreate, PipelineListQuery
from stageline.schemas.responses.pipelines import PipelineDetail, PipelineList, PipelineRef
from stageline.store.ids import new_id
from stageline.store.queries import hooks as hook_queries
from stageline.store.queries import identity
from stageline.store.queries import pipelines as pipeline_queries
from stageline.store.tables import Pipeline

router = v5_router("/v5/{project_id}/api/pipelines")


def _stored_fields(body: PipelineCreate) -> dict[str, Any]:
    """Validate what a PipelineDTO says and turn it into column values (secret values still in
    clear: `_sealed_variables` seals them)."""
    parse_definition(body.definition)
    schedules = _schedules_with_ids(body.schedules, [])
    parse_schedules(schedules)
    names: set[str] = set()
    variables = []
    for index, variable in enumerate(body.variables):
        if variable.name in names:
            raise InvalidInput(f"variables[{index}].name: duplicate variable '{variable.name}'")
        if reserved(variable.name):
            raise InvalidInput(f"variables[{index}].name: {reserved_problem(variable.name)}")
        names.add(variable.name)
        stored = variable.model_dump()
        stored["sequence"] = variable.sequence or index + 1
        variables.append(stored)
    sources = [s.model_dump(exclude_none=True) for s in body.sources]
    refuse_bad_sources(sources, variables)
    return {
        "name": body.name,
        "description": body.description or "",
        "is_publish": body.is_publish,
        "manifest_version": body.manifest_version,
        "definition": body.definition,
        "sources": sources,
        "variables": variables,
        "schedules": schedules,
        "group_id": body.group_id,
        "concurrency_control": (
            body.concurrency_control.model_dump(exclude_none=True)
            if body.concurrency_control
            else None
        ),
    }


def _sealed_variables(
    given: list[dict[str, Any]], stored: list[dict[str, Any]], vault: Vault
) -> list[dict[str, Any]]:
    """The variables to store, secret values sealed. A secret sent back with the mask that
    ShowPipelineDetail shows keeps its stored value (sealed now if it was stored in clear); a
    new one sent with the mask (a pipeline applied from YAML) starts empty."""
    previous = {v["name"]: v for v in stored if v.get("is_secret")}
    kept = []
    for v in given:
        if v.get("is_secret") and v.get("value") == SECRET_MASK:
            # the mask is never a value: a secret new to the pipeline starts empty
            stored_value = previous.get(v["name"], {}).get("value") or ""
            kept.append(resealed({**v, "value": stored_value}, vault))
        else:
            kept.append(sealed(v, vault))
    return kept


def _schedules_with_ids(
    given: list[dict[str, Any]], stored: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Each schedule with its uuid: the one it was sent with; else that of an equal stored
    schedule (a pipeline applied from YAML has none, and an unchanged schedule must keep its
    planned slots); else a new one."""
    taken = {s["uuid"] for s in given if s.get("uuid")}
    result = []
    for schedule in given:
        uuid = schedule.get("uuid")
        if not uuid:
            content = {k: v for k, v in schedule.items() if k != "uuid"}
            uuid = (
                next(
                    (
                        old["uuid"]
                        for old in stored
                        if old.get("uuid") not in taken
                        and {k: v for k, v in old.items() if k != "uuid"} == content
                    ),
                    None,
                )
                or new_id()
            )
            taken.add(uuid)
        result.append({**schedule, "uuid": uuid})
    return result


def _replace_hooks(session: Session, pipeline: Pipeline) -> None:
    hook_queries.replace_hooks(
        session,
        pipeline_id=pipeline.id,
        project_id=pipeline.project_id,
        hook_ids=hook_ids(pipeline.triggers),
    )


def _shown_triggers(caller: Caller, pipeline: Pipeline, vault: Vault) -> list[dict[str, Any]]:
    """Admins see the webhook secrets, to paste them into the forge; others see them masked
    (a secret lets whoever holds it start runs with build params of their choosing)."""
    if caller.role >= Role.ADMIN:
        return shown_triggers(pipeline.triggers, vault)
    return [
        {**t, "security_token": SECRET_MASK} if t.get("security_token") else dict(t)
        for t in pipeline.triggers
    ]


def _refuse_duplicate_name(
    session: Session, project_id: str, name: str, own_id: str | None
) -> None:
    if pipeline_queries.name_taken(session, project_id=project_id, name=name, except_id=own_id):
        raise Conflict(f"name: a pipeline named '{name}' already exists in this project")


@router.post("", responses=error_responses(400, 409, 415))
def create_pipeline_new(
    caller: AdminCaller, services: ServicesDep, body: PipelineCreate
) -> PipelineRef:
    fields = _stored_fields(body)
    fields["variables"] = _sealed_variables(fields["variables"], [], services.vault)
    fields["triggers"] = stored_triggers(body.triggers, [], services.vault)
    now = services.clock()
    with services.db.writer() as session:
        _refuse_duplicate_name(session, caller.project_id, body.name, None)
        pipeline = Pipeline(
            id=new_id(),
            project_id=caller.project_id,
            creator_id=caller.principal.user_id,
            updater_id=caller.principal.user_id,
            created_at=now,
            updated_at=now,
            run_counter=0,
            deleted=False,
            **fields,
        )
        pipeline_queries.insert_pipeline(session, pipeline)
        _replace_hooks(session, pipeline)
        plan_schedules(session, pipeline_id=pipeline.id, schedules=pipeline.schedules, now=now)
    return {"pipeline_id": pipeline.id}


@router.post("/list", responses=error_responses(400, 415))
def list_pipelines(
    caller: ViewerCaller,
    services: ServicesDep,
    query: Annotated[PipelineListQuery | None, Body()] = None,
) -> PipelineList:
    query = query or PipelineListQuery()
    with services.db.reader() as session:
        project = identity.read_project(session, project_id=caller.project_id)
        assert project is not None
        total, rows = pipeline_queries.list_pipelines(
            session,
            project_id=caller.project_id,
            name=query.name,
            is_publish=query.is_publish,
            creator_ids=query.creator_ids,
            latest_statuses=list(query.status) if query.status else None,
            offset=query.offset,
            limit=query.limit,
            sort_key=query.sort_key,
            sort_dir=query.sort_dir,
        )
    render = services.renderer.pipeline_item
    return {
        "offset": query.offset,
        "limit": query.limit,
        "total": total,
        "current_system_time": services.clock(),
        "pipelines": [render(p, latest, project_name=project.name) for p, latest in rows],
    }


@router.get("/{pipeline_id}")
def show_pipeline_detail(
    caller: ViewerCaller, services: ServicesDep, pipeline_id: str
) -> PipelineDetail:
    with services.db.reader() as session:
        pipeline = find_pipeline(session, caller.project_id, pipeline_id)
        project = identity.read_project(session, project_id=caller.project_id)
        creator = identity.read_user(session, user_id=pipeline.creator_id)
    assert project is not None
    return services.renderer.pipeline(
        pipeline,
        project_name=project.name,
        creator_name=creator.display_name if creator else "",
        triggers=_shown_triggers(caller, pipeline, services.vault),
    )


@router.put("/{pipeline_id}", responses=error_responses(400, 409, 415))
def update_pipeline_info(
    caller: AdminCaller, services: ServicesDep, pipeline_id: str, body: PipelineCreate
) -> PipelineRef:
    fields = _stored_fields(body)
    now = services.clock()
    with services.db.writer() as session:
        pipeline = find_pipeline(session, caller.project_id, pipeline_id, for_update=True)
        _refuse_duplicate_name(session, caller.project_id, body.name, pipeline.id)
        fields["variables"] = _sealed_variables(
            fields["variables"], pipeline.variables, services.vault
        )
        fields["triggers"] = stored_triggers(body.triggers, pipeline.triggers, services.vault)
        fields["schedules"] = _schedules_with_ids(body.schedules, pipeline.schedules)
        fields.update(updater_id=caller.principal.user_id, updated_at=now)
        pipeline_queries.update_pipeline(session, pipeline, fields)
        _replace_hooks(session, pipeline)
        plan_schedules(session, pipeline_id=pipeline_id, schedules=pipeline.schedules, now=now)
    return {"pipeline_id": pipeline_id}


@router.delete("/{pipeline_id}", responses=error_responses(409))
def delete_pipeline(caller: AdminCaller, services: ServicesDep, pipeline_id: str) -> PipelineRef:
    """Soft delete: the pipeline disappears from every read at once; unfinished runs stop."""
    services.engine.delete_pipeline(
        project_id=caller.project_id,
        pipeline_id=pipeline_id,
        actor=Actor.user(caller.principal.name),
    )
    return {"pipeline_id": pipeline_id}
