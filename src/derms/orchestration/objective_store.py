"""Objectives as rows of the ``objectives`` table (``derms.store.schema``).

Every objective the orchestrator plans for is stored, whoever asked (operator through the
API, a utility's OpenADR event, a market award); rows read back in the bus payload's form
(:func:`derms.core.events.encode_objective`) plus state and provenance.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from derms.core.events import decode_objective, encode_objective
from derms.core.objectives import Objective
from derms.store.schema import objectives
from derms.store.scope import TenantScope

_PARAMS = ("v_min_pu", "v_max_pu", "prices")
"""Payload fields kept together in the row's ``params`` column."""


def save(conn: Connection, objective: Objective, *, at: datetime, actor: str) -> bool:
    """Store ``objective`` unless its id is known; returns whether it was new."""
    if conn.execute(select(objectives.c.id).where(objectives.c.id == objective.id)).first():
        return False
    row = encode_objective(objective)
    params = {key: row.pop(key) for key in _PARAMS}
    conn.execute(
        insert(objectives).values(
            **{**row, "start": objective.start, "source": objective.source[:200]},
            params=params,
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
    """The row in the bus payload's form, plus its state and provenance."""
    return {
        "id": row.id,
        "kind": row.kind,
        "start": row.start.isoformat(),
        "duration_s": row.duration_s,
        "area": row.area,
        "priority": row.priority,
        "target_w": row.target_w,
        **{key: row.params[key] for key in _PARAMS},
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
