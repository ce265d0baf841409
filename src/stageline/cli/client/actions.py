"""`stageline run`, `logs`, `stop`, `retry`, `approve` and `refuse`: starting, following and
acting on runs."""

import json
import sys
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from stageline.cli.client import outcomes
from stageline.cli.client.config import DEFAULT_PROFILE
from stageline.cli.client.errors import ClientError
from stageline.cli.client.session import (
    FollowOption,
    JsonOption,
    ProfileOption,
    ProjectOption,
    ReviewsOption,
    RunArgument,
    ServerOption,
    app,
    connect,
    die,
    handled,
    print_json,
    wants_json,
)
from stageline.domain.statuses import RunStatus, StageStatus

if TYPE_CHECKING:
    from stageline.cli.client.api_client import ApiClient
    from stageline.cli.client.references import RunRef
    from stageline.schemas.responses.runs import RunDetail


def _variables(pairs: list[str]) -> list[dict[str, str]]:
    variables = []
    for pair in pairs:
        name, equals, value = pair.partition("=")
        if not equals or not name:
            die(f"--var {pair!r}: expected NAME=VALUE", outcomes.USAGE)
        variables.append({"name": name, "value": value})
    return variables


def _sources(
    client: "ApiClient", pipeline_id: str, branch: str | None, tag: str | None, commit: str | None
) -> list[dict[str, Any]] | None:
    """The run's `sources`: the pipeline's code sources, the first built from the ref asked
    for (the others from their default branches, as in any run)."""
    if not (branch or tag or commit):
        return None
    detail = client.pipeline(pipeline_id)
    code = [s for s in detail["sources"] if s.get("type") == "code"]
    if not code:
        raise ClientError(
            f"pipeline {detail['name']} has no code source for --branch/--tag/--commit"
        )
    build: dict[str, Any] = {"build_type": "tag", "tag": tag} if tag else {"build_type": "branch"}
    if not tag:
        build["target_branch"] = branch or code[0]["params"].get("default_branch")
    if commit:
        build["commit_id"] = commit  # an extension of RunPipeline's build_params
    keep = ("git_type", "git_url", "alias", "codehub_id", "default_branch", "endpoint_id")
    params: list[dict[str, Any]] = [
        {k: v for k, v in dict(s["params"]).items() if k in keep and v} for s in code
    ]
    params[0]["build_params"] = build
    return [{"type": "code", "params": p} for p in params]


def _stage_identifiers(client: "ApiClient", pipeline_id: str, chosen: list[str]) -> list[str]:
    definition = json.loads(client.pipeline(pipeline_id)["definition"] or "{}")
    stages = definition.get("stages") or []
    by_name = {str(s.get("name")): str(s.get("identifier")) for s in stages}
    identifiers = set(by_name.values())
    found = []
    for text in (t.strip() for c in chosen for t in c.split(",")):
        if text in identifiers:
            found.append(text)
        elif text in by_name:
            found.append(by_name[text])
        elif text:
            raise ClientError(f"--stages: the pipeline has no stage {text!r}")
    return found


def _summary(ref_label: str, detail: "RunDetail") -> dict[str, Any]:
    return {
        "pipeline_id": detail["pipeline_id"],
        "pipeline_name": detail["name"],
        "pipeline_run_id": detail["id"],
        "run_number": detail["run_number"],
        "run": ref_label,
        "status": detail["status"],
    }


def _follow(
    client: "ApiClient",
    run: "RunRef",
    *,
    as_json: bool,
    logs: bool = True,
    announce: bool = True,
    job: str | None = None,
    through_reviews: bool = False,
    then: Callable[[], None] | None = None,
) -> NoReturn:
    """Follow `run` to its end; exit with the code of how it ended.

    With `then`, the logs written so far are skipped and `then` (a retry) is done before the
    first poll: only what it brings about is shown."""
    from stageline.cli.client.follow import Follower
    from stageline.cli.client.render import make_console

    console = make_console(stderr=as_json)  # with --json, stdout holds the one JSON document
    follower = Follower(
        client,
        console,
        run.pipeline.id,
        run.run_id,
        run.label,
        logs=logs,
        announce=announce,
        job_filter=job,
    )
    if then is not None:
        follower.skip_logs(run.detail)
        then()
    while True:
        try:
            detail = follower.follow(through_reviews=through_reviews)
            break
        except KeyboardInterrupt:
            if not (sys.stdin.isatty() and console.is_terminal):
                typer.echo(
                    f"interrupted; {run.label} goes on (`stageline stop {run.label}`)", err=True
                )
                raise typer.Exit(code=outcomes.INTERRUPTED) from None
            try:
                stop = typer.confirm(f"\nStop {run.label}?", default=False)
            except (KeyboardInterrupt, typer.Abort):
                raise typer.Exit(code=outcomes.INTERRUPTED) from None
            if stop:
                client.stop_run(run.pipeline.id, run.run_id)
    status = detail["status"]
    if as_json:
        print_json(_summary(run.label, detail))
    else:
        console.print(f"{run.label} {status}")
        if status == RunStatus.FAILED and detail.get("message"):
            # why the run itself failed (its pipeline file, for one), not one of its jobs
            console.print(str(detail["message"]), markup=False, highlight=False)
        if status == RunStatus.PAUSED:
            console.print(f"waits on a manual review: `stageline approve {run.label}`")
    raise typer.Exit(code=outcomes.exit_code(status))


