"""API helpers for pipelines with triggers, and for delivering webhook fixtures to them."""

import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from tests.factories import World
from tests.webhooks import body_of, headers_of

ALL_EVENTS = [
    {"type": kind, "enable": True}
    for kind in ("push", "merge_request", "tag_push", "issue", "note")
]
DELIVERY_HEADERS = (
    "Idempotency-Key",
    "X-Gitlab-Event-UUID",
    "X-GitHub-Delivery",
    "X-Gitea-Delivery",
    "X-Gogs-Delivery",
)


def trigger(
    git_url: str, events: list[dict[str, Any]] | None = None, **extra: Any
) -> dict[str, Any]:
    return {"git_url": git_url, "git_type": "gitlab", "events": events or ALL_EVENTS, **extra}


def pipeline_detail(world: World, pipeline_id: str, user: str = "admin") -> dict[str, Any]:
    response = world.client.get(
        f"{world.base}/pipelines/{pipeline_id}", headers=getattr(world, user).headers
    )
    assert response.status_code == 200, response.text
    detail: dict[str, Any] = response.json()
    return detail


def update(world: World, pipeline_id: str, **fields: Any) -> httpx.Response:
    detail = pipeline_detail(world, pipeline_id)
    body = {
        "name": detail["name"],
        "is_publish": False,
        "definition": detail["definition"],
        "triggers": detail["triggers"],
        **fields,
    }
    return world.client.put(
        f"{world.base}/pipelines/{pipeline_id}", json=body, headers=world.admin.headers
    )


def run_count(world: World, pipeline_id: str) -> int:
    response = world.client.post(
        f"{world.base}/pipelines/{pipeline_id}/pipeline-runs/list",
        json={},
        headers=world.viewer.headers,
    )
    assert response.status_code == 200, response.text
    total: int = response.json()["total"]
    return total


@dataclass
class Hook:
    world: World
    pipeline_id: str
    hook_id: str
    token: str

    @property
    def url(self) -> str:
        return f"/webhooks/{self.hook_id}"

    def send(
        self,
        name: str,
        *,
        body: bytes | None = None,
        secret: str | None = None,
        delivery: str | None = None,
        **headers: str,
    ) -> httpx.Response:
        """Deliver the fixture `name` (or `body` with its headers), signed with the hook's
        secret, under a fresh delivery ID unless `delivery` names one."""
        raw = body_of(name) if body is None else body
        sent = headers_of(name, secret or self.token, raw)
        fresh = delivery or str(uuid.uuid4())
        for header in DELIVERY_HEADERS:
            if header in sent:
                sent[header] = fresh
        sent.update(headers)
        return self.world.client.post(self.url, content=raw, headers=sent)


def code_source(git_url: str, **params: Any) -> dict[str, Any]:
    return {"type": "code", "params": {"git_type": "gitlab", "git_url": git_url, **params}}


def hooked(
    world: World, git_url: str, events: list[dict[str, Any]] | None = None, **fields: Any
) -> Hook:
    """A new pipeline (with `fields`) whose one trigger names `git_url`, and its hook."""
    pipeline_id = world.create_pipeline(triggers=[trigger(git_url, events)], **fields)
    (shown,) = pipeline_detail(world, pipeline_id)["triggers"]
    return Hook(world, pipeline_id, shown["hook_id"], shown["security_token"])
