"""Operator objectives for the orchestrator, and the dispatch plans made for them.

``POST /objectives`` (operator) stores and audits the objective, hands it to the running
orchestration service and announces it on the bus (``objective.created``); the plan follows
asynchronously. An aggregator's objective is its own tenant's and moves only its DERs.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy import select

from derms.api.audit import audit
from derms.api.auth import Operator, Viewer
from derms.core.errors import NotFound, ValidationFailed
from derms.core.events import OBJECTIVE, encode_objective
from derms.core.objectives import Area, AreaLevel, Objective, ObjectiveKind
from derms.orchestration import objective_store
from derms.orchestration.tables import commands, plans
from derms.runtime import Runtime
from derms.store.schema import ders
from derms.store.scope import TenantScope

if TYPE_CHECKING:
    from derms.orchestration.service import OrchestrationService

router = APIRouter(prefix="/api/v1", tags=["orchestration"])


class AreaIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    level: AreaLevel = AreaLevel.SYSTEM
    ids: list[str] = Field(default_factory=list, max_length=10_000)


class ObjectiveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str | None = Field(default=None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
    kind: ObjectiveKind
    start: AwareDatetime
    duration_s: float = Field(gt=0, le=7 * 86400)
    area: AreaIn = Field(default_factory=AreaIn)
    priority: int = Field(default=100, ge=0, le=10_000)
    target_w: float | None = Field(default=None, ge=0, le=1e11)
    v_min_pu: float = Field(default=0.95, gt=0, lt=2)
    v_max_pu: float = Field(default=1.05, gt=0, lt=2)
    prices: list[float] = Field(default_factory=list, max_length=10_000)


def _service(rt: Runtime) -> OrchestrationService:
    if rt.orchestration is None:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, "orchestration is not running (no grid model)"
        )
    return rt.orchestration


def _check_area(rt: Runtime, obj: Objective, scope: TenantScope) -> None:
    """Every area id must exist (and a group's DERs be the caller's to move)."""
    level, ids = obj.area.level, obj.area.ids
    if level is AreaLevel.GROUP:
        with rt.engine.connect() as conn:
            found = set(
                conn.execute(select(ders.c.id).where(ders.c.id.in_(ids), scope.where(ders))).scalars()
            )
        missing = [i for i in ids if i not in found]
        if missing:
            raise ValidationFailed([f"unknown DER {d!r}" for d in missing[:50]])
        return
    if level is AreaLevel.FEEDER:
        known = set(rt.network.feeder_ids)
    elif level is AreaLevel.SUBSTATION:
        known = set(rt.network.substations.index)
    else:
        return
    missing = [i for i in ids if i not in known]
    if missing:
        raise ValidationFailed([f"unknown {level} {i!r}" for i in missing])


@router.post("/objectives", status_code=status.HTTP_202_ACCEPTED)
async def create_objective(request: Request, body: ObjectiveIn, principal: Operator) -> dict[str, Any]:
    """Ask the orchestrator for something (peak reduction, capacity, reserve, voltage support,
    arbitrage) in an area and a time window. 422 when the objective is inconsistent or names
    unknown areas; 409 when its id is taken; nothing is stored or sent then."""
    rt: Runtime = request.app.state.runtime
    service = _service(rt)
    try:
        obj = Objective(
            id=body.id or uuid.uuid4().hex,
            kind=body.kind,
            start=body.start,
            duration=timedelta(seconds=body.duration_s),
            area=Area(body.area.level, tuple(body.area.ids)),
            priority=body.priority,
            target_w=body.target_w,
            v_min_pu=body.v_min_pu,
            v_max_pu=body.v_max_pu,
            prices=tuple(body.prices),
            source=f"operator:{principal.username}",
            tenant_id=principal.scope.tenant_id,
        )
    except ValueError as exc:
        raise ValidationFailed([str(exc)]) from exc
    _check_area(rt, obj, principal.scope)
    payload = encode_objective(obj)
    with rt.engine.begin() as conn:
        if not objective_store.save(conn, obj, at=rt.clock.now(), actor=principal.username):
            raise HTTPException(status.HTTP_409_CONFLICT, f"objective {obj.id!r} exists")
        audit(conn, rt.clock, principal, "objective.create", f"objective/{obj.id}", payload)
    await service.submit(obj, actor=principal.username)
    await rt.bus.publish(f"{OBJECTIVE}.created", payload)
    return {**payload, "state": "active"}


@router.get("/objectives")
def list_objectives(
    request: Request, principal: Viewer, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> list[dict[str, Any]]:
    """Newest first; an aggregator sees its own."""
    rt: Runtime = request.app.state.runtime
    with rt.engine.connect() as conn:
        return objective_store.list_objectives(conn, scope=principal.scope, limit=limit)


@router.get("/objectives/{objective_id}")
def get_objective(request: Request, objective_id: str, principal: Viewer) -> dict[str, Any]:
    """The objective and the plans made for it (newest first)."""
    rt: Runtime = request.app.state.runtime
    with rt.engine.connect() as conn:
        found = objective_store.get_objective(conn, objective_id, scope=principal.scope)
        if found is None:
            raise NotFound("objective", objective_id)
        rows = conn.execute(
            select(plans.c.id, plans.c.objective_ids).order_by(plans.c.created_at.desc()).limit(1000)
        ).all()
    return {**found, "plans": [r.id for r in rows if objective_id in (r.objective_ids or [])]}


@router.get("/plans/{plan_id}")
def get_plan(
    request: Request,
    plan_id: str,
    principal: Viewer,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    """A dispatch plan (without its recorded inputs) and its commands with their states; an
    aggregator sees the commands to its own DERs, and only plans that have some."""
    rt: Runtime = request.app.state.runtime
    scope = principal.scope
    with rt.engine.connect() as conn:
        plan = conn.execute(select(plans).where(plans.c.id == plan_id)).first()
        query = (
            select(commands, ders.c.tenant_id)
            .join(ders, ders.c.id == commands.c.der_id)
            .where(commands.c.plan_id == plan_id, scope.where(ders))
            .order_by(commands.c.der_id)
        )
        rows = conn.execute(query.offset(offset).limit(limit)).all() if plan is not None else []
    if plan is None or (scope.tenant_id is not None and not rows):
        raise NotFound("plan", plan_id)
    return {
        "id": plan.id,
        "created_at": plan.created_at.isoformat(),
        "objective_ids": plan.objective_ids,
        "solver": plan.solver,
        "status": plan.status,
        "cost": plan.cost,
        "inputs_digest": plan.inputs_digest,
        "setpoints": plan.setpoints,
        "commands": [
            {
                "id": r.id,
                "der_id": r.der_id,
                "protocol": r.protocol,
                "start": r.start.isoformat(),
                "end": r.end.isoformat(),
                "control": r.control,
                "objective_id": r.objective_id,
                "binding": r.binding,
                "detail": r.detail,
                "state": r.state,
                "attempts": r.attempts,
                "delivered_w": r.delivered_w,
            }
            for r in rows
        ],
    }
