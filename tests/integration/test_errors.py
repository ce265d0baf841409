"""What every failure looks like on the wire."""

import pytest

from tests.factories import World


def test_an_unknown_route_is_apigw_0101(world: World) -> None:
    response = world.client.get("/v5/nope", headers=world.viewer.headers)
    assert response.status_code == 404
    assert response.json()["error_code"] == "APIGW.0101"
    assert response.headers["X-Request-Id"]


def test_a_wrong_method_is_a_405(world: World) -> None:
    response = world.client.delete(f"{world.base}/pipelines", headers=world.viewer.headers)
    assert response.status_code == 405
    assert set(response.json()) >= {"error_code", "error_msg"}


def test_an_oversized_body_is_refused_before_it_is_read(world: World) -> None:
    response = world.client.post(
        f"{world.base}/pipelines/status",
        content=b"[" + b'"a",' * 4_000_000 + b'"a"]',
        headers={**world.viewer.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 413


def test_every_response_has_a_distinct_request_id(world: World) -> None:
    ids = {world.client.get("/health").headers["X-Request-Id"] for _ in range(5)}
    assert len(ids) == 5


@pytest.mark.parametrize("content_type", [None, "application/x-www-form-urlencoded", "text/plain"])
def test_a_body_that_is_not_declared_json_is_a_415_saying_so(
    world: World, content_type: str | None
) -> None:
    headers = dict(world.viewer.headers)
    if content_type:
        headers["Content-Type"] = content_type
    response = world.client.post(f"{world.base}/pipelines/status", content=b"[]", headers=headers)
    assert response.status_code == 415
    assert "Content-Type: application/json" in response.json()["error_msg"]


def test_content_type_is_matched_without_regard_to_case(world: World) -> None:
    headers = {**world.viewer.headers, "Content-Type": "APPLICATION/JSON; charset=UTF-8"}
    response = world.client.post(f"{world.base}/pipelines/status", content=b"[]", headers=headers)
    assert response.status_code == 200
