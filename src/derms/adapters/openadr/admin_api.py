"""Operator API for the OpenADR 2.0b VTN: VENs, events (create, cancel) and opt states.

Mounted by the platform under ``/api/v1/openadr``. Reads need the viewer role; creating and
cancelling events needs the operator role of the utility tenant (OpenADR events are the
utility's program signals) and is audited. Signals are given in the 2.0b vocabulary
(signalName, signalType, intervals, itemBase units) and validated by the same typed model
the VTN sends, so a bad signal name/type pair is a 400 problem, not a malformed message.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from derms.adapters.openadr.adapter import PROTOCOL, OpenAdrVtnAdapter
from derms.adapters.openadr.oadr20b.model import Event, EventSignal, Interval, ItemBase, Target
from derms.adapters.openadr.oadr20b.vocabulary import EventStatus, ResponseRequired, SignalName, SignalType
from derms.api.audit import audit
from derms.api.auth import Forbidden, Operator, Principal, Viewer
from derms.core.errors import NotFound
from derms.core.errors import ValidationFailed as Invalid

router = APIRouter()


def _adapter(request: Request) -> OpenAdrVtnAdapter:
    adapter = request.app.state.runtime.adapters.get(PROTOCOL)
    if not isinstance(adapter, OpenAdrVtnAdapter):
        raise NotFound("adapter", PROTOCOL)
    return adapter


AdapterDep = Annotated[OpenAdrVtnAdapter, Depends(_adapter)]


class IntervalIn(BaseModel):
    duration_s: float = Field(gt=0)
    value: float


class ItemIn(BaseModel):
    element: str = Field(description="e.g. power:powerReal, oadr:currencyPerKWh")
    description: str
    units: str
    scale: str = "none"


class SignalIn(BaseModel):
    signal_name: SignalName
    signal_type: SignalType
    intervals: list[IntervalIn] = Field(min_length=1)
    item: ItemIn | None = None


class TargetIn(BaseModel):
    ven_ids: list[str] = Field(default_factory=list)
    resource_ids: list[str] = Field(default_factory=list)
    group_ids: list[str] = Field(default_factory=list)
    party_ids: list[str] = Field(default_factory=list)


class EventIn(BaseModel):
    start: datetime
    signals: list[SignalIn] = Field(min_length=1)
    target: TargetIn = Field(default_factory=TargetIn)
    market_context: str | None = None
    priority: int = Field(1, ge=0)
    response_required: ResponseRequired = ResponseRequired.ALWAYS
    test_event: bool = False
    vtn_comment: str | None = None
    notification_s: float | None = Field(None, ge=0)


def _event_out(adapter: OpenAdrVtnAdapter, event: Event) -> dict[str, Any]:
    now = adapter.context.clock.now()
    opts = {
        ven_id: state.opt_type.value
        for (event_id, ven_id), history in adapter.vtn.opt_history.items()
        if event_id == event.event_id and history
        for state in history[-1:]
    }
    return {
        "event_id": event.event_id,
        "modification_number": event.modification_number,
        "status": event.status_at(now).value,
        "start": event.start.isoformat(),
        "duration_s": event.duration.total_seconds(),
        "priority": event.priority,
        "signals": [
            {
                "signal_id": s.signal_id,
                "signal_name": s.name.value,
                "signal_type": s.type.value,
                "intervals": [
                    {"duration_s": i.duration.total_seconds(), "value": i.value} for i in s.intervals
                ],
                "units": s.item.units if s.item else None,
            }
            for s in event.signals
        ],
        "target": {
            "ven_ids": list(event.target.ven_ids),
            "resource_ids": list(event.target.resource_ids),
            "group_ids": list(event.target.group_ids),
            "party_ids": list(event.target.party_ids),
        },
        "opts": opts,
    }


def _utility(principal: Principal) -> None:
    if not principal.is_utility:
        raise Forbidden("OpenADR events are issued by the utility tenant")


def _audit(request: Request, principal: Principal, action: str, target: str, detail: dict[str, Any]) -> None:
    runtime = request.app.state.runtime
    with runtime.engine.begin() as conn:
        audit(conn, runtime.clock, principal, f"openadr.{action}", target, detail)


@router.get("/vens")
async def list_vens(adapter: AdapterDep, principal: Viewer) -> list[dict[str, Any]]:
    return [
        {
            "ven_id": v.ven_id,
            "ven_name": v.ven_name,
            "registration_id": v.registration_id,
            "resource_ids": sorted(v.resource_ids),
            "last_seen": v.last_seen.isoformat() if v.last_seen else None,
            "reports": sorted(v.reports),
        }
        for v in adapter.vtn.vens.values()
    ]


@router.get("/events")
async def list_events(adapter: AdapterDep, principal: Viewer) -> list[dict[str, Any]]:
    return [_event_out(adapter, e) for e in adapter.vtn.events.values()]


@router.get("/events/{event_id}")
async def get_event(event_id: str, adapter: AdapterDep, principal: Viewer) -> dict[str, Any]:
    event = adapter.vtn.events.get(event_id)
    if event is None:
        raise NotFound("event", event_id)
    return _event_out(adapter, event)


@router.post("/events", status_code=201)
async def create_event(
    body: EventIn, request: Request, adapter: AdapterDep, principal: Operator
) -> dict[str, Any]:
    _utility(principal)
    try:
        signals = tuple(
            EventSignal(
                s.signal_name,
                s.signal_type,
                str(n),
                tuple(
                    Interval(timedelta(seconds=i.duration_s), i.value, k) for k, i in enumerate(s.intervals)
                ),
                item=ItemBase(s.item.element, s.item.description, s.item.units, s.item.scale)
                if s.item
                else None,
            )
            for n, s in enumerate(body.signals)
        )
        duration = max(sum((i.duration for i in s.intervals), timedelta(0)) for s in signals)
        event = Event(
            event_id=uuid.uuid4().hex,
            modification_number=0,
            market_context=body.market_context or adapter.settings.market_context,
            created=adapter.context.clock.now(),
            status=EventStatus.FAR,
            start=body.start,
            duration=duration,
            signals=signals,
            target=Target(
                group_ids=tuple(body.target.group_ids),
                resource_ids=tuple(body.target.resource_ids),
                ven_ids=tuple(body.target.ven_ids),
                party_ids=tuple(body.target.party_ids),
            ),
            priority=body.priority,
            response_required=body.response_required,
            test_event=body.test_event,
            vtn_comment=body.vtn_comment,
            notification=timedelta(seconds=body.notification_s) if body.notification_s is not None else None,
        )
    except ValueError as exc:
        raise Invalid([str(exc)]) from exc
    adapter.vtn.create_event(event)
    _audit(request, principal, "event.create", event.event_id, body.model_dump(mode="json"))
    return _event_out(adapter, event)


@router.post("/events/{event_id}/cancel")
async def cancel_event(
    event_id: str, request: Request, adapter: AdapterDep, principal: Operator
) -> dict[str, Any]:
    _utility(principal)
    if event_id not in adapter.vtn.events:
        raise NotFound("event", event_id)
    event = adapter.vtn.cancel_event(event_id, "operator cancelled")
    _audit(request, principal, "event.cancel", event_id, {})
    return _event_out(adapter, event)
