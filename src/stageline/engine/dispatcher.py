"""Build agents' side of the engine: claim a job under a lease, report on it, keep it alive.

A claim hands out a fresh `dispatch_id`; every report and heartbeat names it, and one naming
any other is refused (`StaleDispatch`): an agent whose lease expired, and whose job went to
another agent, can never change that job again. A job is therefore never run twice at once as
far as the server is concerned: the stale agent learns at its next heartbeat to kill it.

Claims and heartbeats also record the agent as seen (`build_agent`), at most every
`SEEN_WRITE_MS` per agent and process: the sweep tells from that who is connected.
"""

import hmac
import logging
import secrets
import threading
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from stageline.auth.vault import Vault
from stageline.domain.errors import JobNotFound, StaleDispatch, excerpt
from stageline.domain.pipeline import SHELL_SCRIPT_INPUT, SHELL_TASK, artifact_patterns
from stageline.domain.statuses import STAGE_TERMINAL
from stageline.domain.variables import reserved, source_variables
from stageline.domain.waiting import without_wait
from stageline.engine.journal import Actor
from stageline.engine.reports import LogLimits, apply_event
from stageline.engine.runs import RunEngine
from stageline.engine.sources import TOKEN_VARIABLE, code_sources, source_ref
from stageline.engine.state import RunState
from stageline.engine.variables import opened, secret_values
from stageline.schemas.jobs import (
    ClaimRequest,
    EventBatch,
    EventsApplied,
    Heartbeat,
    HeartbeatReply,
    JobAssignment,
    SourceCheckout,
    StepAssignment,
)
from stageline.store.queries import agents as agent_queries
from stageline.store.queries import artifacts as artifact_queries
from stageline.store.queries import jobs as job_queries
from stageline.store.queries import logs as log_queries
from stageline.store.queries import runs as run_queries
from stageline.store.tables import JobRun, StepRun

log = logging.getLogger(__name__)
AGENT = Actor.agent("agent")
"""Who reports until the claim is checked; then the claiming agent itself."""
SEEN_WRITE_MS = 5_000
"""An agent's sighting is written at most this often (per agent and server process): its long
poll asks for a job every second, and a busy agent heartbeats every two."""
GONE_MS = 7 * 24 * 3600 * 1000
"""Agents not seen for this long are forgotten (every restart of an agent is a new instance)."""
Kit = tuple[str, frozenset[str]]
"""The pool an agent claims from and its labels."""


@dataclass(frozen=True)
class LeasePolicy:
    lease_seconds: float = 60.0
    """How long a claim lives without a heartbeat or report."""
    max_redispatch: int = 2
    """How often a job is taken from a lost agent and queued again before it FAILS."""

    @property
    def lease_ms(self) -> int:
        return int(self.lease_seconds * 1000)


def job_environment(context: Any, job: JobRun, variables: Mapping[str, str]) -> dict[str, str]:
    """Run metadata and variables (`variables`, opened) as every step of the job sees them
    (documented in README); `context` has the columns of `store.queries.runs.JOB_CONTEXT_COLUMNS`.

    A variable with a reserved name is left out: runs resolved before such names were refused
    may still carry one, and it must not replace PATH or what Stageline sets (nor may one
    named like a code source's own variables, `<ALIAS>_REPO_…`)."""
    params = context.build_params or {}
    commit = params.get("commit_id") or ""
    env = {
        "CI": "true",
        "STAGELINE": "true",
        "PROJECT_ID": context.project_id,
        "PIPELINE_ID": context.pipeline_id,
        "PIPELINE_NAME": context.pipeline_name,
        "PIPELINE_RUN_ID": context.run_id,
        "RUN_NUMBER": str(context.run_number),
        "PIPELINE_NUMBER": str(context.run_number),
        "TRIGGER_TYPE": context.trigger_type,
        "EXECUTOR_ID": context.executor_id,
        "EXECUTE_USER": context.executor_name,
        "COMMIT_ID": commit,
        "COMMIT_ID_SHORT": commit[:8],
        "COMMIT_MESSAGE": params.get("message") or "",
        "BUILD_TYPE": params.get("build_type") or "",
        "BRANCH": params.get("target_branch") or "",
        "TARGET_BRANCH": params.get("target_branch") or "",
        "SOURCE_BRANCH": params.get("source_branch") or "",
        "TAG": params.get("tag") or "",
        "MERGE_ID": params.get("merge_id") or "",
        "REPO_URL": params.get("git_url") or "",
        "STAGE_NAME": context.stage_name,
        "JOB_NAME": job.name,
        "JOB_RUN_ID": job.id,
    }
    for source in code_sources(context.sources or []):
        alias = source["params"].get("alias")
        if alias:
            chosen = source["params"].get("build_params") or {}
            branch = chosen.get("target_branch") if chosen.get("build_type") != "tag" else None
            values = (
                chosen.get("commit_id"),
                source["params"].get("git_url"),
                branch,
                chosen.get("tag"),
            )
            env.update(zip(source_variables(alias), (v or "" for v in values), strict=True))
    return {
        **{name: value for name, value in variables.items() if not reserved(name)},
        **env,
    }


