"""Exit codes of the client commands: documented in the README and in `--help`, stable for
scripts. A command that follows a run ends with the code of how the run ended."""

from stageline.domain.statuses import RunStatus

OK = 0
ERROR = 1
"""The server refused the request (its error_code and error_msg are printed), or bad input."""
USAGE = 2
"""Wrong options or arguments (the command line parser's own code)."""
RUN_FAILED = 3
RUN_CANCELED = 4
RUN_PAUSED = 5
"""The run waits on a manual review: `stageline approve` or `refuse` it."""
RUN_IGNORED = 6
"""The run was dropped by the pipeline's concurrency limit before it started."""
NOT_LOGGED_IN = 7
"""No credentials, an expired token, or credentials the server refused: `stageline login`."""
UNREACHABLE = 8
"""No answer from the server."""
INTERRUPTED = 130
"""Ctrl-C, when the run was left running."""

BY_RUN_STATUS: dict[str, int] = {
    RunStatus.COMPLETED: OK,
    RunStatus.FAILED: RUN_FAILED,
    RunStatus.CANCELED: RUN_CANCELED,
    RunStatus.PAUSED: RUN_PAUSED,
    RunStatus.IGNORED: RUN_IGNORED,
}

HELP = (
    "Exit codes: 0 completed, 1 error, 2 usage, 3 run FAILED, 4 run CANCELED, 5 run PAUSED"
    " (waits on a manual review), 6 run IGNORED, 7 not logged in, 8 server unreachable,"
    " 130 interrupted."
)


def exit_code(run_status: str) -> int:
    return BY_RUN_STATUS.get(run_status, ERROR)
