"""3.0.1 USAGE (energy) and DEMAND (power) report payloads → telemetry with derms' sign."""

from __future__ import annotations

import pytest

from derms.adapters.openadr.oadr3.models import Report
from derms.adapters.openadr.oadr3.telemetry import report_telemetry
from tests.adapters.openadr.openadr_samples import T0


def report(payload_type: str, units: str | None, value: object, duration: str | None = "PT15M") -> Report:
    period = {"start": T0.isoformat(), **({"duration": duration} if duration else {})}
    descriptors = [{"payloadType": payload_type, **({"units": units} if units else {})}]
    return Report.model_validate(
        {
            "programID": "p",
            "eventID": "e",
            "clientName": "ven-a",
            "payloadDescriptors": descriptors,
            "resources": [
                {
                    "resourceName": "load-1",
                    "intervalPeriod": period,
                    "intervals": [{"id": 0, "payloads": [{"type": payload_type, "values": [value]}]}],
                },
                {
                    "resourceName": "unknown",
                    "intervals": [{"id": 0, "payloads": [{"type": payload_type, "values": [1]}]}],
                },
            ],
        }
    )


def der_for(ven: str, resource: str) -> str | None:
    return f"{ven}/{resource}" if resource == "load-1" else None


@pytest.mark.parametrize(
    ("payload_type", "units", "value", "duration", "p_w"),
    [
        ("DEMAND", "KW", 42.0, None, -42_000.0),
        ("DEMAND", "W", 500, None, -500.0),
        ("DEMAND", "MW", 1.5, None, -1.5e6),
        ("USAGE", None, 12.0, None, -12_000.0),  # kW when no units are given
        ("USAGE", "KWH", 10.0, "PT15M", -40_000.0),
        ("USAGE", "WH", 250.0, "PT30M", -500.0),
    ],
)
def test_power_and_energy_payloads(payload_type, units, value, duration, p_w) -> None:  # type: ignore[no-untyped-def]
    [sample] = report_telemetry(report(payload_type, units, value, duration), der_for, T0)
    assert (sample.der_id, sample.ts, sample.p_w) == ("ven-a/load-1", T0, pytest.approx(p_w))


@pytest.mark.parametrize(
    ("payload_type", "units", "value", "duration"),
    [
        ("USAGE", "KWH", 10.0, None),  # energy without an interval length
        ("USAGE", "KWH", 10.0, "P1Y"),  # calendar length
        ("DEMAND", "VOLTS", 230.0, None),
        ("DEMAND", "KW", True, None),
        ("DEMAND", "KW", "high", None),
        ("STORAGE_CHARGE_LEVEL", "PERCENT", 0.5, None),
    ],
)
def test_what_is_not_power_is_skipped(payload_type, units, value, duration) -> None:  # type: ignore[no-untyped-def]
    assert report_telemetry(report(payload_type, units, value, duration), der_for, T0) == []
