"""API tokens (stored as SHA-256 hashes), principals, roles and tenant scope."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Connection, select

from derms.core.errors import DermsError
from derms.store.schema import api_tokens, tenants, users
from derms.store.scope import TenantScope

TOKEN_PREFIX = "derms_"


class Role(IntEnum):
    """Ordered roles: each includes the rights of those below it."""

    VIEWER = 1
    OPERATOR = 2
    ADMIN = 3

    @classmethod
    def parse(cls, name: str) -> Role:
        try:
            return cls[name.upper()]
        except KeyError as exc:
            raise ValueError(f"unknown role {name!r}; use viewer, operator or admin") from exc


class Unauthenticated(DermsError):
    """No valid credentials (401)."""


class Forbidden(DermsError):
    """Authenticated but not allowed (403)."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: user, tenant, role, and whether the tenant is the utility (sees all)."""

    user_id: str
    username: str
    tenant_id: str
    role: Role
    is_utility: bool

    @property
    def scope(self) -> TenantScope:
        return TenantScope(None if self.is_utility else self.tenant_id)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_user(conn: Connection, *, username: str, tenant_id: str, role: Role, at: datetime) -> str:
    user_id = uuid.uuid4().hex
    conn.execute(
        users.insert().values(
            id=user_id,
            tenant_id=tenant_id,
            username=username,
            role=role.name.lower(),
            created_at=at,
            disabled=False,
        )
    )
    return user_id


def issue_token(
    conn: Connection, *, user_id: str, at: datetime, label: str = "", expires_at: datetime | None = None
) -> str:
    """Create a token and return it in clear text, once; only its hash is stored."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    conn.execute(
        api_tokens.insert().values(
            id=uuid.uuid4().hex[:16],
            user_id=user_id,
            token_hash=hash_token(token),
            label=label,
            created_at=at,
            expires_at=expires_at,
            revoked_at=None,
        )
    )
    return token


def principal_for_token(conn: Connection, token: str, now: datetime) -> Principal:
    """Resolve a bearer token; raises :class:`Unauthenticated` for unknown, revoked or expired ones."""
    row = conn.execute(
        select(
            users.c.id,
            users.c.username,
            users.c.tenant_id,
            users.c.role,
            users.c.disabled,
            api_tokens.c.expires_at,
            api_tokens.c.revoked_at,
            tenants.c.kind,
        )
        .join(users, users.c.id == api_tokens.c.user_id)
        .join(tenants, tenants.c.id == users.c.tenant_id)
        .where(api_tokens.c.token_hash == hash_token(token))
    ).first()
    if row is None or row.disabled or row.revoked_at is not None:
        raise Unauthenticated("invalid or revoked token")
    if row.expires_at is not None and row.expires_at <= now:
        raise Unauthenticated("token expired")
    return Principal(row.id, row.username, row.tenant_id, Role.parse(row.role), row.kind == "utility")


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("missing bearer token (Authorization: Bearer <token>)")
    return token.strip()


def current_principal(request: Request) -> Principal:
    runtime = request.app.state.runtime
    token = bearer_token(request)
    with runtime.engine.connect() as conn:
        principal = principal_for_token(conn, token, runtime.clock.now())
    request.state.principal = principal
    return principal


def require_role(role: Role) -> Callable[..., Principal]:
    """A FastAPI dependency that authenticates and requires at least ``role``."""

    def dependency(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if principal.role < role:
            raise Forbidden(f"requires role {role.name.lower()}; you are {principal.role.name.lower()}")
        return principal

    return dependency


Viewer = Annotated[Principal, Depends(require_role(Role.VIEWER))]
Operator = Annotated[Principal, Depends(require_role(Role.OPERATOR))]
Admin = Annotated[Principal, Depends(require_role(Role.ADMIN))]
