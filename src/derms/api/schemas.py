"""Request and response bodies (separate create/update/public shapes)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from derms.core.controls import ControlKind
from derms.core.der import DerKind
from derms.core.site import Phase


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CustomerIn(Strict):
    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
    name: str = Field(min_length=1, max_length=200)
    email: str = Field(default="", max_length=200)
    tenant_id: str | None = Field(default=None, description="utility users must name the tenant")


class CustomerOut(BaseModel):
    id: str
    tenant_id: str
    name: str
    email: str


class SiteIn(Strict):
    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
    customer_id: str
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)
    feeder_id: str | None = None
    bus: str | None = None
    phase: Phase = Phase.ABC
    meter_id: str | None = None
    import_limit_w: float | None = Field(default=None, ge=0)
    export_limit_w: float | None = Field(default=None, ge=0)


class SiteOut(SiteIn):
    model_config = ConfigDict(extra="ignore")
    tenant_id: str


class CapabilitiesIn(Strict):
    w_max: float = Field(default=0, ge=0, le=1e9)
    w_max_consume: float = Field(default=0, ge=0, le=1e9)
    va_max: float = Field(default=0, ge=0, le=1e9)
    var_max_inject: float = Field(default=0, ge=0, le=1e9)
    var_max_absorb: float = Field(default=0, ge=0, le=1e9)
    wh_max: float = Field(default=0, ge=0, le=1e12)
    ramp_w_per_s: float | None = Field(default=None, gt=0)
    round_trip_efficiency: float = Field(default=1.0, gt=0, le=1)
    soc_reserve: float = Field(default=0.0, ge=0, lt=1)
    sheddable_fraction: float = Field(default=1.0, ge=0, le=1)
    r_k_per_w: float | None = Field(default=None, gt=0, le=1)
    c_j_per_k: float | None = Field(default=None, gt=0, le=1e12)
    cop: float | None = Field(default=None, gt=0, le=20)
    v_nom: float = Field(default=230.0, gt=0)
    phases: int = Field(default=1, ge=1, le=3)
    controls: list[ControlKind] = Field(default_factory=list)


class DerIn(Strict):
    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
    site_id: str
    kind: DerKind
    protocol: str = Field(min_length=1, max_length=32)
    address: str = Field(min_length=1, max_length=200)
    name: str = Field(default="", max_length=200)
    enabled: bool = True
    capabilities: CapabilitiesIn


class DerOut(DerIn):
    model_config = ConfigDict(extra="ignore")
    tenant_id: str


class TelemetryIn(Strict):
    der_id: str
    ts: AwareDatetime
    p_w: float | None = None
    q_var: float | None = None
    v_v: float | None = Field(default=None, ge=0)
    f_hz: float | None = Field(default=None, ge=0)
    soc: float | None = Field(default=None, ge=0, le=1)
    status: int = Field(default=0, ge=0, le=5)
    available: bool = True
    quality: int = Field(default=0, ge=0, le=3)


class TelemetryBatchIn(Strict):
    samples: list[TelemetryIn] = Field(min_length=1, max_length=100_000)


class CommandIn(Strict):
    control: dict[str, Any] = Field(
        description="a derms control: {'kind': 'charge_discharge', 'w': -2000}, ..."
    )
    start: AwareDatetime | None = None
    duration_s: float = Field(default=900, gt=0, le=7 * 86400)
    reason: str = Field(default="operator override", max_length=500)


class CommandOut(BaseModel):
    command_id: str
    der_id: str
    protocol: str
    start: datetime
    end: datetime
    losses: list[dict[str, Any]]
