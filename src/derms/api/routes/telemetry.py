"""Telemetry ingest and queries (latest, range, downsampled)."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Query, Request
from pydantic import AwareDatetime

from derms.api.audit import audit
from derms.api.auth import Operator, Viewer
from derms.api.routes.fleet import visible
from derms.api.schemas import TelemetryBatchIn
from derms.core.columns import VALUE_FIELDS, TelemetryColumns, from_ms
from derms.core.errors import ValidationFailed
from derms.core.events import encode_telemetry, telemetry_subject
from derms.core.telemetry import DataQuality, OperationalStatus, Telemetry
from derms.runtime import Runtime
from derms.store import registry as reg

router = APIRouter(prefix="/api/v1", tags=["telemetry"])


def _records(cols: TelemetryColumns, der_ids: list[str | None]) -> list[dict[str, Any]]:
    out = []
    for i in range(len(cols)):
        rec: dict[str, Any] = {
            "der_id": der_ids[int(cols.der_idx[i])],
            "ts": from_ms(int(cols.ts_ms[i])).isoformat(),
        }
        for f in VALUE_FIELDS:
            v = float(getattr(cols, f)[i])
            rec[f] = None if math.isnan(v) else v
        rec |= {
            "status": int(cols.status[i]),
            "available": bool(cols.available[i]),
            "quality": int(cols.quality[i]),
        }
        out.append(rec)
    return out


@router.post("/telemetry", status_code=202)
async def ingest(request: Request, body: TelemetryBatchIn, principal: Operator) -> dict[str, int]:
    """Accept samples (e.g. from a head-end system); they are published on the bus like any
    adapter's telemetry. Samples for DERs outside the caller's scope refuse the whole batch."""
    rt: Runtime = request.app.state.runtime
    ids = {s.der_id for s in body.samples}
    with rt.engine.connect() as conn:
        visible = {d.id for d in reg.list_ders(conn, scope=principal.scope, limit=None)}
    unknown = sorted(ids - visible)
    if unknown:
        raise ValidationFailed([f"unknown DER {d!r}" for d in unknown[:50]])
    samples = [
        Telemetry(
            der_id=s.der_id,
            ts=s.ts,
            p_w=s.p_w,
            q_var=s.q_var,
            v_v=s.v_v,
            f_hz=s.f_hz,
            soc=s.soc,
            status=OperationalStatus(s.status),
            available=s.available,
            quality=DataQuality(s.quality),
        )
        for s in body.samples
    ]
    await rt.bus.publish(telemetry_subject("api"), encode_telemetry(samples))
    with rt.engine.begin() as conn:
        audit(
            conn,
            rt.clock,
            principal,
            "telemetry.ingest",
            "telemetry",
            {"samples": len(samples), "ders": len(ids)},
        )
    return {"accepted": len(samples)}


@router.get("/ders/{der_id}/telemetry")
def der_telemetry(
    request: Request,
    der_id: str,
    principal: Viewer,
    start: AwareDatetime | None = None,
    end: AwareDatetime | None = None,
    interval_s: Annotated[int | None, Query(ge=1, le=86_400)] = None,
) -> list[dict[str, Any]]:
    """Raw samples in ``[start, end)`` (default: the last hour), or buckets of ``interval_s``."""
    rt: Runtime = request.app.state.runtime
    with rt.engine.connect() as conn:
        reg.get_der(conn, der_id, scope=principal.scope)
    row = rt.fleet.index[der_id]
    end = end or rt.clock.now()
    start = start or end - timedelta(hours=1)
    if end <= start:
        raise ValidationFailed(["end must be after start"])
    if interval_s:
        buckets = rt.telemetry.downsample([row], start, end, interval_s)
        return [{**b, "der_id": der_id, "ts": from_ms(int(b.pop("bucket_ms"))).isoformat()} for b in buckets]
    return _records(rt.telemetry.range([row], start, end), rt.fleet.der_ids)


@router.get("/telemetry/latest")
def latest(
    request: Request, principal: Viewer, der_id: Annotated[list[str] | None, Query()] = None
) -> list[dict[str, Any]]:
    """Latest stored sample per DER in scope (or per listed DER)."""
    rt: Runtime = request.app.state.runtime
    mask = visible(rt, principal)
    if der_id:
        wanted = np.zeros_like(mask)
        wanted[[rt.fleet.index[d] for d in der_id if d in rt.fleet.index]] = True
        mask &= wanted
    rows = np.flatnonzero(mask).tolist()
    return _records(rt.telemetry.latest(rows), rt.fleet.der_ids) if rows else []