def checkouts(sources: list[dict[str, Any]]) -> tuple[SourceCheckout, ...]:
    """The run's code sources the agent checks out: those this version fixed a commit for
    (runs made before it recorded no `build_params` per source and check nothing out). One
    goes into the workspace itself; several each into a directory named by its alias."""
    code = code_sources(sources)
    found = []
    for number, source in enumerate(code, start=1):
        params = source["params"]
        chosen = params.get("build_params")
        if not params.get("git_url") or not isinstance(chosen, dict):
            continue
        found.append(
            SourceCheckout(
                url=params["git_url"],
                commit=chosen.get("commit_id"),
                ref=source_ref(chosen),
                directory=(params.get("alias") or f"source{number}") if len(code) > 1 else "",
                token_variable=params.get(TOKEN_VARIABLE),
            )
        )
    return tuple(found)


def _script(step: StepRun) -> str | None:
    if step.task != SHELL_TASK:
        return None
    return next((i["value"] for i in step.inputs if i["key"] == SHELL_SCRIPT_INPUT), None)


def build_assignment(
    session: Session, job: JobRun, policy: LeasePolicy, vault: Vault | None
) -> JobAssignment:
    """What the agent is told: the only place secret values leave the database opened."""
    context = run_queries.read_job_context(session, job_run_id=job.id)
    steps = run_queries.list_job_steps(session, job_run_id=job.id)
    offsets = log_queries.next_line_numbers(session, step_run_ids=[s.id for s in steps])
    return JobAssignment(
        job_run_id=job.id,
        run_id=context.run_id,
        pipeline_id=context.pipeline_id,
        name=job.name,
        steps=tuple(
            StepAssignment(
                step_run_id=s.id,
                name=s.name,
                task=s.task,
                script=_script(s),
                log_offset=offsets[s.id],
                artifacts=artifact_patterns(tuple((i["key"], i["value"]) for i in s.inputs)),
            )
            for s in steps
        ),
        env=job_environment(context, job, opened(context.variables, vault)),
        secrets=secret_values(context.variables, vault),
        dispatch_id=job.dispatch_id or "",
        lease_seconds=policy.lease_seconds,
        checkouts=checkouts(context.sources or []),
    )


class Sightings:
    """When this process last wrote that it saw each agent, and the pool and labels it last
    claimed with."""

    MAX_REMEMBERED = 10_000

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._written: dict[str, tuple[int, Kit | None]] = {}

    def due(self, name: str, now: int, *, claiming: Kit | None = None) -> bool:
        """Whether a sighting of `name` at `now` is worth writing; if so, it counts as written.
        A claim with another pool or other labels than the last one written always is."""
        with self._lock:
            written_at, kit = self._written.get(name, (None, None))
            fresh = written_at is not None and now - written_at < SEEN_WRITE_MS
            if fresh and claiming in (None, kit):
                return False
            if len(self._written) >= self.MAX_REMEMBERED:
                self._written.clear()
            self._written[name] = (now, kit if claiming is None else claiming)
            return True


