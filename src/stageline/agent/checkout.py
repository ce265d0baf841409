"""Check a job's code sources out into its workspace before its first step, into that step's log.

One source goes into the workspace itself, several each into the directory named by its alias
(`SourceCheckout.directory`). The git commands and what git says are logged (secrets masked),
so a failure reads in ShowPipelineLog like the failure of any step.
"""

import threading
from collections.abc import Callable
from pathlib import Path

from stageline.gitrepo import CheckoutTarget, GitError, Remote, check_out
from stageline.schemas.jobs import JobAssignment, JobEvents, SourceCheckout

CHECKOUT_PREFIX = "[stageline]"


def _directory(workspace: Path, checkout: SourceCheckout) -> Path | None:
    """Where `checkout` goes; None for a directory that would not be a plain child."""
    if not checkout.directory:
        return workspace
    name = Path(checkout.directory)
    if len(name.parts) != 1 or checkout.directory.startswith(".") or name.is_absolute():
        return None
    return workspace / name


def check_out_sources(
    job: JobAssignment,
    workspace: Path,
    *,
    events: JobEvents,
    step_run_id: str,
    mask: Callable[[str], str],
    cancelled: threading.Event,
    timeout_seconds: float | None = None,
) -> str | None:
    """Check out each of the job's sources; None when all are, else why not (masked)."""

    def say(line: str) -> None:
        events.step_log(step_run_id, [mask(line)])

    for checkout in job.checkouts:
        directory = _directory(workspace, checkout)
        if directory is None:
            problem = f"cannot check out into '{checkout.directory}': not a directory name"
            say(f"{CHECKOUT_PREFIX} {problem}")
            return mask(problem)
        token = job.env.get(checkout.token_variable) if checkout.token_variable else None
        target = CheckoutTarget(Remote(checkout.url, token or None), checkout.commit, checkout.ref)
        if checkout.commit is None:
            what = checkout.ref or "its default branch"
            say(
                f"{CHECKOUT_PREFIX} the commit of {target.remote.shown} could not be resolved"
                f" when the run started; checking out {what} as it is now"
            )
        options = {} if timeout_seconds is None else {"timeout": timeout_seconds}
        try:
            head = check_out(target, directory, on_line=say, cancelled=cancelled, **options)
        except GitError as error:
            problem = mask(str(error))
            say(f"{CHECKOUT_PREFIX} {problem}")
            return problem
        where = checkout.directory or "the workspace"
        say(f"{CHECKOUT_PREFIX} checked out {head} from {target.remote.shown} into {where}")
    return None
