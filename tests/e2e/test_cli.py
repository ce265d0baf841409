"""The admin CLI as a subprocess: --json outputs, failures, and SKs the server accepts."""

import json
import re
import secrets

import pytest
from huaweicloudsdkcodeartspipeline.v2 import BatchShowPipelinesLatestStatusRequest

from .conftest import ROLES, Server, Tenant, sdk_client

pytestmark = pytest.mark.slow

DOCUMENTED_KEYS = {
    "create-project": {"project_id"},
    "create-user": {"user_id", "name"},
    "add-member": {"project_id", "user_name", "role"},
    "create-access-key": {"ak", "sk"},
}
ID = re.compile(r"^[0-9a-zA-Z]{32}$")


def _fails(server: Server, *args: str, message: str) -> None:
    """The command exits non-zero, prints nothing on stdout and `message` on stderr."""
    result = server.cli(*args)
    assert result.returncode != 0, result.stdout
    assert result.stdout == ""
    assert "error" in result.stderr.lower()
    assert message in result.stderr, result.stderr


def test_bootstrap_outputs_have_exactly_the_documented_keys(tenant: Tenant) -> None:
    outputs = tenant.cli_outputs
    assert {name: len(items) for name, items in outputs.items()} == {
        "create-project": 1,
        "create-user": 4,
        "add-member": 3,
        "create-access-key": 4,
    }
    for command, items in outputs.items():
        for item in items:
            assert set(item) == DOCUMENTED_KEYS[command], (command, item)
    assert ID.match(outputs["create-project"][0]["project_id"])
    for user, account in zip(outputs["create-user"], tenant.accounts.values(), strict=True):
        assert user == {"user_id": account.user_id, "name": account.name}
        assert ID.match(user["user_id"])
    assert [m["role"] for m in outputs["add-member"]] == list(ROLES)
    assert all(m["project_id"] == tenant.project_id for m in outputs["add-member"])
    pairs = outputs["create-access-key"]
    assert len({p["ak"] for p in pairs}) == len(pairs)
    assert all(p["ak"] and p["sk"] and p["ak"] != p["sk"] for p in pairs)


def test_each_command_prints_one_json_object(server: Server) -> None:
    suffix = secrets.token_hex(4)
    project = server.cli("create-project", f"cli-project-{suffix}")
    assert project.returncode == 0, project.stderr
    parsed = json.loads(project.stdout)  # the whole of stdout is one JSON document
    assert set(parsed) == DOCUMENTED_KEYS["create-project"]

    user = server.cli_json("create-user", f"cli-user-{suffix}", "--password", "long-enough-1")
    assert user["name"] == f"cli-user-{suffix}"
    member = server.cli_json(
        "add-member", parsed["project_id"], f"cli-user-{suffix}", "--role", "developer"
    )
    assert member == {
        "project_id": parsed["project_id"],
        "user_name": f"cli-user-{suffix}",
        "role": "developer",
    }


def test_create_user_with_a_short_password_fails(server: Server) -> None:
    name = f"cli-short-{secrets.token_hex(4)}"
    _fails(server, "create-user", name, "--password", "short", message="password")
    # Nothing was created: the user cannot get an access key.
    _fails(server, "create-access-key", name, message=name)


def test_create_user_twice_fails(tenant: Tenant) -> None:
    name = tenant.accounts["viewer"].name
    _fails(tenant.server, "create-user", name, "--password", "long-enough-1", message=name)


def test_add_member_with_a_bad_role_fails(tenant: Tenant) -> None:
    name = tenant.accounts["outsider"].name
    _fails(tenant.server, "add-member", tenant.project_id, name, "--role", "owner", message="owner")


def test_add_member_of_an_unknown_project_fails(tenant: Tenant) -> None:
    unknown = secrets.token_hex(16)
    name = tenant.accounts["outsider"].name
    _fails(tenant.server, "add-member", unknown, name, "--role", "viewer", message=unknown)


def test_create_access_key_for_an_unknown_user_fails(server: Server) -> None:
    name = f"nobody-{secrets.token_hex(4)}"
    _fails(server, "create-access-key", name, message=name)


def test_the_printed_sk_signs_sdk_calls(tenant: Tenant) -> None:
    """A fresh user and key made with the CLI; the SDK, signing with that SK, is let in."""
    server = tenant.server
    name = f"cli-signer-{secrets.token_hex(4)}"
    server.cli_json("create-user", name, "--password", "long-enough-1")
    server.cli_json("add-member", tenant.project_id, name, "--role", "viewer")
    pair = server.cli_json("create-access-key", name)
    client = sdk_client(server.base_url, pair["ak"], pair["sk"])
    response = client.batch_show_pipelines_latest_status(
        BatchShowPipelinesLatestStatusRequest(
            project_id=tenant.project_id, body=[secrets.token_hex(16)]
        )
    )
    assert response.status_code == 200
    assert not response.body  # unknown pipelines are simply absent
