"""Test data with valid defaults: projects with members, definitions, API helpers."""

import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from stageline.auth import accounts
from stageline.auth.roles import Role
from stageline.engine.clock import system_clock
from stageline.settings import Settings
from stageline.store.database import Database

TERMINAL_RUN = {"COMPLETED", "FAILED", "CANCELED", "IGNORED"}


def shell_job(
    identifier: str, script: str, *, name: str | None = None, **extra: Any
) -> dict[str, Any]:
    return {
        "identifier": identifier,
        "name": name or identifier,
        "steps": [
            {
                "name": f"{name or identifier}_step",
                "task": "official_shell_plugin",
                "identifier": f"STEP_{identifier}",
                "inputs": [{"key": "OFFICIAL_SHELL_SCRIPT_INPUT", "value": script}],
            }
        ],
        **extra,
    }


def stage(identifier: str, *jobs: dict[str, Any], name: str | None = None) -> dict[str, Any]:
    return {"identifier": identifier, "name": name or identifier, "jobs": list(jobs)}


def definition(*stages: dict[str, Any]) -> str:
    return json.dumps({"stages": list(stages)})


PASSING = definition(stage("BUILD", shell_job("COMPILE", "echo compiled")))


@dataclass
class User:
    name: str
    password: str
    user_id: str
    display_name: str
    token: str = ""

    @property
    def headers(self) -> dict[str, str]:
        return {"X-Auth-Token": self.token}


@dataclass
class World:
    """A project and its members, plus shortcuts for the API calls most tests make."""

    client: httpx.Client
    db: Database
    settings: Settings
    project_id: str
    admin: User
    developer: User
    viewer: User
    outsider: User
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def create(cls, client: httpx.Client, db: Database, settings: Settings) -> "World":
        now = system_clock()
        suffix = secrets.token_hex(4)
        project_id = accounts.create_project(db, name=f"project-{suffix}", now=now)
        users = {}
        for role in ("admin", "developer", "viewer", "outsider"):
            name = f"{role}-{suffix}"
            password = secrets.token_urlsafe(12)
            display_name = f"{role.title()} {suffix}"
            user_id = accounts.create_user(
                db, name=name, password=password, now=now, display_name=display_name
            )
            if role != "outsider":
                accounts.add_member(
                    db, project_id=project_id, user_name=name, role=Role.parse(role)
                )
            user = User(name, password, user_id, display_name)
            user.token = login(client, name, password)
            users[role] = user
        return cls(
            client,
            db,
            settings,
            project_id,
            admin=users["admin"],
            developer=users["developer"],
            viewer=users["viewer"],
            outsider=users["outsider"],
        )

    @property
    def base(self) -> str:
        return f"/v5/{self.project_id}/api"

    def create_pipeline(self, definition_text: str = PASSING, **fields: Any) -> str:
        body = {
            "name": f"p-{secrets.token_hex(4)}",
            "is_publish": False,
            "definition": definition_text,
            **fields,
        }
        response = self.client.post(f"{self.base}/pipelines", json=body, headers=self.admin.headers)
        assert response.status_code == 200, response.text
        pipeline_id: str = response.json()["pipeline_id"]
        return pipeline_id

    def run(
        self, pipeline_id: str, body: dict[str, Any] | None = None, user: User | None = None
    ) -> str:
        response = self.client.post(
            f"{self.base}/pipelines/{pipeline_id}/run",
            json=body,
            headers=(user or self.developer).headers,
        )
        assert response.status_code == 200, response.text
        run_id: str = response.json()["pipeline_run_id"]
        return run_id

    def status(self, *pipeline_ids: str, user: User | None = None) -> list[dict[str, Any]]:
        response = self.client.post(
            f"{self.base}/pipelines/status",
            json=list(pipeline_ids),
            headers=(user or self.viewer).headers,
        )
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()
        return items

    def detail(self, pipeline_id: str, run_id: str | None = None) -> dict[str, Any]:
        params = {"pipeline_run_id": run_id} if run_id else {}
        response = self.client.get(
            f"{self.base}/pipelines/{pipeline_id}/pipeline-runs/detail",
            params=params,
            headers=self.viewer.headers,
        )
        assert response.status_code == 200, response.text
        detail: dict[str, Any] = response.json()
        return detail

    def wait_for(
        self, pipeline_id: str, run_id: str, statuses: set[str] = TERMINAL_RUN, timeout: float = 60
    ) -> dict[str, Any]:
        """Poll run detail until the run reaches one of `statuses` (a bound, not a timing check)."""
        deadline = time.monotonic() + timeout
        while True:
            detail = self.detail(pipeline_id, run_id)
            if detail["status"] in statuses:
                return detail
            if time.monotonic() > deadline:
                raise AssertionError(f"run stayed {detail['status']}: {json.dumps(detail)[:2000]}")
            time.sleep(0.05)


def login(client: httpx.Client, name: str, password: str, **scope: Any) -> str:
    body: dict[str, Any] = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {"user": {"name": name, "password": password}},
            }
        }
    }
    if scope:
        body["auth"]["scope"] = scope
    response = client.post("/v3/auth/tokens", json=body)
    assert response.status_code == 201, response.text
    return str(response.headers["X-Subject-Token"])