@app.command(epilog=outcomes.HELP)
def run(
    pipeline: Annotated[str, typer.Argument(help="Name or ID.")],
    var: Annotated[
        list[str] | None, typer.Option("--var", help="A run variable, NAME=VALUE (repeatable).")
    ] = None,
    branch: Annotated[str | None, typer.Option(help="Branch of the first code source.")] = None,
    tag: Annotated[str | None, typer.Option(help="Tag of the first code source.")] = None,
    commit: Annotated[str | None, typer.Option(help="Commit SHA to build.")] = None,
    stages: Annotated[
        list[str] | None,
        typer.Option("--stages", help="Only these stages (names or identifiers, comma-separated)."),
    ] = None,
    description: Annotated[str | None, typer.Option(help="The run's description.")] = None,
    follow: FollowOption = False,
    through_reviews: ReviewsOption = False,
    server: ServerOption = None,
    project: ProjectOption = None,
    profile: ProfileOption = DEFAULT_PROFILE,
    as_json: JsonOption = False,
) -> None:
    """Start a run of a pipeline.

    With --follow, show its stages and jobs and stream its logs until it ends, then exit with
    the code of how it ended. Ctrl-C then asks whether to stop the run; without a terminal it
    exits 130 and the run goes on."""
    if branch and tag:
        die("--branch and --tag exclude each other", outcomes.USAGE)
    from stageline.cli.client.references import RunRef, resolve_pipeline
    from stageline.cli.client.render import make_console

    variables = _variables(var or [])
    as_json = wants_json(as_json)
    with handled(), connect(server, project, profile) as client:
        ref = resolve_pipeline(client, pipeline)
        body: dict[str, Any] = {}
        sources = _sources(client, ref.id, branch, tag, commit)
        if sources:
            body["sources"] = sources
        if variables:
            body["variables"] = variables
        if stages:
            body["choose_stages"] = _stage_identifiers(client, ref.id, stages)
        if description:
            body["description"] = description
        run_id = client.run_pipeline(ref.id, body)
        started = RunRef(ref, client.run_detail(ref.id, run_id=run_id))
        if follow:
            if not as_json:
                make_console().print(f"started {started.label} ({run_id})")
            _follow(client, started, as_json=as_json, through_reviews=through_reviews)
    if as_json:
        print_json(_summary(started.label, started.detail))
    else:
        typer.echo(f"started {started.label} ({run_id})")


@app.command(epilog=outcomes.HELP)
def logs(
    run_ref: RunArgument,
    job: Annotated[str | None, typer.Option(help="Only this job (name or identifier).")] = None,
    follow: FollowOption = False,
    server: ServerOption = None,
    project: ProjectOption = None,
    profile: ProfileOption = DEFAULT_PROFILE,
    as_json: JsonOption = False,
) -> None:
    """Print the log lines of a run's steps, each as `[JOB] line`, then why the run itself
    failed or stopped if it says (a broken pipeline file, for one).

    With -f, go on until the run ends and exit with the code of how it ended."""
    from stageline.cli.client.follow import Follower
    from stageline.cli.client.references import resolve_run
    from stageline.cli.client.render import make_console

    as_json = wants_json(as_json)
    with handled(), connect(server, project, profile) as client:
        found = resolve_run(client, run_ref)
        jobs = [j for s in found.detail["stages"] for j in s["jobs"]]
        if job is not None and job not in {n for j in jobs for n in (j["name"], j["identifier"])}:
            names = ", ".join(j["name"] for j in jobs) or "none"
            raise ClientError(f"{found.label} has no job {job!r} (jobs: {names})")
        if follow:
            _follow(client, found, as_json=as_json, announce=False, job=job, through_reviews=True)
        message = found.detail["message"]
        if not as_json:
            console = make_console()
            Follower(
                client, console, found.pipeline.id, found.run_id, found.label, job_filter=job
            ).stream(found.detail)
            if message and job is None:
                console.print(message, markup=False, highlight=False)
            return
        steps = []
        for j in jobs:
            if job is not None and job not in {j["name"], j["identifier"]}:
                continue
            for step in j["steps"]:
                text = "".join(
                    t
                    for _, t in client.step_log_lines(
                        found.pipeline.id, found.run_id, j["id"], step["id"]
                    )
                )
                steps.append(
                    {"job": j["name"], "step": step["name"], "step_run_id": step["id"], "log": text}
                )
    print_json(
        {"run": found.label, "pipeline_run_id": found.run_id, "message": message, "steps": steps}
    )


# -- acting on a run ------------------------------------------------------------------------------


def _acted(found: "RunRef", what: str, as_json: bool, **extra: Any) -> None:
    if wants_json(as_json):
        print_json({"run": found.label, "pipeline_run_id": found.run_id, "success": True, **extra})
    else:
        typer.echo(f"{what} {found.label}")


