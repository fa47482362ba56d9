"""Metering and DER status to platform telemetry and capabilities (pure).

Readings carry ``value × 10^powerOfTenMultiplier`` in the unit ``uom`` (2030.5-2018 UomType:
38 W, 63 var, 29 V, 33 Hz). Sign: a reading with ``flowDirection`` 1 (forward, delivered to
the customer) is import, so it becomes negative in the derms convention; 19 (reverse) is
export and stays positive; without a direction a DER mirror (roleFlags bit isDER) reports
its output (positive = injection) and a site mirror reports import (negative).
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from envoy_schema.server.schema.sep2.der import DERSettings, DERStatus

from derms.adapters.ieee2030_5.mappers import scaled
from derms.adapters.ieee2030_5.schema import DERCapability
from derms.core.der import Capabilities
from derms.core.telemetry import OperationalStatus, Telemetry

UOM_FIELD = {38: "p_w", 63: "q_var", 29: "v_v", 33: "f_hz"}
FLOW_FORWARD, FLOW_REVERSE = 1, 19
ROLE_IS_DER = 0x08
SIGNED_FIELDS = ("p_w", "q_var")


def signed(field: str, value: float, flow_direction: int | None, role_flags: int) -> float:
    """Apply the derms sign convention to a power reading (see module docstring)."""
    if field not in SIGNED_FIELDS:
        return value
    if flow_direction == FLOW_FORWARD:
        forward = abs(value)
    elif flow_direction == FLOW_REVERSE:
        forward = -abs(value)
    else:
        forward = value
    return forward if role_flags & ROLE_IS_DER else -forward


def reading_sample(
    der_id: str, ts: int, uom: int | None, value: int, power_of_ten: int, flow: int | None, role_flags: int
) -> Telemetry | None:
    """One reading as a telemetry sample, or ``None`` for a unit derms does not track."""
    field = UOM_FIELD.get(uom or -1)
    if field is None:
        return None
    quantity = signed(field, scaled(value, power_of_ten), flow, role_flags)
    return Telemetry(der_id=der_id, ts=datetime.fromtimestamp(ts, UTC), **{field: quantity})


def merge(samples: list[Telemetry]) -> list[Telemetry]:
    """Merge samples of the same DER and time into one sample."""
    merged: dict[tuple[str, datetime], Telemetry] = {}
    for sample in samples:
        key = (sample.der_id, sample.ts)
        if key not in merged:
            merged[key] = sample
            continue
        updates = {
            f: getattr(sample, f)
            for f in ("p_w", "q_var", "v_v", "f_hz", "soc")
            if getattr(sample, f) is not None
        }
        merged[key] = dataclasses.replace(merged[key], **updates)
    return list(merged.values())


_OP_MODE = {
    0: OperationalStatus.UNKNOWN,
    1: OperationalStatus.OFF,
    2: OperationalStatus.ON,
    3: OperationalStatus.TEST,
}


def status_sample(der_id: str, status: DERStatus) -> Telemetry:
    """DERStatus → telemetry: operational mode and state of charge (hundredths of a percent)."""
    mode = status.operationalModeStatus.value if status.operationalModeStatus else 0
    soc = status.stateOfChargeStatus.value / 10_000 if status.stateOfChargeStatus else None
    return Telemetry(
        der_id=der_id,
        ts=datetime.fromtimestamp(status.readingTime, UTC),
        soc=None if soc is None else min(max(soc, 0.0), 1.0),
        status=_OP_MODE.get(mode, OperationalStatus.UNKNOWN),
    )


def _w(value: object | None) -> float:
    if value is None:
        return 0.0
    return abs(scaled(value.value, value.multiplier))  # type: ignore[attr-defined]


def capabilities(cap: DERCapability, settings: DERSettings | None = None) -> Capabilities:
    """DERCapability ratings (overridden by DERSettings where set) as core Capabilities."""
    src_w = settings.setMaxW if settings and settings.setMaxW else cap.rtgMaxW
    return Capabilities(
        w_max=_w(src_w),
        w_max_consume=_w((settings.setMaxChargeRateW if settings else None) or cap.rtgMaxChargeRateW),
        va_max=_w((settings.setMaxVA if settings else None) or cap.rtgMaxVA),
        var_max_inject=_w((settings.setMaxVar if settings else None) or cap.rtgMaxVar),
        var_max_absorb=_w((settings.setMaxVarNeg if settings else None) or cap.rtgMaxVarNeg or cap.rtgMaxVar),
        wh_max=_w((settings.setMaxWh if settings else None) or cap.rtgMaxWh),
        v_nom=_w(cap.rtgVNom) or 230.0,
    )
