"""`stageline status`, `pipelines` and `runs`: tables of pipelines and their runs."""

import sys
import time
from typing import TYPE_CHECKING, Annotated, Any

import typer

from stageline.cli.client import outcomes
from stageline.cli.client.config import DEFAULT_PROFILE
from stageline.cli.client.session import (
    JsonOption,
    ProfileOption,
    ProjectOption,
    ServerOption,
    app,
    connect,
    die,
    handled,
    now_ms,
    print_json,
    wants_json,
)
from stageline.domain.statuses import RunStatus

if TYPE_CHECKING:
    from stageline.cli.client.api_client import ApiClient
    from stageline.schemas.responses.latest_run import PipelineLatestRun


def _status_rows(
    client: "ApiClient", wanted: list[str], branch: str | None, statuses: set[str]
) -> list[tuple[str, str, "PipelineLatestRun | None"]]:
    from stageline.cli.client.references import resolve_pipelines

    refs = resolve_pipelines(client, wanted)
    latest = {run["pipeline_id"]: run for run in client.latest_status([r.id for r in refs])}
    rows = []
    for ref in refs:
        run = latest.get(ref.id)
        if statuses and (run is None or run["status"] not in statuses):
            continue
        if branch and (run is None or branch not in _branches(run)):
            continue
        rows.append((ref.id, ref.name, run))
    return rows


def _branches(run: "PipelineLatestRun") -> set[str]:
    params = run["build_params"]
    if params is None:
        return set()
    return {v for v in (params["target_branch"], params["source_branch"], params["tag"]) if v}


@app.command(epilog="Colours: green completed, red failed, cyan running, yellow paused.")
def status(
    pipelines: Annotated[
        list[str] | None, typer.Argument(help="Pipelines (names or IDs; default: all).")
    ] = None,
    branch: Annotated[str | None, typer.Option(help="Only runs of this branch or tag.")] = None,
    status_filter: Annotated[
        list[str] | None,
        typer.Option("--status", help="Only runs in this status (repeatable), e.g. FAILED."),
    ] = None,
    watch: Annotated[bool, typer.Option("--watch", "-w", help="Redraw until Ctrl-C.")] = False,
    interval: Annotated[float, typer.Option(min=0.2, help="Seconds between redraws.")] = 2.0,
    server: ServerOption = None,
    project: ProjectOption = None,
    profile: ProfileOption = DEFAULT_PROFILE,
    as_json: JsonOption = False,
) -> None:
    """The latest run of each pipeline: status, stages (✓ ✗ ▶ ‖ ⊘ · -), trigger, branch, age."""
    statuses = {s.strip().upper() for s in status_filter or [] for s in s.split(",") if s.strip()}
    unknown = statuses - set(RunStatus)
    if unknown:
        die(f"--status: unknown {', '.join(sorted(unknown))}", outcomes.USAGE)
    from stageline.cli.client.render import make_console, show, status_table

    out = make_console()
    as_json = wants_json(as_json)

    def draw() -> Any:
        rows = _status_rows(client, pipelines or [], branch, statuses)
        if as_json:
            return [{"pipeline_id": i, "name": n, "latest_run": r} for i, n, r in rows]
        return status_table([(name, run) for _, name, run in rows], now_ms())

    with handled(), connect(server, project, profile) as client:
        if not watch:
            shown = draw()
            print_json(shown) if as_json else show(out, shown)
            return
        try:
            if out.is_terminal and not as_json:
                from rich.live import Live

                with Live(console=out, auto_refresh=False) as live:
                    while True:
                        live.update(draw(), refresh=True)
                        time.sleep(interval)
            while True:  # not a terminal: one table (or JSON line) per interval
                shown = draw()
                if as_json:
                    print_json(shown)
                else:
                    show(out, shown)
                    out.print()
                sys.stdout.flush()
                time.sleep(interval)
        except KeyboardInterrupt:
            return


@app.command("pipelines")
def pipelines_command(
    server: ServerOption = None,
    project: ProjectOption = None,
    profile: ProfileOption = DEFAULT_PROFILE,
    as_json: JsonOption = False,
) -> None:
    """The project's pipelines: name, ID and latest run."""
    from stageline.cli.client.render import make_console, pipelines_table, show

    with handled(), connect(server, project, profile) as client:
        items = client.list_pipelines()
    if wants_json(as_json):
        print_json(items)
    else:
        show(make_console(), pipelines_table([dict(i) for i in items], now_ms()))


@app.command()
def runs(
    pipeline: Annotated[str, typer.Argument(help="Name or ID.")],
    limit: Annotated[int, typer.Option(min=1, help="How many runs, newest first.")] = 20,
    server: ServerOption = None,
    project: ProjectOption = None,
    profile: ProfileOption = DEFAULT_PROFILE,
    as_json: JsonOption = False,
) -> None:
    """A pipeline's runs, newest first."""
    from stageline.cli.client.references import resolve_pipeline
    from stageline.cli.client.render import make_console, runs_table, show

    with handled(), connect(server, project, profile) as client:
        ref = resolve_pipeline(client, pipeline)
        history = client.list_runs(ref.id, limit=limit)
    if wants_json(as_json):
        print_json(history)
    else:
        show(make_console(), runs_table(history, now_ms()))
