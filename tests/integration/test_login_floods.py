"""A flood of logins with wrong passwords does not hold up anybody else's writes.

Password checks (scrypt) used to run inside the login's write transaction: with 8 clients
sending wrong passwords, unrelated pipeline updates went from 4.5 ms to 1 s (8.5 s at worst).
Here every password check of the flood is held in the middle of hashing until the test has made
its pipeline updates: they must all go through while the flood's logins are still unanswered.
Under the old code the first held login kept SQLite's write lock (and the others a PostgreSQL
connection each), so the updates could not finish.
"""

import secrets
import threading
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from stageline.auth import iam
from stageline.auth.secrets import check_password
from tests.factories import World, definition, shell_job, stage

FLOOD_CLIENTS = 32
"""More than the database pool's connections (8 + 16 overflow), as many as would be parked."""
UPDATES = 20
BOUND_SECONDS = 60
"""How long any one wait may take before the test gives up: a bound, not a timing check."""


def wrong_login(base_url: str, index: int) -> int:
    """A wrong password for a made-up user, each from an address of its own: nothing the flood
    sends is throttled, so every request costs a password check."""
    with httpx.Client(base_url=base_url, timeout=BOUND_SECONDS * 2) as http:
        answer = http.post(
            "/v3/auth/tokens",
            json={
                "auth": {
                    "identity": {
                        "methods": ["password"],
                        "password": {
                            "user": {"name": f"flood-{secrets.token_hex(4)}", "password": "no"}
                        },
                    }
                }
            },
            headers={"X-Forwarded-For": f"198.51.100.{index + 1}"},
        )
        return answer.status_code


def test_pipeline_updates_go_through_while_a_login_flood_is_being_checked(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    hashing = threading.Event()
    release = threading.Event()
    real_check: Callable[[str, str], bool] = check_password

    def held_check(password: str, stored: str) -> bool:
        hashing.set()
        release.wait(BOUND_SECONDS)  # held mid-hash until the updates are done
        return real_check(password, stored)

    monkeypatch.setattr(iam, "check_password", held_check)
    pipeline_id = world.create_pipeline()
    base_url = str(world.client.base_url)
    answers: list[int] = []

    def flood(index: int) -> None:
        answers.append(wrong_login(base_url, index))

    threads = [threading.Thread(target=flood, args=(i,)) for i in range(FLOOD_CLIENTS)]
    for thread in threads:
        thread.start()
    updated: list[int] = []
    try:
        assert hashing.wait(BOUND_SECONDS), "no login of the flood reached its password check"
        for number in range(UPDATES):
            body: dict[str, Any] = {
                "name": f"updated-{number}-{secrets.token_hex(3)}",
                "is_publish": False,
                "definition": definition(stage("S", shell_job("J", f"echo {number}"))),
            }
            response = world.client.put(
                f"{world.base}/pipelines/{pipeline_id}", json=body, headers=world.admin.headers
            )
            updated.append(response.status_code)
        unanswered_during_updates = FLOOD_CLIENTS - len(answers)
    finally:
        release.set()
        for thread in threads:
            thread.join(BOUND_SECONDS * 2)
    assert updated == [200] * UPDATES
    assert unanswered_during_updates == FLOOD_CLIENTS  # every login was still being checked
    assert answers == [401] * FLOOD_CLIENTS
