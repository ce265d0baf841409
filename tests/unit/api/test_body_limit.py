"""BodyLimit counts the bytes that arrive: 413 as soon as a route's limit is passed, and the
rest of the body is never asked for."""

import asyncio
import re
from collections.abc import Iterator

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from stageline.api.body_limit import BodyLimit, RouteLimit

MB = 1024 * 1024
UPLOAD = RouteLimit(method="PUT", path=re.compile(r"/upload/[^/]+"), max_bytes=8 * MB)


class Body:
    """A request body of `chunks` chunks of a MB, counting how many the server asked for."""

    def __init__(self, chunks: int) -> None:
        self.chunks = chunks
        self.asked = 0

    async def receive(self) -> Message:
        self.asked += 1
        more = self.asked < self.chunks
        return {"type": "http.request", "body": b"x" * MB, "more_body": more}


class Reader:
    """An application that reads the whole body and answers its size; it notes a disconnect."""

    def __init__(self) -> None:
        self.disconnected = False
        self.sizes: list[int] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        size = 0
        try:
            async for chunk in request.stream():
                size += len(chunk)
        except ClientDisconnect:
            self.disconnected = True
            raise
        self.sizes.append(size)
        await Response(str(size))(scope, receive, send)


def call(
    method: str, path: str, body: Body, headers: dict[str, str] | None = None
) -> tuple[list[Message], Reader]:
    reader = Reader()
    app = BodyLimit(reader, max_bytes=3 * MB, route_limits=[UPLOAD])
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append({**message, "reader_let_go": reader.disconnected})

    scope: Scope = {
        "type": "http",
        "method": method,
        "path": path,
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
        "state": {"request_id": "rid"},
    }
    asyncio.run(app(scope, body.receive, send))
    return sent, reader


def statuses(sent: list[Message]) -> Iterator[int]:
    return (m["status"] for m in sent if m["type"] == "http.response.start")


class TestBodyLimit:
    def test_a_streamed_body_past_the_limit_is_a_413_before_the_rest_is_read(self) -> None:
        body = Body(chunks=300)
        sent, reader = call("POST", "/v3/auth/tokens", body)
        assert list(statuses(sent)) == [413]
        answer = orjson.loads(sent[1]["body"])
        assert answer["error_code"] == "APIGW.0201"
        assert answer["error_msg"] == f"request body larger than {3 * MB} bytes"
        assert body.asked == 4  # 3 MB are allowed: the fourth passes the limit
        assert reader.sizes == []
        # The application saw the client go and let go of the body before the 413 went out.
        assert sent[0]["reader_let_go"]

    def test_a_declared_length_past_the_limit_is_a_413_without_reading(self) -> None:
        body = Body(chunks=4)
        sent, _ = call("POST", "/x", body, {"Content-Length": str(4 * MB)})
        assert list(statuses(sent)) == [413]
        assert body.asked == 0

    def test_a_body_up_to_the_limit_is_passed_on_whole(self) -> None:
        sent, reader = call("POST", "/x", Body(chunks=3))
        assert list(statuses(sent)) == [200]
        assert reader.sizes == [3 * MB]

    def test_a_route_with_its_own_limit_may_take_more(self) -> None:
        sent, reader = call("PUT", "/upload/abc", Body(chunks=8))
        assert list(statuses(sent)) == [200]
        assert reader.sizes == [8 * MB]
        body = Body(chunks=100)
        sent, _ = call("PUT", "/upload/abc", body)
        assert list(statuses(sent)) == [413]
        assert body.asked == 9

    def test_only_the_routes_method_and_whole_path_have_its_limit(self) -> None:
        for method, path in (("POST", "/upload/abc"), ("PUT", "/upload/abc/more")):
            sent, _ = call(method, path, Body(chunks=8))
            assert list(statuses(sent)) == [413], (method, path)
