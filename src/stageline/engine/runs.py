"""The run engine's commands: start, stop and retry runs, decide manual reviews, delete pipelines.

Each command is one write transaction that takes the caller's project and locks the run row
first (`locked_run`), so reports of jobs running in parallel are applied one after another and
roll-ups always see a consistent run; routes only read and call commands. Every status change
goes through `engine.transitions` and is journalled with the command's actor. Jobs queued by a
transaction wait in the database for an agent to claim them; `on_queued` is called once that
transaction has committed, to answer waiting claims at once.
"""

import contextlib
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from stageline.auth.vault import Vault
from stageline.domain.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    JobNotFound,
    RunNotAccepted,
    RunNotFound,
    StepNotFound,
    excerpt,
)
from stageline.domain.pipeline import CHECKPOINT_TASK, review_of
from stageline.domain.statuses import (
    RUN_ACTIVE,
    RUN_IN_PROGRESS,
    RUN_RETRYABLE,
    RUN_TERMINAL,
    STAGE_ACTIVE,
    STAGE_KEPT_BY_RETRY,
    STAGE_NOT_REACHED,
    STAGE_RETRYABLE,
    RunStatus,
    StageStatus,
    TriggerType,
)
from stageline.domain.transitions import Intent
from stageline.engine.clock import Clock, system_clock
from stageline.engine.journal import Actor, Journal
from stageline.engine.lookups import find_pipeline
from stageline.engine.metrics import EngineMetrics
from stageline.engine.progress import advance, condition_of
from stageline.engine.scheduler import Executor, RunOrigin, plan_run, run_origin
from stageline.engine.sources import (
    SourceResolver,
    needs_resolving,
    pipeline_file_of,
    token_values,
)
from stageline.engine.state import RunState
from stageline.engine.transitions import admit, apply, apply_all, apply_run, roll_up
from stageline.schemas.runs import RunCreate
from stageline.store.database import Database
from stageline.store.queries import pipelines as pipeline_queries
from stageline.store.queries import runs as run_queries
from stageline.store.queries import schedules as schedule_queries
from stageline.store.tables import JobRun, PipelineRun, StepRun

log = logging.getLogger(__name__)

S = StageStatus
CLEANUP_FUNCTIONS = frozenset({"always", "cancelled"})
"""A job whose condition names one of these may still run after its run was stopped."""


@dataclass(frozen=True)
class Reviewer:
    user_id: str
    name: str


@dataclass(frozen=True)
class RunScope:
    """Which run a command is about, as the caller named it: its project and pipeline too, so
    that a run of another project or pipeline is never found."""

    project_id: str
    pipeline_id: str
    run_id: str


