"""MeterValues (OCPP 1.6 clause 7.31 SampledValue; 2.0.1 SampledValueType) to derms telemetry.

Measurands read: ``Power.Active.Import``/``Power.Active.Export`` (W or kW, summed over phases
when only per-phase values are sent), ``Voltage`` (V, averaged over phases), ``Frequency``
(Hz) and ``SoC`` (percent). A sample without a measurand is an energy register
(``Energy.Active.Import.Register``) and carries no power. Charging is consumption, so import
power is negative in the derms sign convention.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from derms.adapters.ocpp.profiles import parse_iso
from derms.core.telemetry import OperationalStatus, Telemetry

log = logging.getLogger(__name__)

_SCALE = {"W": 1.0, "kW": 1e3, "V": 1.0, "Percent": 0.01, "Hz": 1.0, "Wh": 1.0, "kWh": 1e3}


def _unit(sample: Mapping[str, Any]) -> tuple[str, int]:
    """Unit and power-of-ten multiplier (1.6 ``unit``; 2.0.1 ``unitOfMeasure``)."""
    if "unit" in sample:  # 1.6
        return str(sample["unit"]), 0
    uom = sample.get("unit_of_measure") or {}
    return str(uom.get("unit", "")), int(uom.get("multiplier", 0))


def _value(sample: Mapping[str, Any], default_unit: str) -> float | None:
    unit, multiplier = _unit(sample)
    scale = _SCALE.get(unit or default_unit)
    if scale is None:
        return None
    try:
        return float(sample["value"]) * scale * 10.0**multiplier
    except (KeyError, TypeError, ValueError):
        return None


def energy_register_wh(meter_values: list[Mapping[str, Any]]) -> float | None:
    """The last ``Energy.Active.Import.Register`` reading (Wh or kWh; the default measurand and
    unit) in ``meter_values`` [Wh], summed over phases when only per-phase values are sent."""
    latest = None
    for meter_value in meter_values:
        total, phases = None, []
        for sample in meter_value.get("sampled_value") or []:
            if sample.get("measurand", "Energy.Active.Import.Register") != "Energy.Active.Import.Register":
                continue
            value = _value(sample, "Wh")
            if value is None:
                continue
            if sample.get("phase"):
                phases.append(value)
            else:
                total = value
        if total is None and phases:
            total = sum(phases)
        if total is not None:
            latest = total
    return latest


def to_telemetry(
    der_id: str, meter_values: list[Mapping[str, Any]], now: datetime, status: OperationalStatus
) -> list[Telemetry]:
    """One :class:`Telemetry` per MeterValue; values the sample lacks stay ``None``."""
    out: list[Telemetry] = []
    for meter_value in meter_values:
        try:
            ts = parse_iso(str(meter_value["timestamp"]))
        except (KeyError, ValueError):
            log.warning("meter value for %s without a valid timestamp; using receive time", der_id)
            ts = now
        totals: dict[str, float] = {}
        phases: dict[str, list[float]] = defaultdict(list)
        for sample in meter_value.get("sampled_value") or []:
            measurand = sample.get("measurand", "Energy.Active.Import.Register")
            default_unit = {"Voltage": "V", "Frequency": "Hz", "SoC": "Percent"}.get(measurand, "W")
            value = _value(sample, default_unit)
            if value is None:
                continue
            if sample.get("phase"):
                phases[measurand].append(value)
            else:
                totals[measurand] = value
        for measurand, values in phases.items():
            if measurand not in totals:
                totals[measurand] = sum(values) / len(values) if measurand == "Voltage" else sum(values)
        p_import = totals.get("Power.Active.Import")
        p_export = totals.get("Power.Active.Export")
        p_w = None if p_import is None and p_export is None else (p_export or 0.0) - (p_import or 0.0)
        soc = totals.get("SoC")
        out.append(
            Telemetry(
                der_id=der_id,
                ts=ts,
                p_w=p_w,
                v_v=totals.get("Voltage"),
                f_hz=totals.get("Frequency"),
                soc=min(max(soc, 0.0), 1.0) if soc is not None else None,
                status=status,
            )
        )
    return out
