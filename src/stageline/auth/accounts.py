"""Administration of identities: projects, users, memberships and access keys."""

from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError

from stageline.auth.principals import AGENT_KIND
from stageline.auth.roles import Role
from stageline.auth.secrets import derive_secret_key, hash_password, new_access_key
from stageline.domain.errors import Conflict, InvalidInput, NotFound, ProjectNotFound
from stageline.settings import Settings
from stageline.store.database import Database
from stageline.store.queries import identity


@dataclass(frozen=True)
class AccessKeyPair:
    ak: str
    sk: str


def create_project(db: Database, *, name: str, now: int, project_id: str | None = None) -> str:
    if not name.strip() or len(name) > 128:
        raise InvalidInput("name: 1 to 128 characters")
    try:
        with db.writer() as session:
            return identity.insert_project(session, name=name, now=now, project_id=project_id).id
    except IntegrityError:
        raise Conflict(f"a project named '{name}' already exists") from None


def create_user(
    db: Database, *, name: str, password: str, now: int, display_name: str | None = None
) -> str:
    if not name or len(name) > 64:
        raise InvalidInput("name: 1 to 64 characters")
    if len(password) < 8:
        raise InvalidInput("password: at least 8 characters")
    try:
        with db.writer() as session:
            user = identity.insert_user(
                session,
                name=name,
                display_name=display_name or name,
                password_hash=hash_password(password),
                now=now,
            )
            return user.id
    except IntegrityError:
        raise Conflict(f"a user named '{name}' already exists") from None


NO_PASSWORD = "!"
"""The password hash of a build agent: it matches no password, so agents cannot log in."""
BUILTIN_AGENT = "builtin-agent"


def create_agent(db: Database, settings: Settings, *, name: str, now: int) -> AccessKeyPair:
    """A build agent identity and its AK/SK: it may claim and report jobs, nothing else."""
    if not name or len(name) > 64:
        raise InvalidInput("name: 1 to 64 characters")
    try:
        with db.writer() as session:
            identity.insert_user(
                session,
                name=name,
                display_name=name,
                password_hash=NO_PASSWORD,
                now=now,
                kind=AGENT_KIND,
            )
    except IntegrityError:
        raise Conflict(f"a user or agent named '{name}' already exists") from None
    return create_access_key(db, settings, user_name=name, now=now)


def builtin_agent_key(db: Database, settings: Settings, *, now: int) -> AccessKeyPair:
    """The AK/SK of the agent `stageline serve` starts, created on first use."""
    with db.reader() as session:
        user = identity.read_user_by_name(session, name=BUILTIN_AGENT)
        key = None if user is None else identity.first_access_key(session, user_id=user.id)
    if user is None:
        return create_agent(db, settings, name=BUILTIN_AGENT, now=now)
    if user.kind != AGENT_KIND:
        raise Conflict(f"the user '{BUILTIN_AGENT}' exists and is not a build agent")
    if key is None:
        return create_access_key(db, settings, user_name=BUILTIN_AGENT, now=now)
    return AccessKeyPair(
        ak=key.access_key, sk=derive_secret_key(settings.master_secret(), key.access_key)
    )


def add_member(db: Database, *, project_id: str, user_name: str, role: Role) -> None:
    with db.writer() as session:
        if identity.read_project(session, project_id=project_id) is None:
            raise ProjectNotFound(f"project {project_id} not found")
        user = identity.read_user_by_name(session, name=user_name)
        if user is None:
            raise NotFound(f"user '{user_name}' not found")
        identity.upsert_member(session, project_id=project_id, user_id=user.id, role=role.label)


def create_access_key(
    db: Database, settings: Settings, *, user_name: str, now: int
) -> AccessKeyPair:
    """A new AK/SK pair; the SK is returned here once and is not kept anywhere."""
    with db.writer() as session:
        user = identity.read_user_by_name(session, name=user_name)
        if user is None:
            raise NotFound(f"user '{user_name}' not found")
        ak = new_access_key()
        identity.insert_access_key(session, access_key=ak, user_id=user.id, now=now)
    return AccessKeyPair(ak=ak, sk=derive_secret_key(settings.master_secret(), ak))
