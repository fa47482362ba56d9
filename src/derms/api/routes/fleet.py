"""Live fleet roll-ups per feeder and for the fleet, from the columnar state."""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import APIRouter, Request
from numpy.typing import NDArray

from derms.api.auth import Principal, Viewer
from derms.fleet import FeederRollup, rollup
from derms.runtime import Runtime

router = APIRouter(prefix="/api/v1", tags=["fleet"])


def visible(rt: Runtime, principal: Principal) -> NDArray[np.bool_]:
    """Rows of the fleet state the caller may see: every registered DER for the utility,
    the tenant's own otherwise."""
    state = rt.fleet
    if principal.scope.tenant_id is None:
        return state.registered.copy()
    tenant = state.tenant_ids.index(principal.tenant_id) if principal.tenant_id in state.tenant_ids else -2
    return state.registered & (state.tenant == tenant)


def scoped_rollup(rt: Runtime, principal: Principal) -> FeederRollup:
    """Roll-up over what the caller may see."""
    return rollup(rt.fleet, mask=visible(rt, principal))


@router.get("/fleet")
def fleet(request: Request, principal: Viewer) -> dict[str, Any]:
    rt: Runtime = request.app.state.runtime
    return {"at": rt.clock.now().isoformat(), **scoped_rollup(rt, principal).fleet()}


@router.get("/feeders")
def feeders(request: Request, principal: Viewer) -> list[dict[str, Any]]:
    """Per feeder: DERs, online/offline, P, Q and available up/down flexibility (W)."""
    rt: Runtime = request.app.state.runtime
    return scoped_rollup(rt, principal).records()


@router.get("/feeders/{feeder_id}/ders")
def feeder_ders(request: Request, feeder_id: str, principal: Viewer) -> list[dict[str, Any]]:
    """Live state of each DER on a feeder that the caller may see."""
    rt: Runtime = request.app.state.runtime
    state = rt.fleet
    if feeder_id not in state.feeder_ids:
        return []
    mask = visible(rt, principal) & (state.feeder == state.feeder_ids.index(feeder_id))
    up, down = state.flexibility()
    return [
        {
            "der_id": state.der_ids[i],
            "online": bool(state.online[i]),
            "available": bool(state.available[i]),
            "p_w": None if np.isnan(state.p_w[i]) else float(state.p_w[i]),
            "soc": None if np.isnan(state.soc[i]) else float(state.soc[i]),
            "flex_up_w": float(up[i]),
            "flex_down_w": float(down[i]),
        }
        for i in np.flatnonzero(mask)
    ]
