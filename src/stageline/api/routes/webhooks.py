"""POST /webhooks/{hook_id} — a forge's webhook delivery; the trigger's secret is the only
credential (no IAM token, no AK/SK signature)."""

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from stageline.api.deps import ServicesDep
from stageline.api.openapi import error_responses
from stageline.api.routing import DeclaredRoute
from stageline.schemas.responses.webhooks import WebhookAnswer

router = APIRouter(responses=error_responses(400, 401, 404), route_class=DeclaredRoute)

WEBHOOK_BODY_SCHEMA = {
    "content": {
        "application/json": {"schema": {"type": "object"}},
        "application/x-www-form-urlencoded": {
            "schema": {"type": "object", "properties": {"payload": {"type": "string"}}}
        },
    },
}


@router.post(
    "/webhooks/{hook_id}",
    responses={200: {"description": "The delivery was received: what came of it."}},
    openapi_extra={"requestBody": {"required": True, **WEBHOOK_BODY_SCHEMA}},
)
async def receive_webhook(hook_id: str, request: Request, services: ServicesDep) -> WebhookAnswer:
    """A GitLab, GitHub, Gitea/Forgejo or CodeArts Repo delivery, sent to the `callback_url` of
    a pipeline trigger with its `security_token` as the secret. Events the trigger does not
    take are answered 200 `ignored` (hosts disable hooks that fail too often); the same
    delivery twice starts one run."""
    body = await request.body()
    answer = await run_in_threadpool(
        services.webhooks.deliver, hook_id=hook_id, headers=request.headers, body=body
    )
    shown: WebhookAnswer = {"result": answer.result}
    if answer.run_id is not None:
        shown["pipeline_run_id"] = answer.run_id
    if answer.reason is not None:
        shown["reason"] = answer.reason
    return shown
