"""The Jinja2 environment of the dashboard's pages: autoescaped templates from the package, and
the few filters the pages format numbers with (times in the display time zone, durations)."""

from datetime import datetime, tzinfo
from functools import cache
from typing import Any

from fastapi import Request
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.responses import HTMLResponse

from stageline.domain.statuses import RUN_TERMINAL, STAGE_TERMINAL
from stageline.web.sessions import CSRF_FIELD, WebSession, services_of

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def clock_time(epoch_ms: int | None, tz: tzinfo) -> str:
    if not epoch_ms:
        return ""
    return datetime.fromtimestamp(epoch_ms / 1000, tz=tz).strftime(TIME_FORMAT)


def duration(start_ms: int | None, end_ms: int | None, now_ms: int) -> str:
    """`1h 2m`, `3m 4s`, `5s`; empty before the start. A running thing counts up to now."""
    if not start_ms:
        return ""
    seconds = max(0, ((end_ms or now_ms) - start_ms) // 1000)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {seconds}s"
    return f"{seconds}s"


@cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("stageline.web", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["csrf_field"] = CSRF_FIELD
    env.globals["run_terminal"] = sorted(RUN_TERMINAL)
    env.globals["stage_terminal"] = sorted(STAGE_TERMINAL)
    return env


def render(
    request: Request,
    template: str,
    context: dict[str, Any],
    *,
    session: WebSession | None,
    status_code: int = 200,
) -> HTMLResponse:
    services = services_of(request)
    tz = services.settings.display_tz
    now = services.clock()
    page = environment().get_template(template)
    html = page.render(
        **context,
        session=session,
        now=now,
        time=lambda epoch_ms: clock_time(epoch_ms, tz),
        took=lambda start, end: duration(start, end, now),
    )
    return HTMLResponse(
        html,
        status_code=status_code,
        headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY"},
    )