@app.command()
def stop(
    run_ref: RunArgument,
    server: ServerOption = None,
    project: ProjectOption = None,
    profile: ProfileOption = DEFAULT_PROFILE,
    as_json: JsonOption = False,
) -> None:
    """Stop a run: its unfinished jobs are canceled."""
    from stageline.cli.client.references import resolve_run

    with handled(), connect(server, project, profile) as client:
        found = resolve_run(client, run_ref)
        client.stop_run(found.pipeline.id, found.run_id)
    _acted(found, "stopping", as_json)


@app.command(epilog=outcomes.HELP)
def retry(
    run_ref: RunArgument,
    failed: Annotated[
        bool, typer.Option("--failed", help="Only the FAILED jobs, not the CANCELED ones.")
    ] = False,
    follow: FollowOption = False,
    server: ServerOption = None,
    project: ProjectOption = None,
    profile: ProfileOption = DEFAULT_PROFILE,
    as_json: JsonOption = False,
) -> None:
    """Run a FAILED or CANCELED run's failed and canceled jobs again, in the same run."""
    from stageline.cli.client.references import resolve_run

    as_json = wants_json(as_json)
    with handled(), connect(server, project, profile) as client:
        found = resolve_run(client, run_ref)
        job_ids = None
        if failed:
            jobs = [j for s in found.detail["stages"] for j in s["jobs"]]
            job_ids = [j["id"] for j in jobs if j["status"] == StageStatus.FAILED]
            if not job_ids:
                raise ClientError(f"{found.label} has no FAILED job")
        if follow:
            retry_it = partial(client.retry_run, found.pipeline.id, found.run_id, job_ids)
            _follow(client, found, as_json=as_json, then=retry_it)
        client.retry_run(found.pipeline.id, found.run_id, job_ids)
    _acted(found, "retrying", as_json)


def _paused_reviews(detail: "RunDetail") -> list[tuple[str, str | None, str]]:
    """(label, job run ID or None for a stage entry, step run ID) of each waiting review."""
    waiting: list[tuple[str, str | None, str]] = []
    for stage in detail["stages"]:
        for step in stage["pre"]:
            if step["status"] == StageStatus.PAUSED:
                waiting.append((f"{stage['name']} (entry)", None, step["id"]))
        for job in stage["jobs"]:
            for step in job["steps"]:
                if step["status"] == StageStatus.PAUSED:
                    waiting.append((f"{stage['name']}/{job['name']}", job["id"], step["id"]))
    return waiting


def _decide(
    run_ref: str,
    *,
    approve: bool,
    job: str | None,
    comment: str | None,
    connection: tuple[str | None, str | None, str],
    as_json: bool,
) -> None:
    from stageline.cli.client.references import resolve_run

    with handled(), connect(*connection) as client:
        found = resolve_run(client, run_ref)
        waiting = _paused_reviews(found.detail)
        if job is not None:
            waiting = [w for w in waiting if w[0].rpartition("/")[2] == job or w[1] == job]
        if not waiting:
            raise ClientError(
                f"{found.label} waits on no manual review{'' if job is None else f' in job {job}'}"
                f" (it is {found.detail['status']})"
            )
        if len(waiting) > 1:
            raise ClientError(
                f"{found.label} waits on several reviews ({', '.join(w[0] for w in waiting)}):"
                " choose one with --job"
            )
        [(label, job_run_id, step_run_id)] = waiting
        if job_run_id is None and not approve:
            raise ClientError(f"{label}: a stage-entry checkpoint can only be approved")
        client.decide_review(
            found.pipeline.id,
            found.run_id,
            job_run_id=job_run_id,
            step_run_id=step_run_id,
            approve=approve,
            comment=comment,
        )
    _acted(found, "approved" if approve else "refused", as_json, review=label)


JobOption = Annotated[
    str | None, typer.Option(help="The review job (name), when the run waits on several.")
]
CommentOption = Annotated[str | None, typer.Option(help="A comment for the review.")]


@app.command()
def approve(
    run_ref: RunArgument,
    comment: CommentOption = None,
    job: JobOption = None,
    server: ServerOption = None,
    project: ProjectOption = None,
    profile: ProfileOption = DEFAULT_PROFILE,
    as_json: JsonOption = False,
) -> None:
    """Pass the manual review a PAUSED run waits on."""
    connection = (server, project, profile)
    _decide(run_ref, approve=True, job=job, comment=comment, connection=connection, as_json=as_json)


@app.command()
def refuse(
    run_ref: RunArgument,
    comment: CommentOption = None,
    job: JobOption = None,
    server: ServerOption = None,
    project: ProjectOption = None,
    profile: ProfileOption = DEFAULT_PROFILE,
    as_json: JsonOption = False,
) -> None:
    """Refuse the manual review a PAUSED run waits on: the review job fails."""
    connection = (server, project, profile)
    _decide(
        run_ref, approve=False, job=job, comment=comment, connection=connection, as_json=as_json
    )