class RunEngine:
    """Starts, stops and retries runs; agents' reports go through `engine.dispatcher`."""

    def __init__(
        self,
        db: Database,
        *,
        clock: Clock = system_clock,
        vault: Vault | None = None,
        resolver: SourceResolver | None = None,
        metrics: EngineMetrics | None = None,
    ) -> None:
        self.db = db
        self.metrics = metrics or EngineMetrics()
        """Counts what this process's committed transactions changed (`engine.metrics`)."""
        self.resolver = resolver
        """Fixes the commit of a new run's code sources; None (benchmarks) leaves it as the
        request or event gave it."""
        self.clock = clock
        self.vault = vault
        """Seals secret variable values of new runs and opens them for agents and conditions.
        None only where no pipeline has secrets (benchmarks, tests): meeting one then fails
        (`engine.variables.NoVault`) rather than keep it in clear."""
        self.on_queued: Callable[[], None] | None = None

    # -- the transaction every change runs in -----------------------------------------------

    @contextlib.contextmanager
    def locked_run(self, scope: RunScope | str, actor: Actor) -> Iterator[RunState]:
        """Lock the run (a `RunScope`, or a bare run ID for the server's own sweeps), yield its
        state, then advance it, append its changes to the change log and commit."""
        with self._locked(scope, actor) as state:
            yield state

    @contextlib.contextmanager
    def locked_run_of_job(self, job_run_id: str, actor: Actor) -> Iterator[RunState]:
        """`locked_run` for the run of this job."""
        with self._locked(job_run_id, actor, by_job=True) as state:
            yield state

    @contextlib.contextmanager
    def _locked(
        self, scope: RunScope | str, actor: Actor, *, by_job: bool = False
    ) -> Iterator[RunState]:
        journal = Journal(now=self.clock(), actor=actor)
        with self.db.writer() as session:
            run = self._lock_run(session, scope, by_job=by_job)
            # One flush at commit: the command's changes are written together, a row each,
            # instead of being flushed piecemeal before every query the command makes.
            with session.no_autoflush:
                state = RunState(session, run, journal, vault=self.vault)
                was_active = run.status in RUN_ACTIVE  # before the command: a stop ends it
                yield state
                queued = self._settle(state, was_active=was_active)
            journal.flush(session)
        self.metrics.count_committed(journal)
        if queued:
            self.wake()

    @staticmethod
    def _lock_run(session: Session, scope: RunScope | str, *, by_job: bool) -> PipelineRun:
        """The run `scope` names (a job's run with `by_job`), locked, its payload unloaded."""
        if by_job:
            assert isinstance(scope, str)
            found = run_queries.read_run_of_job(session, job_run_id=scope)
            if found is None:
                raise JobNotFound(f"job run {excerpt(scope)} not found")
            return found
        if isinstance(scope, RunScope):
            find_pipeline(session, scope.project_id, scope.pipeline_id)
            run_id, pipeline_id = scope.run_id, scope.pipeline_id
        else:
            run_id, pipeline_id = scope, None
        run = run_queries.read_run(
            session, run_id=run_id, pipeline_id=pipeline_id, for_update=True, without_payload=True
        )
        if run is None:
            raise RunNotFound(f"pipeline run {excerpt(run_id)} not found")
        return run

    def wake(self) -> None:
        if self.on_queued is not None:
            self.on_queued()

    def _settle(self, state: RunState, *, was_active: bool) -> bool:
        """Advance the run; when the transaction ended it (the command or the advance), start
        runs its concurrency limit held back."""
        queued = advance(state)
        if was_active and state.run.status in RUN_TERMINAL:
            queued |= self._release_suspended(state.session, state.run.pipeline_id, state.journal)
        return queued

    # -- commands ---------------------------------------------------------------------------

    def start_run(
        self,
        *,
        project_id: str,
        pipeline_id: str,
        request: RunCreate,
        executor: Executor,
        trigger: TriggerType = TriggerType.MANUAL,
        actor: Actor | None = None,
        event_params: Mapping[str, str | None] | None = None,
        with_run: Callable[[Session, str], None] | None = None,
    ) -> str:
        """Create a run with the next run number and start it; returns its ID. `event_params`
        are the build params a trigger's event names (`domain.webhooks`): they take precedence
        over the pipeline's and the request's. `with_run` is called with the transaction and
        the new run's ID once the run is written: what it writes commits with the run, and
        what it raises undoes the run (a webhook's delivery record, `engine.webhooks`; a
        schedule's slot, `engine.schedules`). The pipeline's row is locked by then.

        Admission: over the pipeline's concurrency limit the run waits as SUSPEND
        (`exceed_action` QUEUE) or is recorded as IGNORED and `RunNotAccepted` raised (ABORT).

        The commit of each code source is fixed here (`engine.sources`), asking its repository
        before the write transaction begins.
        """
        origin = self._origin(project_id, pipeline_id, request, trigger, event_params)
        journal = Journal(now=self.clock(), actor=actor or Actor.user(executor.display_name))
        with self.db.writer() as session:
            pipeline = find_pipeline(session, project_id, pipeline_id)
            tree = plan_run(
                pipeline,
                request,
                executor=executor,
                trigger=trigger,
                now=journal.now,
                vault=self.vault,
                event_params=event_params,
                origin=origin,
            )
            admitted = (  # a run that fails at once takes no slot of the concurrency limit
                RunStatus.RUNNING
                if tree.problem is not None
                else self._admission(
                    session, pipeline.id, pipeline.concurrency_control, exclude=tree.run.id
                )
            )
            tree.run.run_number = pipeline_queries.next_run_number(
                session, pipeline_id=pipeline.id, run_id=tree.run.id
            )
            state = RunState(
                session,
                tree.run,
                journal,
                stages=tree.stages,
                jobs=tree.jobs,
                steps=tree.steps,
                vault=self.vault,
            )
            admit(state, admitted)
            run_queries.insert_run_tree(session, tree.run, tree.stages, tree.jobs, tree.steps)
            if with_run is not None:
                with_run(session, tree.run.id)
            if tree.problem is not None:
                _fail_at_start(state, tree.problem)
                queued = False
            else:
                if admitted != RunStatus.RUNNING:
                    _hold(state, admitted)
                queued = advance(state)
            journal.flush(session)
        self.metrics.count_committed(journal)
        if admitted == RunStatus.IGNORED:
            limit = (pipeline.concurrency_control or {}).get("concurrency_number")
            raise RunNotAccepted(
                f"the pipeline already runs {limit} time(s) at once, its concurrency limit;"
                f" run #{tree.run.run_number} was not started (exceed_action ABORT)",
                run_id=tree.run.id,
            )
        if queued:
            self.wake()
        return tree.run.id

    def _origin(
        self,
        project_id: str,
        pipeline_id: str,
        request: RunCreate,
        trigger: TriggerType,
        event_params: Mapping[str, str | None] | None,
    ) -> RunOrigin | None:
        """The new run's sources with their commits resolved, and the pipeline file it takes
        its stages from if the pipeline names one (read at the resolved commit); None when
        there is nothing to resolve (the run's transaction then plans them itself)."""
        if self.resolver is None:
            return None
        with self.db.reader() as session:
            pipeline = find_pipeline(session, project_id, pipeline_id)
            if not pipeline.sources and not request.sources:
                return None
            origin = run_origin(pipeline, request, trigger, event_params)
            path = pipeline_file_of(pipeline.sources)
            if path is None and not needs_resolving(origin.sources):
                return None
            tokens = token_values(origin.sources, pipeline.variables, request, self.vault)
        origin = origin.resolved(self.resolver.resolve(origin.sources, tokens))
        if path is None:
            return origin
        return origin.with_file(self.resolver.read_pipeline_file(origin.sources, path, tokens))

    def stop_run(self, scope: RunScope, *, actor: Actor) -> None:
        """Cancel every unfinished stage, job and step; agents kill what they run when they next
        hear from the server. Jobs whose condition asks for `cancelled()` or `always()` and that
        had not started yet still run, as clean-up, before the run ends CANCELED."""
        with self.locked_run(scope, actor) as state:
            run = state.run
            if run.status in RUN_TERMINAL:
                raise Conflict(f"run #{run.run_number} has already ended ({run.status})")
            _cancel(state, f"canceled by {actor.name}")

    def delete_pipeline(self, *, project_id: str, pipeline_id: str, actor: Actor) -> None:
        """Soft-delete a pipeline and cancel its unfinished runs, all in one transaction: the
        pipeline disappears from every read at once, and no run of it goes on."""
        journal = Journal(now=self.clock(), actor=actor)
        with self.db.writer() as session:
            pipeline = find_pipeline(session, project_id, pipeline_id, for_update=True)
            pipeline_queries.update_pipeline(
                session, pipeline, {"deleted": True, "updated_at": journal.now}
            )
            for run_id in run_queries.list_run_ids(
                session, pipeline_id=pipeline_id, statuses=list(RUN_ACTIVE)
            ):
                run = run_queries.read_run(session, run_id=run_id, for_update=True)
                if run is None or run.status in RUN_TERMINAL:
                    continue
                state = RunState(session, run, journal, vault=self.vault)
                message = f"canceled by {actor.name}: the pipeline was deleted"
                _cancel(state, message, clean_up=False)
                advance(state)
            schedule_queries.delete_schedule_plans(session, pipeline_ids=[pipeline_id])
            journal.record_deletion(project_id=project_id, pipeline_id=pipeline_id)
            journal.flush(session)
        self.metrics.count_committed(journal)

    def retry_run(self, scope: RunScope, *, job_run_ids: list[str] | None, actor: Actor) -> None:
        """Run the failed (or canceled) jobs again inside the same run and run number: those in
        `job_run_ids`, or all of them. Jobs skipped because of them and stages that never
        started follow as usual.

        A retried run counts against the pipeline's concurrency limit like a new one: over it,
        it waits as SUSPEND for a slot (`exceed_action` QUEUE), or the retry is refused and the
        run left as it was (ABORT)."""
        with self.locked_run(scope, actor) as state:
            run = state.run
            if run.status not in RUN_RETRYABLE:
                raise Conflict(
                    f"only a FAILED or CANCELED run can be retried; run #{run.run_number}"
                    f" is {run.status}"
                )
            chosen = _jobs_to_retry(state, job_run_ids)
            if not chosen:
                raise Conflict(f"run #{run.run_number} has no failed or canceled job to retry")
            admitted = self._readmission(state.session, run)
            restarted_stages = {job.stage_run_id for job in chosen}
            first = min(s.sequence for s in state.stages if s.id in restarted_stages)
            for job in state.jobs:
                later = state.stage_of(job).sequence >= first
                if job in chosen or (later and job.status in STAGE_NOT_REACHED):
                    apply(state, job, S.INIT, intent=Intent.RETRY)
                    for step in state.steps_of_job(job):
                        apply(state, step, S.INIT, intent=Intent.RETRY)
            for stage in state.stages:
                if stage.sequence >= first and stage.status not in STAGE_KEPT_BY_RETRY:
                    apply(state, stage, S.INIT, intent=Intent.RETRY)
                    for step in state.entry_steps(stage):
                        apply(state, step, S.INIT, intent=Intent.RETRY)
            run.stop_requested_at = None
            run.message = None
            apply_run(state, admitted, intent=Intent.RETRY)
            if admitted == RunStatus.SUSPEND:
                apply_all(state, [*state.stages, *state.jobs], S.SUSPEND)

    def decide_review(
        self,
        scope: RunScope,
        *,
        step_run_id: str,
        job_run_id: str | None,
        reviewer: Reviewer,
        approve: bool,
        comment: str | None = None,
    ) -> None:
        """Pass or refuse a paused manual review: a review job's step (`job_run_id` given) or a
        stage-entry review (`job_run_id` None)."""
        with self.locked_run(scope, Actor.user(reviewer.name)) as state:
            step = state.step(step_run_id)
            if step is None or step.task != CHECKPOINT_TASK or step.job_run_id != job_run_id:
                where = f"job run {job_run_id}" if job_run_id else "a stage entry"
                raise StepNotFound(
                    f"no manual review step {excerpt(step_run_id)} in {where} of this run"
                )
            if step.status != S.PAUSED:
                raise Conflict(f"the review is not waiting for a decision (it is {step.status})")
            review = review_of(tuple((i["key"], i["value"]) for i in step.inputs))
            if review.approvers and not {reviewer.user_id, reviewer.name} & set(review.approvers):
                raise Forbidden(f"{reviewer.name} is not an approver of this review")
            verdict = f"{'passed' if approve else 'refused'} by {reviewer.name}"
            if comment:
                verdict += f": {comment}"
            if not approve:
                settle_review(state, step, passed=False, message=verdict)
                return
            if reviewer.user_id not in step.approvals:
                step.approvals = [*step.approvals, reviewer.user_id, reviewer.name]
            if _approved(review.approvers, review.check_strategy, step.approvals):
                settle_review(state, step, passed=True, message=verdict)

    # -- concurrency ------------------------------------------------------------------------

    def _admission(
        self,
        session: Session,
        pipeline_id: str,
        control: dict[str, Any] | None,
        *,
        exclude: str,
    ) -> RunStatus:
        """RUNNING, or SUSPEND / IGNORED when the pipeline's concurrency limit is reached."""
        control = control or {}
        limit = control.get("concurrency_number") or 0
        if control.get("enable") is False or limit < 1:
            return RunStatus.RUNNING
        active = run_queries.count_runs(
            session,
            pipeline_id=pipeline_id,
            statuses=list(RUN_IN_PROGRESS | {RunStatus.SUSPEND}),
            exclude=exclude,
        )
        if active < limit:
            return RunStatus.RUNNING
        return RunStatus.IGNORED if control.get("exceed_action") == "ABORT" else RunStatus.SUSPEND

    def _readmission(self, session: Session, run: PipelineRun) -> RunStatus:
        """RUNNING or SUSPEND for a run about to be retried; `Conflict` when the pipeline is at
        its concurrency limit and drops what exceeds it."""
        control = pipeline_queries.read_concurrency_control(session, pipeline_id=run.pipeline_id)
        if not control:
            return RunStatus.RUNNING
        pipeline_queries.lock_pipeline(session, pipeline_id=run.pipeline_id)
        admitted = self._admission(session, run.pipeline_id, control, exclude=run.id)
        if admitted == RunStatus.IGNORED:
            raise Conflict(
                f"the pipeline already runs {control.get('concurrency_number')} time(s) at once,"
                f" its concurrency limit; run #{run.run_number} was not retried"
                " (exceed_action ABORT): retry it once one of them has ended"
            )
        return admitted

    def _release_suspended(self, session: Session, pipeline_id: str, journal: Journal) -> bool:
        """Start the oldest SUSPEND runs of the pipeline while it is under its limit."""
        control = pipeline_queries.read_concurrency_control(session, pipeline_id=pipeline_id)
        if not control:
            return False  # nothing is ever held back
        session.flush()  # the runs counted below must include the one that just ended
        pipeline_queries.lock_pipeline(session, pipeline_id=pipeline_id)
        limit = control.get("concurrency_number") or 0
        queued = False
        running = run_queries.count_runs(
            session, pipeline_id=pipeline_id, statuses=list(RUN_IN_PROGRESS)
        )
        for run_id in run_queries.list_run_ids(
            session, pipeline_id=pipeline_id, statuses=[RunStatus.SUSPEND], oldest_first=True
        ):
            if limit >= 1 and running >= limit:
                break
            run = run_queries.read_run(session, run_id=run_id, for_update=True)
            if run is None or run.status != RunStatus.SUSPEND:
                continue
            state = RunState(session, run, journal, vault=self.vault)
            apply_all(state, [*state.stages, *state.jobs], S.INIT)
            apply_run(state, RunStatus.RUNNING)
            queued |= advance(state)
            running += 1
        return queued


