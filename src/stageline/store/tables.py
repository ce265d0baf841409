"""Every table, declared once; migrations in `migrations/versions` create the same schema.

IDs are 32-character hex strings (a UUID without dashes), the CodeArts ID format.
"""

from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Constraint names are derived from table and column names so that migrations can name them on
# both dialects; the double underscore keeps "pipeline_run" + "id" apart from "pipeline" + "run_id".
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s__%(column_0_N_name)s",
    "uq": "uq_%(table_name)s__%(column_0_N_name)s",
    "ck": "ck_%(table_name)s__%(constraint_name)s",
    "fk": "fk_%(table_name)s__%(column_0_N_name)s__%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

Id = String(32)
# SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY.
AutoId = BigInteger().with_variant(Integer(), "sqlite")
Json = JSON()


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: Json, list[Any]: Json}


class Project(Base):
    __tablename__ = "project"
    id: Mapped[str] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    created_at: Mapped[int] = mapped_column(BigInteger)


class User(Base):
    __tablename__ = "app_user"  # "user" is reserved in PostgreSQL
    id: Mapped[str] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(128))
    password_hash: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(8), default="person", server_default="person")
    """`person`, or `agent`: a build agent's identity, which may only claim and report jobs."""


class ProjectMember(Base):
    __tablename__ = "project_member"
    project_id: Mapped[str] = mapped_column(
        ForeignKey("project.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(
        ForeignKey("app_user.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[str] = mapped_column(String(16))


class AccessKey(Base):
    """An AK; its SK is derived from the installation's master secret and never stored."""

    __tablename__ = "access_key"
    access_key: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[int] = mapped_column(BigInteger)


class UsedSignature(Base):
    """An AK/SK signature of a state-changing request, kept while a copy of that request could
    still pass the clock check, so that a replay is refused (`auth.principals`)."""

    __tablename__ = "used_signature"
    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    """SHA-256 of the access key and the signature."""
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)


class AuthToken(Base):
    """An IAM-style token, stored as the SHA-256 digest of the token text."""

    __tablename__ = "auth_token"
    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"), index=True)
    project_id: Mapped[str | None] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"))
    issued_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)


class FeedToken(Base):
    """A read-only token for one project's feeds (status polling, cc.xml, badges), made to sit
    in a URL. Only the SHA-256 digest of its secret is kept; `id` is its public handle."""

    __tablename__ = "feed_token"
    id: Mapped[str] = mapped_column(Id, primary_key=True)
    digest: Mapped[str] = mapped_column(String(64))
    project_id: Mapped[str] = mapped_column(
        ForeignKey("project.id", ondelete="CASCADE"), index=True
    )
    note: Mapped[str] = mapped_column(String(128), default="")
    """What the token is for ("office TV"), shown when tokens are listed."""
    created_at: Mapped[int] = mapped_column(BigInteger)


class Pipeline(Base):
    __tablename__ = "pipeline"
    __table_args__ = (Index(None, "project_id", "deleted", "name"),)
    id: Mapped[str] = mapped_column(Id, primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(128))
    description: Mapped[str] = mapped_column(String(1024), default="")
    is_publish: Mapped[bool] = mapped_column(Boolean, default=False)
    manifest_version: Mapped[str] = mapped_column(String(16), default="3.0")
    definition: Mapped[str] = mapped_column(Text)
    sources: Mapped[list[Any]] = mapped_column(default=list)
    variables: Mapped[list[Any]] = mapped_column(default=list)
    schedules: Mapped[list[Any]] = mapped_column(default=list)
    triggers: Mapped[list[Any]] = mapped_column(default=list)
    concurrency_control: Mapped[dict[str, Any] | None] = mapped_column()
    group_id: Mapped[str | None] = mapped_column(String(32))
    creator_id: Mapped[str] = mapped_column(Id)
    updater_id: Mapped[str] = mapped_column(Id)
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    run_counter: Mapped[int] = mapped_column(Integer, default=0)
    """The highest run_number handed out; bumped under the row lock, so numbers have no gaps."""
    latest_run_id: Mapped[str | None] = mapped_column(Id)
    """The run with the highest run_number: the batch-status read path starts here. No foreign
    key, so that pipeline and run rows never reference each other in a cycle."""


class PipelineRun(Base):
    __tablename__ = "pipeline_run"
    __table_args__ = (
        UniqueConstraint("pipeline_id", "run_number"),
        Index(None, "status"),
        Index(None, "pipeline_id", "branch", "run_number"),
    )
    id: Mapped[str] = mapped_column(Id, primary_key=True)
    pipeline_id: Mapped[str] = mapped_column(ForeignKey("pipeline.id", ondelete="CASCADE"))
    project_id: Mapped[str] = mapped_column(Id)
    run_number: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    trigger_type: Mapped[str] = mapped_column(String(16))
    executor_id: Mapped[str] = mapped_column(Id)
    executor_name: Mapped[str] = mapped_column(String(128))
    description: Mapped[str] = mapped_column(String(1024), default="")
    message: Mapped[str | None] = mapped_column(Text)
    build_params: Mapped[dict[str, Any] | None] = mapped_column()
    branch: Mapped[str | None] = mapped_column(String(255))
    """The branch the run built (`build_params.target_branch`, what it checked out), copied
    into a column of its own so that a pipeline's latest run on a branch is one index probe."""
    artifact_params: Mapped[dict[str, Any] | None] = mapped_column()
    sources: Mapped[list[Any]] = mapped_column(default=list)
    variables: Mapped[list[Any]] = mapped_column(default=list)
    """The variables this run resolved: [{name, value, is_secret}]."""
    definition: Mapped[str] = mapped_column(Text)
    """The pipeline definition as it was when the run started."""
    stage_summary: Mapped[list[Any]] = mapped_column(default=list)
    """[{id, name, sequence, status, start_time, end_time}] of every stage, rewritten in the
    transaction that changes a stage, so batch status reads one row per pipeline."""
    start_time: Mapped[int] = mapped_column(BigInteger)
    end_time: Mapped[int | None] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)
    stop_requested_at: Mapped[int | None] = mapped_column(BigInteger)
    """Set by a stop: jobs whose condition asks for `cancelled()` still run, nothing else."""


