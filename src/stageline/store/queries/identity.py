"""Projects, users, memberships, access keys and tokens."""

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from stageline.store.ids import new_id
from stageline.store.tables import AccessKey, AuthToken, Project, ProjectMember, User


def insert_project(
    session: Session, *, name: str, now: int, project_id: str | None = None
) -> Project:
    project = Project(id=project_id or new_id(), name=name, created_at=now)
    session.add(project)
    session.flush()
    return project


def read_project(session: Session, *, project_id: str) -> Project | None:
    return session.get(Project, project_id)


def insert_user(
    session: Session,
    *,
    name: str,
    display_name: str,
    password_hash: str,
    now: int,
    user_id: str | None = None,
    kind: str = "person",
) -> User:
    user = User(
        id=user_id or new_id(),
        name=name,
        display_name=display_name,
        password_hash=password_hash,
        created_at=now,
        kind=kind,
    )
    session.add(user)
    session.flush()
    return user


def read_user(session: Session, *, user_id: str) -> User | None:
    return session.get(User, user_id)


def read_user_by_name(session: Session, *, name: str) -> User | None:
    return session.scalar(select(User).where(User.name == name))


def upsert_member(session: Session, *, project_id: str, user_id: str, role: str) -> None:
    member = session.get(ProjectMember, (project_id, user_id))
    if member is None:
        session.add(ProjectMember(project_id=project_id, user_id=user_id, role=role))
    else:
        member.role = role
    session.flush()


def read_role(session: Session, *, project_id: str, user_id: str) -> str | None:
    return session.scalar(
        select(ProjectMember.role).where(
            ProjectMember.project_id == project_id, ProjectMember.user_id == user_id
        )
    )


def list_memberships(session: Session, *, user_id: str) -> list[tuple[str, str, str]]:
    """(project_id, project_name, role) of every project the user belongs to."""
    rows = session.execute(
        select(Project.id, Project.name, ProjectMember.role)
        .join(ProjectMember, ProjectMember.project_id == Project.id)
        .where(ProjectMember.user_id == user_id)
        .order_by(Project.name)
    )
    return [(r[0], r[1], r[2]) for r in rows]


def insert_access_key(session: Session, *, access_key: str, user_id: str, now: int) -> AccessKey:
    key = AccessKey(access_key=access_key, user_id=user_id, created_at=now)
    session.add(key)
    session.flush()
    return key


def read_access_key(session: Session, *, access_key: str) -> AccessKey | None:
    return session.get(AccessKey, access_key)


def first_access_key(session: Session, *, user_id: str) -> AccessKey | None:
    return session.scalar(
        select(AccessKey)
        .where(AccessKey.user_id == user_id)
        .order_by(AccessKey.created_at, AccessKey.access_key)
        .limit(1)
    )


def insert_token(
    session: Session,
    *,
    digest: str,
    user_id: str,
    project_id: str | None,
    issued_at: int,
    expires_at: int,
) -> None:
    session.add(
        AuthToken(
            digest=digest,
            user_id=user_id,
            project_id=project_id,
            issued_at=issued_at,
            expires_at=expires_at,
        )
    )
    session.flush()


def read_token(session: Session, *, digest: str) -> AuthToken | None:
    return session.get(AuthToken, digest)


def delete_expired_tokens(session: Session, *, now: int) -> int:
    result = session.execute(delete(AuthToken).where(AuthToken.expires_at <= now))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def delete_token(session: Session, *, digest: str) -> None:
    session.execute(delete(AuthToken).where(AuthToken.digest == digest))
