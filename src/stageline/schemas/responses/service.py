"""Bodies outside the v5 pipeline API: health, IAM-style tokens, and agents' artifact uploads."""

from typing import Any, Literal, NotRequired

from pydantic import with_config
from typing_extensions import TypedDict

from stageline.schemas.responses.fields import DOCUMENTED


class Health(TypedDict):
    status: Literal["ok"]
    version: str


class ArtifactStored(TypedDict):
    """An artifact an agent uploaded, stored by content."""

    name: str
    size: int
    sha256: str


class TokenNamed(TypedDict):
    id: str
    name: str


class TokenUser(TypedDict):
    domain: TokenNamed
    id: str
    name: str
    password_expires_at: str


class TokenProject(TypedDict):
    domain: TokenNamed
    id: str
    name: str


@with_config(DOCUMENTED)
class Token(TypedDict):
    methods: list[str]
    expires_at: str
    """UTC, ISO 8601 with microseconds, e.g. `2020-01-04T09:05:22.701000Z`."""
    issued_at: str
    user: TokenUser
    project: NotRequired[TokenProject]
    """With a project scope."""
    domain: NotRequired[TokenNamed]
    """With a domain scope."""
    roles: list[TokenNamed]
    catalog: list[Any]
    """Always empty."""


class TokenBody(TypedDict):
    """POST /v3/auth/tokens; the token itself is the `X-Subject-Token` header."""

    token: Token


class AuthProject(TypedDict):
    id: str
    name: str
    domain_id: str
    parent_id: str
    """The domain, as Huawei IAM answers for a project."""
    description: str
    enabled: bool
    is_domain: bool


class AuthProjectLinks(TypedDict):
    self: str
    previous: None
    next: None


class AuthProjects(TypedDict):
    """GET /v3/auth/projects: the projects the caller may act in, by name."""

    projects: list[AuthProject]
    links: AuthProjectLinks
