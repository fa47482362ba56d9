"""Setpoint → OpenADR 3.0.1 event, for DERs whose VEN speaks 3.0.1.

Payload types are those of the 3.0.1 Definition ("Event interval payload types"), values in
the units of the event's ``payloadDescriptors``:

* :class:`LoadShed` → ``SIMPLE`` level 0..3;
* :class:`LoadLimit` → ``IMPORT_CAPACITY_LIMIT`` in ``KW``;
* :class:`GenerationLimit` → ``EXPORT_CAPACITY_LIMIT`` in ``KW``;
* :class:`ImportExportLimit` → ``IMPORT_CAPACITY_LIMIT`` and/or ``EXPORT_CAPACITY_LIMIT``;
* :class:`ActivePowerTarget` → ``DISPATCH_SETPOINT``, "the absolute amount of consumption" in
  ``KW``: ``-w`` (derms counts injection positive, so an injection target is a negative
  consumption);
* :class:`PriceSignal` → ``PRICE`` per ``KWH`` with the control's currency.

The event targets the VEN (``VEN_NAME``) and, for a resource DER, the resource
(``RESOURCE_NAME``); the VTN shows it only to a VEN matching both. It asks for ``USAGE``
reports in kW (the VEN's answer is the command's acknowledgement and telemetry). JSON numbers
carry the values exactly; the only quantisation is ``resolution_kw``, each recorded as a
:class:`PrecisionLoss`. Controls without a 3.0.1 payload type raise :class:`LimitViolation`.
"""

from __future__ import annotations

from datetime import timedelta

from derms.adapters.base import PrecisionLoss
from derms.adapters.openadr.oadr3.models import (
    Event,
    EventPayloadDescriptor,
    Interval,
    IntervalPeriod,
    ReportDescriptor,
    ValuesMap,
)
from derms.core.controls import (
    ActivePowerTarget,
    Control,
    GenerationLimit,
    ImportExportLimit,
    LoadLimit,
    LoadShed,
    PriceSignal,
)
from derms.core.der import Der
from derms.core.dispatch import Setpoint
from derms.core.errors import LimitViolation


def iso_duration(value: timedelta) -> str:
    """``timedelta`` → ISO 8601 duration (``PT1H30M``, ``PT0.5S``), as ``openadr3.yaml`` asks."""
    if value < timedelta(0):
        raise ValueError("durations are not negative")
    micros = round(value.total_seconds() * 1e6)
    hours, rest = divmod(micros, 3_600_000_000)
    minutes, rest = divmod(rest, 60_000_000)
    seconds = rest / 1e6
    text = "PT" + (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "")
    if seconds or text == "PT":
        text += f"{seconds:g}S"
    return text


def _payloads(
    der: Der, control: Control, resolution_kw: float
) -> tuple[list[tuple[str, float, str | None, str | None]], list[PrecisionLoss]]:
    """(payload type, value, units, currency) per payload, and the precision lost."""
    losses: list[PrecisionLoss] = []

    def kw(name: str, watts: float) -> float:
        requested = watts / 1000
        value = round(requested / resolution_kw) * resolution_kw
        if value != requested:
            losses.append(PrecisionLoss(name, requested, value, "kW"))
        return value

    match control:
        case LoadShed(level=level):
            return [("SIMPLE", level, None, None)], losses
        case LoadLimit(w=w):
            return [("IMPORT_CAPACITY_LIMIT", kw("IMPORT_CAPACITY_LIMIT", w), "KW", None)], losses
        case GenerationLimit(w=w):
            return [("EXPORT_CAPACITY_LIMIT", kw("EXPORT_CAPACITY_LIMIT", w), "KW", None)], losses
        case ImportExportLimit(import_w=imp, export_w=exp):
            out = []
            if imp is not None:
                out.append(("IMPORT_CAPACITY_LIMIT", kw("IMPORT_CAPACITY_LIMIT", imp), "KW", None))
            if exp is not None:
                out.append(("EXPORT_CAPACITY_LIMIT", kw("EXPORT_CAPACITY_LIMIT", exp), "KW", None))
            return out, losses
        case ActivePowerTarget(w=w):
            return [("DISPATCH_SETPOINT", kw("DISPATCH_SETPOINT", -w), "KW", None)], losses
        case PriceSignal(price_per_kwh=price, currency=currency):
            return [("PRICE", price, "KWH", currency)], losses
        case _:
            raise LimitViolation(der.id, f"OpenADR 3.0.1 has no event payload type for {control.kind}")


def event_for(
    der: Der, setpoint: Setpoint, command_id: str, program_id: str, priority: int, resolution_kw: float
) -> tuple[Event, list[PrecisionLoss]]:
    """The 3.0.1 event carrying ``setpoint`` to the DER at ``"<venName>[/<resourceName>]"``."""
    ven, _, resource = der.address.partition("/")
    if not ven:
        raise LimitViolation(der.id, "no venName in the DER's address")
    payloads, losses = _payloads(der, setpoint.control, resolution_kw)
    targets = [ValuesMap(type="VEN_NAME", values=[ven])]
    if resource:
        targets.append(ValuesMap(type="RESOURCE_NAME", values=[resource]))
    event = Event(
        program_id=program_id,
        event_name=command_id,
        priority=priority,
        targets=targets,
        payload_descriptors=[
            EventPayloadDescriptor(payload_type=name, units=units, currency=currency)
            for name, _, units, currency in payloads
        ],
        report_descriptors=[ReportDescriptor(payload_type="USAGE", reading_type="DIRECT_READ", units="KW")],
        interval_period=IntervalPeriod(
            start=setpoint.start, duration=iso_duration(setpoint.end - setpoint.start)
        ),
        intervals=[
            Interval(id=0, payloads=[ValuesMap(type=name, values=[value]) for name, value, _, _ in payloads])
        ],
    )
    return event, losses
