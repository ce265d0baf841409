"""Who changed what: the changes of one unit of work, appended to the change log at commit.

Every status change the door (`engine.transitions`) makes is recorded here with the unit's actor
and time, then written by `flush` in the same transaction as the change itself, so the change log
never tells of a change that did not commit and never misses one that did.
"""

from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy.orm import Session

from stageline.store.database import Database
from stageline.store.queries import changes as change_queries
from stageline.store.tables import PipelineRun

Entity = Literal["run", "stage", "job", "step", "pipeline"]
ActorKind = Literal["user", "agent", "timer", "trigger"]


@dataclass(frozen=True)
class Actor:
    """Who or what caused a change: a person (`user`), a build agent's report (`agent`), a sweep
    of the server (`timer`: lost agents, timeouts) or an event (`trigger`: a schedule, a push)."""

    kind: ActorKind
    name: str

    @classmethod
    def user(cls, name: str) -> "Actor":
        return cls("user", name)

    @classmethod
    def agent(cls, name: str) -> "Actor":
        return cls("agent", name)


TIMER = Actor("timer", "stageline")


@dataclass
class Journal:
    """The changes of one transaction, all made at `now` by `actor`."""

    now: int
    actor: Actor
    rows: list[dict[str, Any]] = field(default_factory=list)
    written: list[dict[str, Any]] = field(default_factory=list)
    """What `flush` appended: once the transaction has committed, what it changed (metrics)."""
    triggers: dict[str, str] = field(default_factory=dict)
    """The trigger type of each run a change was recorded for."""

    def record(
        self,
        run: PipelineRun,
        entity: Entity,
        entity_id: str,
        before: str | None,
        after: str,
    ) -> None:
        self.triggers[run.id] = run.trigger_type
        self.rows.append(
            {
                "project_id": run.project_id,
                "pipeline_id": run.pipeline_id,
                "run_id": run.id,
                "entity": entity,
                "entity_id": entity_id,
                "from_status": before,
                "to_status": after,
                "at": self.now,
                "actor_kind": self.actor.kind,
                "actor": self.actor.name[:128],
            }
        )

    def record_deletion(self, *, project_id: str, pipeline_id: str) -> None:
        """A pipeline was deleted: readers that show its latest run must forget it."""
        self.rows.append(
            {
                "project_id": project_id,
                "pipeline_id": pipeline_id,
                "run_id": None,
                "entity": "pipeline",
                "entity_id": pipeline_id,
                "from_status": None,
                "to_status": change_queries.DELETED,
                "at": self.now,
                "actor_kind": self.actor.kind,
                "actor": self.actor.name[:128],
            }
        )

    def flush(self, session: Session) -> None:
        """Append what was recorded to the change log, inside the caller's transaction, as its
        last statement: the rows changed are written first, so that the append lock (held until
        commit on PostgreSQL) is held as briefly as possible."""
        if self.rows:
            session.flush()
            change_queries.append_changes(session, self.rows)
            self.written += self.rows
            self.rows = []


DAY_MS = 24 * 3600 * 1000


def prune_change_log(db: Database, *, retention_days: int, now: int) -> int:
    """Delete changes older than `retention_days`, a batch per transaction; returns how many.
    Runs keep their statuses; only the history of what happened to them that long ago goes."""
    pruned = 0
    while True:
        with db.writer() as session:
            deleted = change_queries.prune_changes(session, before=now - retention_days * DAY_MS)
        pruned += deleted
        if deleted == 0:
            return pruned