def _fail_at_start(state: RunState, problem: str) -> None:
    """End a new run that cannot run (its pipeline file is missing or broken): FAILED, with
    the problem as its message, which run detail shows."""
    apply_run(state, RunStatus.FAILED)
    state.run.message = problem


def _hold(state: RunState, admitted: RunStatus) -> None:
    """Hold a new run back: SUSPEND (waits for a slot) or IGNORED (dropped)."""
    work = S.SUSPEND if admitted == RunStatus.SUSPEND else S.IGNORED
    apply_all(state, [*state.stages, *state.jobs], work)
    if admitted == RunStatus.IGNORED:
        state.run.end_time = state.now
        state.run.message = "not started: the pipeline's concurrency limit was reached"
    roll_up(state)


def _cancel(state: RunState, message: str, *, clean_up: bool = True) -> None:
    """Cancel what has not ended, keeping clean-up jobs that have yet to run (unless not
    `clean_up`: a deleted pipeline's runs end at once)."""
    run = state.run
    run.stop_requested_at = state.now
    cleanup_stages = set()
    for job in state.jobs:
        stage = state.stage_of(job)
        if clean_up and _is_cleanup(job) and stage.status in STAGE_ACTIVE and job.status == S.INIT:
            cleanup_stages.add(stage.id)
            continue
        apply(state, job, S.CANCELED, message=message)
        apply_all(state, state.steps_of_job(job), S.CANCELED)
    for stage in state.stages:
        apply_all(state, state.entry_steps(stage), S.CANCELED)
        if stage.id not in cleanup_stages:
            apply(state, stage, S.CANCELED)
    roll_up(state)
    if not cleanup_stages:
        apply_run(state, RunStatus.CANCELED)  # if it was between stages
    run.message = message


