"""Webhook deliveries → runs: find the trigger by its hook, check the secret, read the event,
and start a run when the trigger takes it, once per delivery.

A delivery that starts a run is recorded, keyed by (hook, delivery ID), inside the run's own
transaction (`RunEngine.start_run(with_run=…)`): the run and its record commit together or not
at all. The same delivery again finds the record and starts nothing, whether it comes after
the first one committed (a plain read answers it) or at the same time (the record's
insert-or-nothing waits for the first transaction and, finding the row, undoes the second run).
Deliveries that start nothing are not recorded: they start nothing again.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from sqlalchemy.orm import Session

from stageline.auth.vault import Vault
from stageline.domain.errors import (
    DomainError,
    HookNotFound,
    RunNotAccepted,
    Unauthenticated,
    excerpt,
)
from stageline.domain.webhooks.deliveries import (
    Envelope,
    authenticate,
    delivery_id,
    detect_host,
    read_body,
)
from stageline.domain.webhooks.events import Host, Ignored, TriggerEvent
from stageline.domain.webhooks.reading import read_event
from stageline.domain.webhooks.triggers import admits
from stageline.engine.journal import DAY_MS, Actor
from stageline.engine.runs import RunEngine
from stageline.engine.scheduler import Executor
from stageline.schemas.runs import RunCreate
from stageline.store.database import Database
from stageline.store.queries import hooks as hook_queries

DELIVERY_RETENTION_DAYS = 7
"""How long a delivery that started a run is remembered: hosts redeliver within hours (and
people by hand within days)."""


@dataclass(frozen=True)
class Answer:
    """What the host is told: the run started (or the one a duplicate started), or why
    nothing started."""

    result: Literal["started", "duplicate", "ignored"]
    run_id: str | None = None
    reason: str | None = None


class _Duplicate(Exception):
    def __init__(self, run_id: str | None) -> None:
        super().__init__(run_id)
        self.run_id = run_id


class Webhooks:
    """Receives the deliveries of every pipeline trigger; runs start through `engine`."""

    def __init__(self, engine: RunEngine, vault: Vault) -> None:
        self.engine = engine
        self.vault = vault

    def deliver(self, *, hook_id: str, headers: Mapping[str, str], body: bytes) -> Answer:
        """HookNotFound for an unknown hook, Unauthenticated when the secret does not check out
        (checked before the body is read), InvalidPayload for a body that is no JSON object;
        otherwise an Answer. A pipeline that cannot start (its concurrency limit drops new runs,
        a variable it must fix) is an ignored answer: the host can do nothing about it.

        Every delivery is counted (`engine.metrics`) by its host and what became of it."""
        envelope = Envelope.of(headers)
        host = detect_host(envelope, body)
        try:
            answer = self._deliver(hook_id, envelope, host, body)
        except DomainError:
            self.engine.metrics.count_delivery(host, "rejected")
            raise
        self.engine.metrics.count_delivery(host, answer.result)
        return answer

    def _deliver(self, hook_id: str, envelope: Envelope, host: Host | None, body: bytes) -> Answer:
        with self.engine.db.reader() as session:
            pipeline = hook_queries.read_hooked_pipeline(session, hook_id=hook_id)
        triggers = pipeline.triggers if pipeline is not None else []
        trigger = next((t for t in triggers if t.get("hook_id") == hook_id), None)
        if pipeline is None or trigger is None or not trigger.get("security_token"):
            raise HookNotFound(f"webhook {excerpt(hook_id)} not found")
        if host is None:
            raise Unauthenticated(
                "cannot tell which host sent this: no X-Gitlab-Event, X-GitHub-Event,"
                " X-Gitea-Event, X-Forgejo-Event or X-Repo-Token header"
            )
        authenticate(host, envelope, body, secret=self.vault.open(trigger["security_token"]))
        found = read_event(host, envelope, read_body(envelope, body))
        if isinstance(found, Ignored):
            return Answer("ignored", reason=found.reason)
        refused = admits(trigger, found)
        if refused is not None:
            return Answer("ignored", reason=refused.reason)
        delivery = delivery_id(host, envelope)
        if delivery is not None:
            with self.engine.db.reader() as session:
                earlier = hook_queries.read_delivery_run(
                    session, hook_id=hook_id, delivery_id=delivery
                )
            if earlier is not None:
                return Answer("duplicate", run_id=earlier)
        return self._start(pipeline.project_id, pipeline.id, hook_id, delivery, found)

    def _start(
        self,
        project_id: str,
        pipeline_id: str,
        hook_id: str,
        delivery: str | None,
        found: TriggerEvent,
    ) -> Answer:
        received_at = self.engine.clock()

        def record(session: Session, run_id: str) -> None:
            assert delivery is not None
            if not hook_queries.insert_delivery(
                session,
                hook_id=hook_id,
                delivery_id=delivery,
                run_id=run_id,
                received_at=received_at,
            ):
                raise _Duplicate(
                    hook_queries.read_delivery_run(session, hook_id=hook_id, delivery_id=delivery)
                )

        try:
            run_id = self.engine.start_run(
                project_id=project_id,
                pipeline_id=pipeline_id,
                request=RunCreate(),
                executor=Executor(user_id="", display_name=found.user or found.host.value),
                trigger=found.trigger_type,
                actor=Actor("trigger", f"{found.host.value} {found.kind.value}"),
                event_params=found.params,
                with_run=record if delivery is not None else None,
            )
        except _Duplicate as duplicate:
            return Answer("duplicate", run_id=duplicate.run_id)
        except RunNotAccepted as refused:
            return Answer("ignored", run_id=refused.run_id, reason=refused.message)
        except DomainError as error:
            return Answer("ignored", reason=f"the pipeline cannot start: {error.message}")
        return Answer("started", run_id=run_id)


def prune_deliveries(
    db: Database, *, now: int, retention_days: int = DELIVERY_RETENTION_DAYS
) -> int:
    """Forget deliveries older than `retention_days`; returns how many."""
    with db.writer() as session:
        return hook_queries.delete_deliveries_before(session, before=now - retention_days * DAY_MS)
