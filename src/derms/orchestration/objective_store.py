"""Objectives as rows of the ``objectives`` table (``derms.store.schema``).

Every objective the orchestrator plans for is stored, whoever asked (operator through the
API, a utility's OpenADR event, a market award); rows read back in the bus payload's form
(:func:`derms.core.events.encode_objective`) plus state and provenance.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from derms.core.events import decode_objective
from derms.core.objectives import Objective
from derms.store.schema import objectives
from derms.store.scope import TenantScope


def save(conn: Connection, objective: Objective, *, at: datetime, actor: str) -> bool:
    """Store ``objective`` unless its id is known; returns whether it was new."""
    if conn.execute(select(objectives.c.id).where(objectives.c.id == objective.id)).first():
        return False
    conn.execute(
        insert(objectives).values(
            id=objective.id,
            kind=str(objective.kind),
            start=objective.start,
            duration_s=objective.duration.total_seconds(),
            area={"level": str(objective.area.level), "ids": list(objective.area.ids)},
            priority=objective.priority,
            target_w=objective.target_w,
            params={
                "v_min_pu": objective.v_min_pu,
                "v_max_pu": objective.v_max_pu,
                "prices": list(objective.prices),
            },
            source=objective.source[:200],
            tenant_id=objective.tenant_id,
            state="active",
            created_at=at,
            created_by=actor[:64],
        )
    )
    return True


def cancel(conn: Connection, objective_id: str) -> bool:
    """Mark an objective cancelled; returns whether one was active."""
    result = conn.execute(
        update(objectives)
        .where(objectives.c.id == objective_id, objectives.c.state == "active")
        .values(state="cancelled")
    )
    return bool(result.rowcount)


def _row_dict(row: Any) -> dict[str, Any]:
    params = row.params or {}
    return {
        "id": row.id,
        "kind": row.kind,
        "start": row.start.isoformat(),
        "duration_s": row.duration_s,
        "area": row.area,
        "priority": row.priority,
        "target_w": row.target_w,
        "v_min_pu": params.get("v_min_pu", 0.95),
        "v_max_pu": params.get("v_max_pu", 1.05),
        "prices": params.get("prices", []),
        "source": row.source,
        "tenant_id": row.tenant_id,
        "state": row.state,
        "created_at": row.created_at.isoformat(),
        "created_by": row.created_by,
    }


def _scoped(scope: TenantScope) -> Any:
    query = select(objectives)
    if scope.tenant_id is not None:
        query = query.where(objectives.c.tenant_id == scope.tenant_id)
    return query


def list_objectives(conn: Connection, *, scope: TenantScope, limit: int = 500) -> list[dict[str, Any]]:
    """Newest first; an aggregator sees its own objectives only."""
    rows = conn.execute(_scoped(scope).order_by(objectives.c.created_at.desc()).limit(limit)).all()
    return [_row_dict(r) for r in rows]


def get_objective(conn: Connection, objective_id: str, *, scope: TenantScope) -> dict[str, Any] | None:
    row = conn.execute(_scoped(scope).where(objectives.c.id == objective_id)).first()
    return None if row is None else _row_dict(row)


def active_objectives(conn: Connection, now: datetime) -> list[Objective]:
    """Objectives not cancelled and not over at ``now`` (to resume after a restart)."""
    rows = conn.execute(select(objectives).where(objectives.c.state == "active")).all()
    out = []
    for r in rows:
        obj = decode_objective(_row_dict(r))
        if obj.end > now:
            out.append(obj)
    return out
