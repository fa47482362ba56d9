"""Operator API for the 2030.5 server: end devices, programs, controls, defaults and curves.

Mounted by the platform under ``/api/v1/ieee2030_5``. Writes need the operator role and are
audited; a tenant's operator only sees and changes its own tenant's programs and devices
(the utility sees all). Control values are the 2030.5 ``DERControlBase`` fields by name
(e.g. ``{"opModExpLimW": {"value": 15, "multiplier": 2}}``), validated by the same typed
model the server publishes.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field, ValidationError

from derms.adapters.ieee2030_5.adapter import PROTOCOL, Ieee2030_5Adapter
from derms.adapters.ieee2030_5.records import ProgramRecord
from derms.adapters.ieee2030_5.schema import DERControlBase
from derms.api.audit import audit
from derms.api.auth import Operator, Principal, Viewer
from derms.core.errors import NotFound
from derms.core.errors import ValidationFailed as Invalid

router = APIRouter()


def _adapter(request: Request) -> Ieee2030_5Adapter:
    adapter = request.app.state.runtime.adapters.get(PROTOCOL)
    if not isinstance(adapter, Ieee2030_5Adapter):
        raise NotFound("adapter", PROTOCOL)
    return adapter


AdapterDep = Annotated[Ieee2030_5Adapter, Depends(_adapter)]


def _base(values: dict[str, Any]) -> DERControlBase:
    unknown = sorted(k for k in values if k not in DERControlBase.model_fields)
    if unknown:
        raise Invalid([f"unknown DERControlBase field {k}" for k in unknown])
    try:
        return DERControlBase.model_validate(values)
    except ValidationError as exc:
        raise Invalid([f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]) from exc


def _visible(principal: Principal, program: ProgramRecord) -> ProgramRecord:
    if not principal.is_utility and program.tenant_id != principal.tenant_id:
        raise NotFound("DERProgram", program.id)
    return program


def _audit(request: Request, principal: Principal, action: str, target: str, detail: dict[str, Any]) -> None:
    runtime = request.app.state.runtime
    with runtime.engine.begin() as conn:
        audit(conn, runtime.clock, principal, f"ieee2030_5.{action}", target, detail)


class EndDeviceIn(BaseModel):
    lfdi: str = Field(description="40 hex characters: SHA-256 prefix of the device certificate")
    der_id: str | None = None
    pin: int | None = Field(default=None, ge=0, le=999_999)
    aggregator_lfdi: str | None = None
    is_aggregator: bool = False


class ProgramIn(BaseModel):
    description: str
    primacy: int = Field(ge=0, le=255)
    edev_ids: list[int] | None = None


class ControlIn(BaseModel):
    start: int = Field(description="POSIX seconds")
    duration_s: int = Field(gt=0)
    control: dict[str, Any]
    randomize_start: int | None = None
    randomize_duration: int | None = None
    description: str = ""


class DefaultIn(BaseModel):
    control: dict[str, Any]
    set_es_delay: int | None = None
    set_es_random_delay: int | None = None
    set_grad_w: int | None = None
    set_soft_grad_w: int | None = None


class CurveIn(BaseModel):
    curve_type: int = Field(ge=0, le=14)
    points: list[tuple[float, float]] = Field(min_length=1, max_length=10)
    y_ref_type: int = Field(ge=0, le=7)
    x_multiplier: int = Field(default=0, ge=-9, le=9)
    y_multiplier: int = Field(default=0, ge=-9, le=9)
    excitation: list[bool] | None = None
    description: str = ""


def _program_out(program: ProgramRecord) -> dict[str, Any]:
    return {
        "id": program.id,
        "mrid": program.mrid,
        "tenant_id": program.tenant_id,
        "description": program.description,
        "primacy": program.primacy,
        "edev_ids": None if program.edev_ids is None else sorted(program.edev_ids),
        "has_default": program.default is not None,
    }


@router.get("/end-devices")
def list_end_devices(principal: Viewer, adapter: AdapterDep) -> list[dict[str, Any]]:
    return [
        {
            "id": e.id,
            "lfdi": e.lfdi,
            "sfdi": e.sfdi,
            "der_id": e.der_id,
            "tenant_id": e.tenant_id,
            "pin": e.pin,
        }
        for e in adapter.repo.end_devices.values()
        if principal.is_utility or e.tenant_id == principal.tenant_id
    ]


@router.post("/end-devices", status_code=201)
def register_end_device(
    body: EndDeviceIn, principal: Operator, adapter: AdapterDep, request: Request
) -> dict[str, Any]:
    """Out-of-band registration (CSIP 5.2.2)."""
    try:
        edev = adapter.manager.register_out_of_band(
            body.lfdi,
            principal.tenant_id,
            der_id=body.der_id,
            pin=body.pin,
            aggregator_lfdi=body.aggregator_lfdi,
            is_aggregator=body.is_aggregator,
        )
    except ValueError as exc:
        raise Invalid([str(exc)]) from exc
    _audit(request, principal, "register", f"edev:{edev.id}", {"lfdi": edev.lfdi})
    return {"id": edev.id, "lfdi": edev.lfdi, "sfdi": edev.sfdi, "pin": edev.pin}


@router.get("/programs")
def list_programs(principal: Viewer, adapter: AdapterDep) -> list[dict[str, Any]]:
    return [
        _program_out(p)
        for p in adapter.repo.programs.values()
        if principal.is_utility or p.tenant_id == principal.tenant_id
    ]


@router.post("/programs", status_code=201)
def create_program(
    body: ProgramIn, principal: Operator, adapter: AdapterDep, request: Request
) -> dict[str, Any]:
    edevs = None if body.edev_ids is None else frozenset(body.edev_ids)
    for edev_id in edevs or ():
        edev = adapter.repo.end_devices.get(edev_id)
        if edev is None or edev.tenant_id != principal.tenant_id:
            raise NotFound("EndDevice", edev_id)
    program = adapter.manager.create_program(principal.tenant_id, body.description, body.primacy, edevs)
    _audit(request, principal, "program.create", f"derp:{program.id}", body.model_dump())
    return _program_out(program)


@router.post("/programs/{program_id}/controls", status_code=201)
async def create_control(
    program_id: int, body: ControlIn, principal: Operator, adapter: AdapterDep, request: Request
) -> dict[str, Any]:
    _visible(principal, adapter.repo.program(program_id))
    control = await adapter.manager.create_control(
        program_id,
        _base(body.control),
        body.start,
        body.duration_s,
        description=body.description,
        randomize_start=body.randomize_start,
        randomize_duration=body.randomize_duration,
    )
    _audit(request, principal, "control.create", f"derc:{control.id}", body.model_dump())
    return {"id": control.id, "mrid": control.mrid, "program_id": program_id}


@router.post("/controls/{control_id}/cancel")
async def cancel_control(
    control_id: int, principal: Operator, adapter: AdapterDep, request: Request, randomized: bool = False
) -> dict[str, Any]:
    control = adapter.repo.control(control_id)
    _visible(principal, adapter.repo.program(control.program_id))
    await adapter.manager.cancel_control(control_id, randomized=randomized)
    _audit(request, principal, "control.cancel", f"derc:{control_id}", {"randomized": randomized})
    return {"id": control_id, "cancelled_time": control.cancelled_time}


@router.put("/programs/{program_id}/default")
async def set_default(
    program_id: int, body: DefaultIn, principal: Operator, adapter: AdapterDep, request: Request
) -> dict[str, Any]:
    _visible(principal, adapter.repo.program(program_id))
    program = await adapter.manager.set_default(
        program_id,
        _base(body.control),
        set_es_delay=body.set_es_delay,
        set_es_random_delay=body.set_es_random_delay,
        set_grad_w=body.set_grad_w,
        set_soft_grad_w=body.set_soft_grad_w,
    )
    _audit(request, principal, "default.set", f"derp:{program_id}", body.model_dump())
    return _program_out(program)


@router.post("/programs/{program_id}/curves", status_code=201)
async def create_curve(
    program_id: int, body: CurveIn, principal: Operator, adapter: AdapterDep, request: Request
) -> dict[str, Any]:
    _visible(principal, adapter.repo.program(program_id))
    curve = await adapter.manager.create_curve(
        program_id,
        body.curve_type,
        body.points,
        y_ref_type=body.y_ref_type,
        x_multiplier=body.x_multiplier,
        y_multiplier=body.y_multiplier,
        excitation=body.excitation,
        description=body.description,
    )
    _audit(request, principal, "curve.create", f"dc:{curve.id}", body.model_dump())
    return {"id": curve.id, "mrid": curve.mrid, "program_id": program_id}
