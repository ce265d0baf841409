"""The bare route: what a plain FastAPI app answers, to set the limit route against.

`POST /v5/{project_id}/api/bench/bare?bytes=N` returns the same ready-made body as Stageline's
limit route, through the same route shape (a path parameter, a validated query parameter) and
the same response class, but with no authentication and none of Stageline's middleware or error
handlers. It is a separate app in its own uvicorn process tree rather than a route inside the
Stageline server, because inside it every request would still go through Stageline's middleware
and routing table: what is measured here is the stack alone (uvicorn, Starlette, FastAPI).

`python -m bench.bare_app --port P --workers N` serves it with the uvicorn options of
`stageline serve --workers N` (no access log, the same graceful-shutdown bound); the benchmark
pins it to the CPU the Stageline server gets, and runs the two one after the other, never at once.
"""

import argparse
from typing import Annotated

import uvicorn
from fastapi import FastAPI, Query
from starlette.responses import Response

READY_PATH = "/v5/bench/api/bench/bare"
GRACEFUL_SHUTDOWN_SECONDS = 3

app = FastAPI(title="bare")
_bodies: dict[int, bytes] = {}


@app.post("/v5/{project_id}/api/bench/bare")
async def bench_bare(
    project_id: str, size: Annotated[int, Query(alias="bytes", ge=2, le=16_000_000)] = 2
) -> Response:
    body = _bodies.get(size)
    if body is None:
        body = _bodies[size] = b"[" + b" " * (size - 2) + b"]"
    return Response(body, media_type="application/json")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    uvicorn.run(
        "bench.bare_app:app",
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level="info",
        access_log=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )


if __name__ == "__main__":
    main()
