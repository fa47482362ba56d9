"""Audit helper for routes: every write and every command is appended in the same transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from derms.api.auth import Principal
from derms.core.clock import Clock
from derms.store import audit as audit_store


def audit(
    conn: Connection,
    clock: Clock,
    principal: Principal,
    action: str,
    target: str,
    detail: dict[str, Any] | None = None,
) -> str:
    return audit_store.append(
        conn,
        at=clock.now(),
        actor=principal.username,
        tenant_id=principal.tenant_id,
        action=action,
        target=target,
        detail=detail or {},
    )
