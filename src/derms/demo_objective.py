"""The demo's operator: at the evening peak it asks for a feeder peak reduction through the API.

It picks the feeder whose plannable DERs offer the most upward flexibility, estimates that
feeder's import at the baseline (:func:`derms.orchestration.live.area_import_w`) and posts
``POST /api/v1/objectives`` (operator token, over HTTP like any client) for a reduction of
half that flexibility, held for ``duration_s``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx
import numpy as np
import structlog

from derms.core.clock import Clock
from derms.core.objectives import Area, AreaLevel, Objective, ObjectiveKind
from derms.orchestration import live
from derms.runtime import Runtime

log = structlog.get_logger(__name__)


def peak_request(runtime: Runtime, start: datetime, duration_s: float) -> dict[str, Any]:
    """The objective body: the feeder with the most plannable upward flexibility, its import
    at the baseline less half of that flexibility."""
    state = runtime.fleet
    up, _ = state.flexibility()
    rows = live.planned_rows(state, start.timestamp() * 1000.0)
    per_feeder = np.bincount(state.feeder[rows].clip(0), weights=up[rows], minlength=len(state.feeder_ids))
    feeder = state.feeder_ids[int(np.argmax(per_feeder))]
    flex = float(per_feeder.max())
    probe = Objective(
        "probe",
        ObjectiveKind.PEAK_REDUCTION,
        start,
        timedelta(seconds=duration_s),
        Area(AreaLevel.FEEDER, (feeder,)),
        target_w=0.0,
    )
    where = live.areas(state, runtime.network)
    imports = live.area_import_w(probe, state, where, runtime.network, live.baseline_p(state, {}))
    return {
        "id": f"demo-evening-peak-{feeder}",
        "kind": "peak_reduction",
        "start": start.isoformat(),
        "duration_s": duration_s,
        "area": {"level": "feeder", "ids": [feeder]},
        "target_w": max(imports - 0.5 * flex, 0.0),
    }


async def post_at(
    clock: Clock,
    when: datetime,
    runtime: Runtime,
    base_url: str,
    token: str,
    *,
    duration_s: float = 3 * 3600.0,
) -> dict[str, Any] | None:
    """Wait on the clock until ``when``, then post the peak reduction; returns the accepted
    objective (None if the API refused it, which is logged)."""
    wait = (when - clock.now()).total_seconds()
    if wait > 0:
        await clock.sleep(wait)
    while not len(live.planned_rows(runtime.fleet, clock.now().timestamp() * 1000.0)):  # nothing reported yet
        await clock.sleep(60.0)
    body = peak_request(runtime, clock.now(), duration_s)
    async with httpx.AsyncClient(base_url=base_url, timeout=30.0) as client:
        resp = await client.post(
            "/api/v1/objectives", json=body, headers={"Authorization": f"Bearer {token}"}
        )
    if resp.status_code != 202:
        log.warning("demo objective refused", status=resp.status_code, problem=resp.text[:500])
        return None
    log.info("operator objective posted", objective=body["id"], target_w=round(body["target_w"]))
    return dict(resp.json())
