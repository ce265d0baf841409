"""GET /v5/{project_id}/api/pipelines/status/stream: batch status as Server-Sent Events.

Read over real HTTP with a bounded read timeout: a missing event fails the test at the bound, it
is never a timing check.
"""

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from stageline.api import element_updates
from stageline.api.app import create_app
from stageline.settings import Settings
from tests.conftest import serving
from tests.factories import World, definition, shell_job, stage
from tests.integration.test_feeds import feed_token

READ_BOUND_SECONDS = 30.0
PAUSED = definition(stage("S", shell_job("J", "sleep 0.3")))


class EventStream:
    """The events of an open text/event-stream response, comments (heartbeats) skipped."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._lines = response.iter_lines()

    def next(self) -> dict[str, str]:
        fields: dict[str, str] = {}
        data: list[str] = []
        for line in self._lines:
            if not line:
                if data or "event" in fields:
                    return fields | {"data": "\n".join(data)}
                fields = {}
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "data":
                data.append(value)
            else:
                fields[name] = value
        raise AssertionError("the stream ended")

    def element(self) -> dict[str, Any]:
        event = self.next()
        assert "event" not in event, event
        element: dict[str, Any] = json.loads(event["data"])
        element["_id"] = event["id"]
        return element

    def until(self, pipeline_id: str, status: str) -> dict[str, Any]:
        while True:
            element = self.element()
            if element["pipeline_id"] == pipeline_id and element["status"] == status:
                return element


@contextmanager
def stream(
    base_url: str,
    world: World,
    *pipeline_ids: str,
    headers: dict[str, str] | None = None,
    **params: str,
) -> Iterator[EventStream]:
    with (
        httpx.Client(base_url=base_url, timeout=READ_BOUND_SECONDS, trust_env=False) as http,
        http.stream(
            "GET",
            f"{world.base}/pipelines/status/stream",
            params={"pipeline_ids": ",".join(pipeline_ids), **params},
            headers=world.viewer.headers if headers is None else headers,
        ) as response,
    ):
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache"
        yield EventStream(response)


@pytest.fixture(scope="module")
def other_server(settings: Settings) -> Iterator[str]:
    """A second server on the same database, with its own connections, change feed and caches,
    as another server process has."""
    with serving(create_app(settings)) as url:
        yield url


def without_id(element: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in element.items() if key != "_id"}


class TestEvents:
    def test_first_the_current_elements_then_every_change_then_a_removal(
        self, world: World, live_server: str
    ) -> None:
        done, never_run = world.create_pipeline(), world.create_pipeline(PAUSED)
        world.wait_for(done, world.run(done))
        with stream(live_server, world, never_run, done) as events:
            first = events.element()
            assert without_id(first) == world.status(done)[0]
            assert first["_id"].isdigit()

            run_id = world.run(never_run)
            running = events.element()
            assert running["pipeline_id"] == never_run
            assert running["pipeline_run_id"] == run_id
            completed = events.until(never_run, "COMPLETED")
            assert without_id(completed) == world.status(never_run)[0]
            assert int(completed["_id"]) > int(running["_id"]) >= int(first["_id"])

            deleted = world.client.delete(
                f"{world.base}/pipelines/{done}", headers=world.admin.headers
            )
            assert deleted.status_code == 200
            removal = events.next()
            assert removal["event"] == "removed"
            assert json.loads(removal["data"]) == {"pipeline_id": done}

    def test_a_change_made_through_another_server_reaches_the_stream(
        self, world: World, other_server: str
    ) -> None:
        pipeline_id = world.create_pipeline(PAUSED)
        with stream(other_server, world, pipeline_id) as events:
            run_id = world.run(pipeline_id)
            completed = events.until(pipeline_id, "COMPLETED")
        assert completed["pipeline_run_id"] == run_id
        assert without_id(completed) == world.status(pipeline_id)[0]

    def test_another_projects_pipelines_are_never_streamed(
        self, world: World, live_server: str
    ) -> None:
        other = World.create(world.client, world.db, world.settings)
        foreign = other.create_pipeline()
        other.wait_for(foreign, other.run(foreign))
        mine = world.create_pipeline(PAUSED)
        with stream(live_server, world, foreign, mine) as events:
            other.run(foreign)
            world.run(mine)
            assert events.element()["pipeline_id"] == mine


class TestFeedTokens:
    def test_a_feed_token_of_the_project_opens_its_stream(
        self, world: World, live_server: str
    ) -> None:
        pipeline_id = world.create_pipeline()
        world.wait_for(pipeline_id, world.run(pipeline_id))
        with stream(live_server, world, pipeline_id, headers={}, token=feed_token(world)) as events:
            assert without_id(events.element()) == world.status(pipeline_id)[0]

    def test_another_projects_feed_token_is_refused(self, world: World) -> None:
        other = World.create(world.client, world.db, world.settings)
        response = world.client.get(
            f"{world.base}/pipelines/status/stream",
            params={"pipeline_ids": "a" * 32, "token": feed_token(other)},
        )
        assert response.status_code == 403, response.text


class TestResume:
    @pytest.mark.parametrize("how", ["header", "query"])
    def test_a_reconnecting_client_gets_only_what_changed_meanwhile(
        self, world: World, live_server: str, how: str
    ) -> None:
        still, moved = world.create_pipeline(), world.create_pipeline()
        for pipeline_id in (still, moved):
            world.wait_for(pipeline_id, world.run(pipeline_id))
        with stream(live_server, world, still, moved) as events:
            last_id = max(int(events.element()["_id"]) for _ in range(2))
        moved_again = world.run(moved)
        world.wait_for(moved, moved_again)

        resume = (
            {"headers": world.viewer.headers | {"Last-Event-ID": str(last_id)}}
            if how == "header"
            else {"last_event_id": str(last_id)}
        )
        with stream(live_server, world, still, moved, **resume) as events:
            caught_up = events.element()
            assert caught_up["pipeline_run_id"] == moved_again
            assert caught_up["status"] == "COMPLETED"
            run_of_still = world.run(still)
            # Had `still` been sent again on reconnecting, its old run would come first.
            assert events.element()["pipeline_run_id"] == run_of_still


class TestLifetime:
    def test_a_stream_ends_after_its_bound_and_the_client_resumes_where_it_was(
        self, world: World, live_server: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(element_updates, "STREAM_SECONDS", 1.0)
        pipeline_id = world.create_pipeline()
        world.wait_for(pipeline_id, world.run(pipeline_id))
        with stream(live_server, world, pipeline_id) as events:
            last_id = events.element()["_id"]
            with pytest.raises(AssertionError, match="the stream ended"):
                events.next()
        headers = world.viewer.headers | {"Last-Event-ID": last_id}
        with stream(live_server, world, pipeline_id, headers=headers) as events:
            run_id = world.run(pipeline_id)
            assert events.element()["pipeline_run_id"] == run_id


class TestRefusals:
    @pytest.mark.parametrize(
        ("params", "headers", "fragment"),
        [
            ({}, {}, "pipeline_ids"),
            ({"pipeline_ids": ""}, {}, "pipeline_ids"),
            ({"pipeline_ids": "not-an-id"}, {}, "pipeline_ids[0]"),
            ({"pipeline_ids": "a" * 32, "last_event_id": "x1"}, {}, "Last-Event-ID"),
            ({"pipeline_ids": "a" * 32}, {"Last-Event-ID": "-3"}, "Last-Event-ID"),
        ],
    )
    def test_bad_input_is_a_400(
        self,
        world: World,
        params: dict[str, str],
        headers: dict[str, str],
        fragment: str,
    ) -> None:
        response = world.client.get(
            f"{world.base}/pipelines/status/stream",
            params=params,
            headers=world.viewer.headers | headers,
        )
        assert response.status_code == 400, response.text
        assert fragment in response.json()["error_msg"]
        assert "x-request-id" in response.headers

    def test_a_caller_must_be_a_member(self, world: World) -> None:
        url = f"{world.base}/pipelines/status/stream?pipeline_ids={'a' * 32}"
        assert world.client.get(url).status_code == 401
        assert world.client.get(url, headers=world.outsider.headers).status_code == 403