def _is_cleanup(job: JobRun) -> bool:
    return bool(condition_of(job).status_functions & CLEANUP_FUNCTIONS)


def _jobs_to_retry(state: RunState, job_run_ids: list[str] | None) -> list[JobRun]:
    if not job_run_ids:
        return [job for job in state.jobs if job.status in STAGE_RETRYABLE]
    chosen = []
    for index, job_run_id in enumerate(job_run_ids):
        job = state.job(job_run_id)
        if job is None:
            raise JobNotFound(
                f"job_run_ids[{index}]: job run {excerpt(job_run_id)} is not in this run"
            )
        if job.status not in STAGE_RETRYABLE:
            raise InvalidInput(
                f"job_run_ids[{index}]: job '{job.name}' is {job.status}; only FAILED or"
                " CANCELED jobs are retried"
            )
        chosen.append(job)
    return chosen


def _approved(approvers: tuple[str, ...], strategy: str, approvals: list[str]) -> bool:
    """Approvers are listed by user ID or name; `approvals` holds both of each who passed."""
    if not approvers or strategy == "any":
        return True
    return all(approver in approvals for approver in approvers)


def settle_review(state: RunState, step: StepRun, *, passed: bool, message: str) -> None:
    """End a paused review: passed -> COMPLETED and the stage or job goes on; else FAILED."""
    ending = S.COMPLETED if passed else S.FAILED
    apply(state, step, ending, started=True, message=message)
    job = state.job(step.job_run_id) if step.job_run_id else None
    if job is not None:
        apply(state, job, ending, started=True, message=message)
        return
    stage = next(s for s in state.stages if s.id == step.stage_run_id)
    if not passed:
        apply(state, stage, S.FAILED)
    elif state.jobs_of(stage):
        apply(state, stage, S.RUNNING)
    else:
        apply(state, stage, S.COMPLETED, started=True)
