"""3.0.1 reports → derms :class:`Telemetry`.

``DEMAND`` is real power over an interval and ``USAGE`` energy over an interval (3.0.1
Definition, report payload types); both are consumption, so load is positive and derms'
``p_w = -value``. Units come from the report's ``payloadDescriptors``: power in ``W``, ``KW``
or ``MW`` is taken as is (kW when absent, as VENs commonly report usage as kW), energy in
``WH``, ``KWH`` or ``MWH`` is divided by the interval's duration (no duration: skipped, as is
any other unit). The sample time is the interval's start, else the report's.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from derms.adapters.openadr.oadr3.models import IntervalPeriod, Report, parse_duration
from derms.core.telemetry import Telemetry

_PAYLOADS = ("USAGE", "DEMAND")
_POWER = {"W": 1.0, "KW": 1e3, "MW": 1e6}
_ENERGY = {"WH": 1.0, "KWH": 1e3, "MWH": 1e6}


def _watts(value: float, units: str, period: IntervalPeriod | None) -> float | None:
    if units in _POWER:
        return value * _POWER[units]
    if units in _ENERGY and period is not None and period.duration:
        try:
            hours = parse_duration(period.duration).total_seconds() / 3600
        except ValueError:
            return None
        return value * _ENERGY[units] / hours if hours > 0 else None
    return None


def report_telemetry(
    report: Report, der_for: Callable[[str, str], str | None], now: datetime
) -> list[Telemetry]:
    """``der_for(clientName, resourceName)`` names the DER; unknown resources are skipped."""
    units = {d.payload_type: (d.units or "KW").upper() for d in report.payload_descriptors or []}
    samples = []
    for resource in report.resources:
        der_id = der_for(report.client_name, resource.resource_name)
        if der_id is None:
            continue
        for interval in resource.intervals:
            period = interval.interval_period or resource.interval_period
            ts = period.start if period is not None else (report.created_date_time or now)
            for payload in interval.payloads:
                if payload.type not in _PAYLOADS or not payload.values:
                    continue
                value = payload.values[0]
                if isinstance(value, bool) or not isinstance(value, int | float):
                    continue
                watts = _watts(float(value), units.get(payload.type, "KW"), period)
                if watts is not None:
                    samples.append(Telemetry(der_id=der_id, ts=ts, p_w=-watts))
    return samples
