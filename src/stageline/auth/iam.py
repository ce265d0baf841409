"""Keystone/IAM-style password tokens: POST /v3/auth/tokens.

An installation is one IAM account (domain). Wrong password and unknown user get the same answer
after the same amount of work.
"""

import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from stageline.auth.principals import iso_utc
from stageline.auth.secrets import (
    DUMMY_PASSWORD_HASH,
    check_password,
    mint_token,
    token_digest,
)
from stageline.domain.errors import InvalidInput, Unauthenticated
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


def issue_token(
    db: Database, settings: Settings, body: dict[str, Any], *, now: int
) -> tuple[str, dict[str, Any]]:
    """Check the password and mint a token; (token, response body)."""
    try:
        request = TokenRequest.model_validate(body)
    except ValidationError as error:
        first = error.errors()[0]
        path = ".".join(str(part) for part in first["loc"])
        raise InvalidInput(f"{path}: {first['msg']}") from None
    auth = request.auth
    if "password" not in auth.identity.methods:
        raise InvalidInput("auth.identity.methods: only the password method is supported")
    user_in = auth.identity.password.user
    domain = {"id": domain_id(settings), "name": settings.account_name}
    with db.writer() as session:
        user = identity.read_user_by_name(session, name=user_in.name)
        valid = check_password(
            user_in.password, user.password_hash if user else DUMMY_PASSWORD_HASH
        )
        if user is None or not valid:
            raise Unauthenticated(BAD_CREDENTIALS)
        if user_in.domain is not None and not _matches(
            user_in.domain, id_=domain["id"], name=domain["name"]
        ):
            raise Unauthenticated(BAD_CREDENTIALS)
        scope: dict[str, Any] = {}
        project_id: str | None = None
        roles: list[dict[str, str]] = []
        if auth.scope is not None and auth.scope.project is not None:
            wanted = auth.scope.project
            match = next(
                (
                    (pid, pname, role)
                    for pid, pname, role in identity.list_memberships(session, user_id=user.id)
                    if _matches(wanted, id_=pid, name=pname)
                ),
                None,
            )
            if match is None or (wanted.id is None and wanted.name is None):
                raise Unauthenticated(
                    f"user {user.name} has no access to project {wanted.id or wanted.name!r}"
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
            user_id=user.id,
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
                "id": user.id,
                "name": user.name,
                "password_expires_at": "",
            },
            **scope,
            "roles": roles,
            "catalog": [],
        }
    }
    return token, body_out