class StageRun(Base):
    __tablename__ = "stage_run"
    id: Mapped[str] = mapped_column(Id, primary_key=True)
    run_id: Mapped[str] = mapped_column(
        ForeignKey("pipeline_run.id", ondelete="CASCADE"), index=True
    )
    sequence: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(128))
    identifier: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16))
    is_select: Mapped[bool] = mapped_column(Boolean, default=True)
    run_always: Mapped[bool] = mapped_column(Boolean, default=False)
    depends_on: Mapped[list[Any]] = mapped_column(default=list)
    start_time: Mapped[int | None] = mapped_column(BigInteger)
    end_time: Mapped[int | None] = mapped_column(BigInteger)


class JobRun(Base):
    __tablename__ = "job_run"
    __table_args__ = (Index(None, "status", "queued_at"),)
    id: Mapped[str] = mapped_column(Id, primary_key=True)
    run_id: Mapped[str] = mapped_column(
        ForeignKey("pipeline_run.id", ondelete="CASCADE"), index=True
    )
    stage_run_id: Mapped[str] = mapped_column(
        ForeignKey("stage_run.id", ondelete="CASCADE"), index=True
    )
    sequence: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(128))
    identifier: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16))
    message: Mapped[str | None] = mapped_column(Text)
    is_select: Mapped[bool] = mapped_column(Boolean, default=True)
    is_async: Mapped[bool] = mapped_column(Boolean, default=False)
    depends_on: Mapped[list[Any]] = mapped_column(default=list)
    condition: Mapped[str | None] = mapped_column(Text)
    resource: Mapped[str | None] = mapped_column(Text)
    timeout: Mapped[str | None] = mapped_column(String(32))
    queued_at: Mapped[int | None] = mapped_column(BigInteger)
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    """The agent running this job; None while it waits in the queue."""
    claimed_at: Mapped[int | None] = mapped_column(BigInteger)
    pool: Mapped[str] = mapped_column(String(64), default="default", server_default="default")
    labels: Mapped[list[Any]] = mapped_column(default=list)
    """The agent pool and labels the job's `resource` asks for; only such agents claim it."""
    dispatch_id: Mapped[str | None] = mapped_column(String(32))
    """The current claim (`last_dispatch_id` on the wire): reports naming another are fenced."""
    dispatch_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    lease_expires_at: Mapped[int | None] = mapped_column(BigInteger, index=True)
    """The claiming agent must heartbeat before this; afterwards the job is redispatched."""
    events_applied: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """How many events of the current dispatch were applied: replays of older ones are dropped."""
    deadline_at: Mapped[int | None] = mapped_column(BigInteger, index=True)
    """When the running job times out (its `timeout` after it started)."""
    start_time: Mapped[int | None] = mapped_column(BigInteger)
    end_time: Mapped[int | None] = mapped_column(BigInteger)


