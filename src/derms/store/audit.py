"""The append-only audit log of every write and every command.

Rows form a hash chain: ``hash = SHA-256(prev_hash || canonical JSON of the row)``, so any
edit made around the database triggers (which refuse UPDATE and DELETE) shows up in
:func:`verify_chain`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select, text

from derms.store.schema import audit_log

GENESIS = "0" * 64
_PG_AUDIT_LOCK = 0x64_65_72_6D_73  # advisory lock key serialising chain appends on PostgreSQL


@dataclass(frozen=True, slots=True)
class AuditEntry:
    seq: int
    at: datetime
    actor: str
    tenant_id: str | None
    action: str
    target: str
    detail: dict[str, Any]
    hash: str


def _digest(
    prev_hash: str, at: datetime, actor: str, tenant_id: str | None, action: str, target: str, detail: Any
) -> str:
    body = json.dumps(
        [prev_hash, at.isoformat(), actor, tenant_id, action, target, detail],
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(body.encode()).hexdigest()


def append(
    conn: Connection,
    *,
    at: datetime,
    actor: str,
    action: str,
    target: str,
    detail: dict[str, Any] | None = None,
    tenant_id: str | None = None,
) -> str:
    """Append one entry in the caller's transaction; returns its hash."""
    detail = json.loads(json.dumps(detail or {}, default=str))
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_AUDIT_LOCK})
    prev = conn.execute(select(audit_log.c.hash).order_by(audit_log.c.seq.desc()).limit(1)).scalar()
    prev_hash = prev or GENESIS
    # Microsecond precision survives every backend, so the digest can be recomputed.
    digest = _digest(prev_hash, at, actor, tenant_id, action, target, detail)
    conn.execute(
        audit_log.insert().values(
            at=at,
            actor=actor,
            tenant_id=tenant_id,
            action=action,
            target=target,
            detail=detail,
            prev_hash=prev_hash,
            hash=digest,
        )
    )
    return digest


def entries(
    conn: Connection,
    *,
    tenant_id: str | None = None,
    action_prefix: str | None = None,
    since_seq: int = 0,
    limit: int = 1000,
) -> list[AuditEntry]:
    """Entries in order; ``tenant_id`` limits to one tenant's entries."""
    query = select(audit_log).where(audit_log.c.seq > since_seq).order_by(audit_log.c.seq).limit(limit)
    if tenant_id is not None:
        query = query.where(audit_log.c.tenant_id == tenant_id)
    if action_prefix:
        query = query.where(audit_log.c.action.startswith(action_prefix))
    return [
        AuditEntry(r.seq, r.at, r.actor, r.tenant_id, r.action, r.target, r.detail, r.hash)
        for r in conn.execute(query)
    ]


def count(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(audit_log)).scalar_one())


def verify_chain(conn: Connection) -> int | None:
    """Recompute the chain; return the ``seq`` of the first broken row, or ``None`` if intact."""
    prev_hash = GENESIS
    for r in conn.execute(select(audit_log).order_by(audit_log.c.seq)):
        expected = _digest(prev_hash, r.at, r.actor, r.tenant_id, r.action, r.target, r.detail)
        if r.prev_hash != prev_hash or r.hash != expected:
            return int(r.seq)
        prev_hash = r.hash
    return None
