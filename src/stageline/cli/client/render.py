"""How the command line shows runs: status colours and symbols, ages, and the tables of
`status`, `runs` and `pipelines`.

Built on rich. When stdout is not a terminal, rich writes no colour or cursor codes, and the
console is made wide enough that no table row is folded: the output is plain lines a script
can read (`--json` is the stable form for scripts).
"""

import os
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from stageline.domain.statuses import RunStatus, StageStatus
from stageline.schemas.responses.latest_run import LatestRunStage, PipelineLatestRun

PLAIN_WIDTH = 1000
"""The width of a console that is not a terminal: wide enough to never fold a row."""

STYLES: dict[str, str] = {
    RunStatus.COMPLETED: "green",
    RunStatus.FAILED: "bold red",
    RunStatus.RUNNING: "cyan",
    RunStatus.CANCELED: "magenta",
    RunStatus.PAUSED: "yellow",
    RunStatus.SUSPEND: "yellow",
    RunStatus.IGNORED: "dim",
    StageStatus.QUEUED: "blue",
    StageStatus.REDISPATCH: "blue",
    StageStatus.ASYNC_RUNNING: "cyan",
    StageStatus.ASYNC_FAILED: "red",
    StageStatus.INIT: "dim",
    StageStatus.SKIPPED: "dim",
    StageStatus.UNSELECTED: "dim",
}
SYMBOLS: dict[str, str] = {
    StageStatus.COMPLETED: "✓",
    StageStatus.FAILED: "✗",
    StageStatus.ASYNC_FAILED: "✗",
    StageStatus.RUNNING: "▶",
    StageStatus.ASYNC_RUNNING: "▶",
    StageStatus.QUEUED: "○",
    StageStatus.REDISPATCH: "○",
    StageStatus.PAUSED: "‖",
    StageStatus.SUSPEND: "‖",
    StageStatus.CANCELED: "⊘",
    StageStatus.INIT: "·",
    StageStatus.SKIPPED: "-",
    StageStatus.UNSELECTED: "-",
    StageStatus.IGNORED: "-",
}


def make_console(*, stderr: bool = False) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    terminal = stream.isatty() and os.environ.get("TERM") != "dumb"
    return Console(
        file=stream,
        highlight=False,
        width=None if terminal else PLAIN_WIDTH,
        force_terminal=terminal,
        no_color=True if not terminal else None,  # None: NO_COLOR decides
        soft_wrap=not terminal,
    )


def status_text(status: str | None) -> Text:
    if not status:
        return Text("never run", style="dim")
    return Text(status, style=STYLES.get(status, ""))


def stage_dots(stages: Sequence[LatestRunStage] | Sequence[dict[str, Any]]) -> Text:
    text = Text()
    for stage in sorted(stages, key=lambda s: int(s.get("sequence") or 0)):
        status = str(stage.get("status") or "")
        text.append(SYMBOLS.get(status, "?"), style=STYLES.get(status, ""))
    return text


def age(epoch_ms: int | None, now_ms: int) -> str:
    if not epoch_ms:
        return ""
    return f"{span((now_ms - epoch_ms) / 1000)} ago"


def span(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600:02d}h"


def duration(start_ms: int | None, end_ms: int | None, now_ms: int) -> str:
    if not start_ms:
        return ""
    return span(((end_ms or now_ms) - start_ms) / 1000)


def branch_of(run: PipelineLatestRun | None) -> str:
    params = run["build_params"] if run else None
    if not params:
        return ""
    if params.get("tag"):
        return f"tag {params['tag']}"
    return str(params.get("target_branch") or params.get("source_branch") or "")


def show(console: Console, table: Table) -> None:
    """Print `table`; on a console that is no terminal, without the padding that rich puts at
    the end of each row (trailing blanks trip up scripts that split or compare lines)."""
    if console.is_terminal:
        console.print(table)
        return
    with console.capture() as captured:
        console.print(table)
    console.file.write("".join(f"{line.rstrip()}\n" for line in captured.get().splitlines()))
    console.file.flush()


def _table(*columns: str) -> Table:
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for column in columns:
        table.add_column(column, no_wrap=True)
    return table


def status_table(rows: Iterable[tuple[str, PipelineLatestRun | None]], now_ms: int) -> Table:
    """`stageline status`: each pipeline (by name) and its latest run."""
    table = _table("PIPELINE", "RUN", "STATUS", "STAGES", "TRIGGER", "BRANCH", "AGE", "DURATION")
    for name, run in rows:
        if run is None:
            table.add_row(name, "", status_text(None), "", "", "", "", "")
            continue
        table.add_row(
            name,
            f"#{run['run_number']}",
            status_text(run["status"]),
            stage_dots(run["stage_status_list"]),
            run["trigger_type"] or "",
            branch_of(run),
            age(run["start_time"], now_ms),
            duration(run["start_time"], run["end_time"], now_ms),
        )
    return table


def runs_table(runs: Iterable[PipelineLatestRun], now_ms: int) -> Table:
    """`stageline runs`: a pipeline's runs, newest first."""
    table = _table("RUN", "STATUS", "STAGES", "TRIGGER", "BRANCH", "BY", "AGE", "DURATION", "ID")
    for run in runs:
        table.add_row(
            f"#{run['run_number']}",
            status_text(run["status"]),
            stage_dots(run["stage_status_list"]),
            run["trigger_type"] or "",
            branch_of(run),
            run["executor_name"] or "",
            age(run["start_time"], now_ms),
            duration(run["start_time"], run["end_time"], now_ms),
            run["pipeline_run_id"],
        )
    return table


def pipelines_table(items: Iterable[dict[str, Any]], now_ms: int) -> Table:
    """`stageline pipelines`: name, ID and latest run of each."""
    table = _table("PIPELINE", "ID", "LATEST", "STATUS", "AGE")
    for item in items:
        run = item.get("latest_run")
        table.add_row(
            item["name"],
            item["pipeline_id"],
            f"#{run['run_number']}" if run else "",
            status_text(run["status"] if run else None),
            age(run["start_time"], now_ms) if run else "",
        )
    return table