class Dispatcher:
    """What the agent routes call."""

    def __init__(
        self, engine: RunEngine, policy: LeasePolicy, log_limits: LogLimits = LogLimits()
    ) -> None:
        self.engine = engine
        self.policy = policy
        self.log_limits = log_limits
        self.sightings = Sightings()

    def claim(self, request: ClaimRequest, *, agent_name: str) -> JobAssignment | None:
        """The oldest waiting job this agent may take, now claimed by it; None if there is none.
        Every attempt counts as seeing the agent, with the pool and labels it claims with."""
        now = self.engine.clock()
        claimant = f"{agent_name}/{request.agent}"[:128]
        with self.engine.db.writer() as session:
            kit = (request.pool, frozenset(request.labels))
            if self.sightings.due(claimant, now, claiming=kit):
                agent_queries.update_agent_seen(
                    session,
                    name=claimant,
                    pool=request.pool,
                    labels=request.labels,
                    now=now,
                    claiming=True,
                )
                agent_queries.delete_agents_gone(session, before=now - GONE_MS)
            job = job_queries.claim_next_job(
                session,
                claimant=claimant,
                pool=request.pool,
                labels=request.labels,
                dispatch_id=secrets.token_hex(16),
                now=now,
                lease_ms=self.policy.lease_ms,
            )
            if job is None:
                return None
            job.message = without_wait(job.message)  # it no longer waits
            assignment = build_assignment(session, job, self.policy, self.engine.vault)
            queued_at = job.queued_at
        self.engine.metrics.count_claim(queued_at=queued_at, claimed_at=now)
        return assignment

    def report(self, job_run_id: str, batch: EventBatch) -> EventsApplied:
        """Apply the events of `batch` not applied before, in order; renew the lease. The
        changes are journalled as made by the agent that holds the claim."""
        with self.engine.locked_run_of_job(job_run_id, AGENT) as state:
            job = _current_job(state, job_run_id, batch.dispatch_id)
            applied = job.events_applied
            for event in sorted(batch.events, key=lambda e: e.seq):
                if event.seq <= applied:
                    continue  # a resend of what was applied already
                if event.seq != applied + 1:
                    break  # a gap: the agent resends from the first missing one
                apply_event(state, job, event, self.log_limits)
                applied = event.seq
            job.events_applied = applied
            if job.status not in STAGE_TERMINAL:
                job.lease_expires_at = state.now + self.policy.lease_ms
            return EventsApplied(applied=applied, cancel=job.status in STAGE_TERMINAL)

    def heartbeat(self, beat: Heartbeat) -> HeartbeatReply:
        """Renew the leases of the agent's current claims; the rest it must kill."""
        if not beat.jobs:
            return HeartbeatReply(cancel=[])
        now = self.engine.clock()
        current: set[str] = set()
        for job_run_id, dispatch_id in beat.jobs.items():  # one short transaction each: a
            with self.engine.db.writer() as session:  # heartbeat never holds two job rows
                current |= job_queries.renew_lease(
                    session,
                    job_run_id=job_run_id,
                    dispatch_id=dispatch_id,
                    until=now + self.policy.lease_ms,
                )
        with self.engine.db.reader() as session:
            claims = job_queries.list_claims(session, job_run_ids=list(current))
        self._seen_running(claims.values(), now)
        ended = {job_id for job_id, claim in claims.items() if claim.status in STAGE_TERMINAL}
        return HeartbeatReply(cancel=sorted((set(beat.jobs) - current) | ended))

    def _seen_running(self, claims: Collection[job_queries.Claim], now: int) -> None:
        """A heartbeat names no agent: its current claims do. An agent not known yet is
        recorded with the pool and labels its jobs asked for, which it has at least."""
        known: dict[str, tuple[str, set[str]]] = {}
        for claim in claims:
            if claim.claimed_by is not None:
                pool, labels = known.setdefault(claim.claimed_by, (claim.pool, set()))
                if claim.pool == pool:
                    labels.update(claim.labels)
        due = [
            (name, pool, labels)
            for name, (pool, labels) in known.items()
            if self.sightings.due(name, now)
        ]
        if not due:
            return
        with self.engine.db.writer() as session:
            for name, pool, labels in due:
                agent_queries.update_agent_seen(
                    session, name=name, pool=pool, labels=labels, now=now, claiming=False
                )

    def check_upload(self, *, job_run_id: str, dispatch_id: str, step_run_id: str) -> None:
        """Refuse an upload before its bytes are received, as `record_artifact` would: so a
        stale agent or a made-up job costs no transfer and no disk. Without a lock: the claim
        may still change while the file arrives, and `record_artifact` checks again."""
        with self.engine.db.reader() as session:
            job = run_queries.read_job(session, job_run_id=job_run_id)
            step = run_queries.read_step(session, step_run_id=step_run_id)
        _step_of(_claimed(job, job_run_id, dispatch_id), step, step_run_id)

    def record_artifact(
        self,
        *,
        job_run_id: str,
        dispatch_id: str,
        step_run_id: str,
        name: str,
        size: int,
        sha256: str,
        keep: Callable[[], None],
    ) -> None:
        """Record a received file for the job's run; `keep` moves its bytes into storage, once
        the claim is checked and the record made, inside the transaction: a failure to keep
        them records nothing. (Should the commit fail after it, the stored file is merely
        unreferenced: content-addressed, it is reused by the next upload of the same bytes.)"""
        with self.engine.locked_run_of_job(job_run_id, AGENT) as state:
            job = _current_job(state, job_run_id, dispatch_id)
            step = _step_of(job, state.step(step_run_id), step_run_id)
            artifact_queries.put_artifact(
                state.session,
                run_id=state.run.id,
                project_id=state.run.project_id,
                job_run_id=job.id,
                step_run_id=step.id,
                name=name,
                size=size,
                sha256=sha256,
                now=state.now,
            )
            keep()


def _current_job(state: RunState, job_run_id: str, dispatch_id: str) -> JobRun:
    """The job, if `dispatch_id` is its current claim; the journal then names its agent."""
    job = _claimed(state.job(job_run_id), job_run_id, dispatch_id)
    state.journal.actor = Actor.agent(job.claimed_by or AGENT.name)
    return job


def _claimed(job: JobRun | None, job_run_id: str, dispatch_id: str) -> JobRun:
    """The job, if it exists and `dispatch_id` is its current claim."""
    if job is None:
        raise JobNotFound(f"job run {excerpt(job_run_id)} not found")
    if job.dispatch_id is None or not hmac.compare_digest(
        job.dispatch_id.encode(), dispatch_id.encode()
    ):
        raise StaleDispatch(
            f"dispatch {excerpt(dispatch_id, 40)} of job run {job_run_id} is no longer current"
            " (its lease expired and the job was taken back); stop running it"
        )
    return job


def _step_of(job: JobRun, step: StepRun | None, step_run_id: str) -> StepRun:
    if step is None or step.job_run_id != job.id:
        raise JobNotFound(f"step run {excerpt(step_run_id)} is not a step of job run {job.id}")
    return step