class BuildAgent(Base):
    """A build agent as last seen: when it claimed (each attempt of its long poll) or heartbeated.
    Those seen lately count as connected, which is how the server tells why a job still waits."""

    __tablename__ = "build_agent"
    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    """`<agent identity>/<instance>`, as a job's `claimed_by` names it."""
    pool: Mapped[str] = mapped_column(String(64))
    labels: Mapped[list[Any]] = mapped_column(default=list)
    last_seen_at: Mapped[int] = mapped_column(BigInteger, index=True)


class StepRun(Base):
    __tablename__ = "step_run"
    id: Mapped[str] = mapped_column(Id, primary_key=True)
    run_id: Mapped[str] = mapped_column(
        ForeignKey("pipeline_run.id", ondelete="CASCADE"), index=True
    )
    job_run_id: Mapped[str | None] = mapped_column(
        ForeignKey("job_run.id", ondelete="CASCADE"), index=True
    )
    stage_run_id: Mapped[str] = mapped_column(ForeignKey("stage_run.id", ondelete="CASCADE"))
    placement: Mapped[str] = mapped_column(String(8), default="job")
    """`job` for a job's step, `pre`/`post` for a stage's entry and exit steps."""
    sequence: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(128))
    identifier: Mapped[str] = mapped_column(String(128))
    task: Mapped[str] = mapped_column(String(128))
    business_type: Mapped[str] = mapped_column(String(16), default="Normal")
    official_task_version: Mapped[str | None] = mapped_column(String(32))
    inputs: Mapped[list[Any]] = mapped_column(default=list)
    status: Mapped[str] = mapped_column(String(16))
    message: Mapped[str | None] = mapped_column(Text)
    exit_code: Mapped[int | None] = mapped_column(Integer)
    outputs: Mapped[list[Any]] = mapped_column(default=list)
    """[{key, value}] the step wrote to its outputs file."""
    approvals: Mapped[list[Any]] = mapped_column(default=list)
    """User IDs that passed this manual review so far."""
    deadline_at: Mapped[int | None] = mapped_column(BigInteger, index=True)
    """When a paused manual review takes its `timeout_strategy`."""
    start_time: Mapped[int | None] = mapped_column(BigInteger)
    end_time: Mapped[int | None] = mapped_column(BigInteger)


class PipelineSchedule(Base):
    """When each enabled schedule of a live pipeline is next due: written with the pipeline,
    advanced by the server that fires it. The leading server asks only for the rows due now."""

    __tablename__ = "pipeline_schedule"
    pipeline_id: Mapped[str] = mapped_column(
        ForeignKey("pipeline.id", ondelete="CASCADE"), primary_key=True
    )
    schedule_uuid: Mapped[str] = mapped_column(String(64), primary_key=True)
    next_fire_at: Mapped[int] = mapped_column(BigInteger, index=True)
    """The first slot not yet fired (epoch ms); never before the schedule was saved."""


class ScheduleFire(Base):
    """A slot of a schedule that has fired: inserted in the transaction that starts its run,
    so a slot two servers both take for theirs starts one run."""

    __tablename__ = "schedule_fire"
    pipeline_id: Mapped[str] = mapped_column(
        ForeignKey("pipeline.id", ondelete="CASCADE"), primary_key=True
    )
    schedule_uuid: Mapped[str] = mapped_column(String(64), primary_key=True)
    slot_at: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    fired_at: Mapped[int] = mapped_column(BigInteger)


