"""3.0.1 reports → derms :class:`Telemetry`.

A report's ``USAGE`` (or ``DEMAND``) payloads are real power of the named resource, load
positive (3.0.1 User Guide, reports and the payload-type enumeration); units come from the
report's ``payloadDescriptors`` (``KW`` or ``W``; kW when absent). derms counts consumption
negative, so ``p_w = -value``. The sample time is the interval's start, else the report's.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from derms.adapters.openadr.oadr3.models import Report
from derms.core.telemetry import Telemetry

_POWER = ("USAGE", "DEMAND")
_UNITS = {"KW": 1e3, "W": 1.0, "MW": 1e6}


def report_telemetry(
    report: Report, der_for: Callable[[str, str], str | None], now: datetime
) -> list[Telemetry]:
    """``der_for(clientName, resourceName)`` names the DER; unknown resources are skipped."""
    units = {
        d.payload_type: _UNITS.get((d.units or "KW").upper(), 1e3) for d in report.payload_descriptors or []
    }
    samples = []
    for resource in report.resources:
        der_id = der_for(report.client_name, resource.resource_name)
        if der_id is None:
            continue
        for interval in resource.intervals:
            period = interval.interval_period or resource.interval_period
            ts = period.start if period is not None else (report.created_date_time or now)
            for payload in interval.payloads:
                if payload.type in _POWER and payload.values and isinstance(payload.values[0], int | float):
                    scale = units.get(payload.type, 1e3)
                    samples.append(Telemetry(der_id=der_id, ts=ts, p_w=-float(payload.values[0]) * scale))
    return samples
