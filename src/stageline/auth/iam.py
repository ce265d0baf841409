"""Keystone/IAM-style password tokens: POST /v3/auth/tokens, and GET /v3/auth/projects.

An installation is one IAM account (domain). Wrong password and unknown user get the same answer
after the same amount of work. A login is three steps — read the account, check the password,
mint the token — so that the slow middle one (scrypt) runs outside any transaction: a flood of
logins then holds no database lock and no connection while it hashes.
"""

import uuid
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from stageline.auth.principals import Principal, iso_utc
from stageline.auth.secrets import (
    DUMMY_PASSWORD_HASH,
    check_password,
    mint_token,
    token_digest,
)
from stageline.domain.errors import Forbidden, InvalidInput, Unauthenticated
from stageline.schemas.common import refuse_nul
from stageline.settings import Settings
from stageline.store.database import Database
from stageline.store.queries import identity

BAD_CREDENTIALS = "The username or password is wrong."


class _Named(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str | None = None
    name: str | None = None


class _User(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str
    password: str
    domain: _Named | None = None


class _Password(BaseModel):
    user: _User


class _Identity(BaseModel):
    model_config = ConfigDict(extra="ignore")
    methods: list[str]
    password: _Password


class _Scope(BaseModel):
    project: _Named | None = None
    domain: _Named | None = None


class _Auth(BaseModel):
    identity: _Identity
    scope: _Scope | None = None


class TokenRequest(BaseModel):
    """The whole body; no string of it may hold a NUL character (the database cannot)."""

    auth: _Auth

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        return refuse_nul(data)


def domain_id(settings: Settings) -> str:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"stageline:{settings.account_name}").hex


def _matches(named: _Named, *, id_: str, name: str) -> bool:
    return (named.id is None or named.id == id_) and (named.name is None or named.name == name)


def read_request(body: dict[str, Any]) -> TokenRequest:
    """The request, checked for shape; reads nothing."""
    try:
        request = TokenRequest.model_validate(body)
    except ValidationError as error:
        first = error.errors()[0]
        path = ".".join(str(part) for part in first["loc"])
        raise InvalidInput(f"{path}: {first['msg']}") from None
    if "password" not in request.auth.identity.methods:
        raise InvalidInput("auth.identity.methods: only the password method is supported")
    return request


def user_name(request: TokenRequest) -> str:
    return request.auth.identity.password.user.name


@dataclass(frozen=True)
class Account:
    """What a login needs of a user, read before the password is checked."""

    user_id: str
    name: str
    password_hash: str


def find_account(db: Database, request: TokenRequest) -> Account | None:
    """The user the request names, if there is one; one short read."""
    with db.reader() as session:
        user = identity.read_user_by_name(session, name=user_name(request))
        return None if user is None else Account(user.id, user.name, user.password_hash)


def password_matches(request: TokenRequest, account: Account | None) -> bool:
    """The slow part of a login (scrypt), to be run outside any transaction. An unknown user is
    checked against a dummy hash, so that it takes as long as a wrong password."""
    stored = account.password_hash if account else DUMMY_PASSWORD_HASH
    valid = check_password(request.auth.identity.password.user.password, stored)
    return valid and account is not None


def issue_token(
    db: Database, settings: Settings, request: TokenRequest, account: Account, *, now: int
) -> tuple[str, dict[str, Any]]:
    """Mint a token for `account`, whose password matched; (token, response body)."""
    auth = request.auth
    user_in = auth.identity.password.user
    domain = {"id": domain_id(settings), "name": settings.account_name}
    if user_in.domain is not None and not _matches(
        user_in.domain, id_=domain["id"], name=domain["name"]
    ):
        raise Unauthenticated(BAD_CREDENTIALS)
    with db.writer() as session:
        scope: dict[str, Any] = {}
        project_id: str | None = None
        roles: list[dict[str, str]] = []
        if auth.scope is not None and auth.scope.project is not None:
            wanted = auth.scope.project
            match = next(
                (
                    (pid, pname, role)
                    for pid, pname, role in identity.list_memberships(
                        session, user_id=account.user_id
                    )
                    if _matches(wanted, id_=pid, name=pname)
                ),
                None,
            )
            if match is None or (wanted.id is None and wanted.name is None):
                raise Unauthenticated(
                    f"user {account.name} has no access to project {wanted.id or wanted.name!r}"
                )
            project_id = match[0]
            scope["project"] = {"domain": domain, "id": match[0], "name": match[1]}
            roles = [{"id": match[2], "name": match[2]}]
        elif auth.scope is not None and auth.scope.domain is not None:
            if not _matches(auth.scope.domain, id_=domain["id"], name=domain["name"]):
                raise Unauthenticated(
                    f"unknown domain {auth.scope.domain.name or auth.scope.domain.id!r}"
                )
            scope["domain"] = domain
        token = mint_token()
        expires_at = now + settings.token_ttl_seconds * 1000
        identity.insert_token(
            session,
            digest=token_digest(token),
            user_id=account.user_id,
            project_id=project_id,
            issued_at=now,
            expires_at=expires_at,
        )
        identity.delete_expired_tokens(session, now=now)
    body_out = {
        "token": {
            "methods": ["password"],
            "expires_at": iso_utc(expires_at),
            "issued_at": iso_utc(now),
            "user": {
                "domain": domain,
                "id": account.user_id,
                "name": account.name,
                "password_expires_at": "",
            },
            **scope,
            "roles": roles,
            "catalog": [],
        }
    }
    return token, body_out


def auth_projects(db: Database, principal: Principal) -> list[tuple[str, str]]:
    """(project_id, name) of each project `principal` may act in, by name: those its user is a
    member of, and of a project-scoped token only its project. A build agent or a feed token
    acts in none of them as a user: refused."""
    if principal.is_agent or principal.is_feed:
        raise Forbidden(f"{principal.name} is not a user: it has no projects to list")
    with db.reader() as session:
        memberships = identity.list_memberships(session, user_id=principal.user_id)
    return [
        (project_id, name)
        for project_id, name, _ in memberships
        if principal.token_project_id in (None, project_id)
    ]