class LeaderLease(Base):
    """Which server process leads some work (firing schedules) and until when; another takes
    the lease over once it has expired."""

    __tablename__ = "leader_lease"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    """`<host>/<pid>/<random>` of the process that holds it."""
    expires_at: Mapped[int] = mapped_column(BigInteger)


class StatusChange(Base):
    """The change log: one row per status change of a run, stage, job or step (and a pipeline's
    deletion), appended by the engine in the transaction that makes the change, never updated.

    `seq` is global and, because appends are serialized per commit (see
    `queries/changes.append_changes`), a reader that has seen `seq` N has seen every change up to
    N: readers keep a high-water mark and ask only for what came after it.
    """

    __tablename__ = "status_change"
    __table_args__ = (Index(None, "run_id", "seq"), {"sqlite_autoincrement": True})
    seq: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    project_id: Mapped[str] = mapped_column(Id)
    pipeline_id: Mapped[str] = mapped_column(Id)
    run_id: Mapped[str | None] = mapped_column(Id)
    entity: Mapped[str] = mapped_column(String(8))
    """`run`, `stage`, `job`, `step`, or `pipeline` (its deletion)."""
    entity_id: Mapped[str] = mapped_column(Id)
    from_status: Mapped[str | None] = mapped_column(String(16))
    """None when the run was created (`to_status` is then what it was admitted as)."""
    to_status: Mapped[str] = mapped_column(String(16))
    at: Mapped[int] = mapped_column(BigInteger, index=True)
    actor_kind: Mapped[str] = mapped_column(String(8))
    """`user`, `agent`, `timer` or `trigger`."""
    actor: Mapped[str] = mapped_column(String(128))


class Artifact(Base):
    """A file a step uploaded; its bytes live under `<data_dir>/artifacts/<sha256>`."""

    __tablename__ = "artifact"
    __table_args__ = (UniqueConstraint("run_id", "name"),)
    id: Mapped[str] = mapped_column(Id, primary_key=True)
    run_id: Mapped[str] = mapped_column(
        ForeignKey("pipeline_run.id", ondelete="CASCADE"), index=True
    )
    project_id: Mapped[str] = mapped_column(Id)
    job_run_id: Mapped[str] = mapped_column(Id)
    step_run_id: Mapped[str] = mapped_column(Id)
    name: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[int] = mapped_column(BigInteger)


class StepLog(Base):
    """One line of a step's output; `line_no` counts from 0 and is the log API's offset."""

    __tablename__ = "step_log"
    __table_args__ = (UniqueConstraint("step_run_id", "line_no"),)
    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    step_run_id: Mapped[str] = mapped_column(ForeignKey("step_run.id", ondelete="CASCADE"))
    line_no: Mapped[int] = mapped_column(Integer)
    content: Mapped[str] = mapped_column(Text)
    created_at: Mapped[int] = mapped_column(BigInteger)


class PipelineHook(Base):
    """A pipeline trigger's webhook: `POST /webhooks/{hook_id}` finds its pipeline here in one
    query. The trigger itself (events, branches, the sealed secret) is in `pipeline.triggers`;
    rows are rewritten with it by CreatePipeline and UpdatePipelineInfo."""

    __tablename__ = "pipeline_hook"
    hook_id: Mapped[str] = mapped_column(Id, primary_key=True)
    pipeline_id: Mapped[str] = mapped_column(
        ForeignKey("pipeline.id", ondelete="CASCADE"), index=True
    )
    project_id: Mapped[str] = mapped_column(Id)


class WebhookDelivery(Base):
    """A webhook delivery that started a run, recorded in the run's own transaction: the same
    delivery again (a host's retry, a redelivery) finds it and starts nothing. Rows older than
    `WEBHOOK_DELIVERY_RETENTION_DAYS` are deleted by the retention sweep."""

    __tablename__ = "webhook_delivery"
    hook_id: Mapped[str] = mapped_column(Id, primary_key=True)
    delivery_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    run_id: Mapped[str] = mapped_column(Id)
    received_at: Mapped[int] = mapped_column(BigInteger, index=True)
