"""2.0b events received by the derms VEN → platform :class:`Objective` s.

One objective per signal interval whose value asks for something (2.0b Table 1):

* ``LOAD_DISPATCH``/``setpoint`` and ``LOAD_CONTROL``/``x-loadControlCapacity`` or
  ``x-loadControlSetpoint`` → ``PEAK_REDUCTION``: keep import at or below the value;
* ``LOAD_DISPATCH``/``delta`` → ``CAPACITY_TARGET`` of ``|delta|`` (a negative delta is a
  reduction; a positive one is refused as not a reduction);
* ``SIMPLE``/``level`` 1..3 → ``CAPACITY_TARGET`` of the enrolled shed for that level
  (``shed_w_per_level``); level 0 (normal operation) asks for nothing;
* ``ELECTRICITY_PRICE``/``ENERGY_PRICE`` ``price`` → ``ARBITRAGE`` over the event's intervals.

Values are scaled from the signal's ``itemBase`` (``siScaleCode``; kW when absent for power
signals). ``source`` is ``openadr:<eventID>``; the priority is the event's (0 → 100, unset).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

from derms.adapters.openadr.oadr20b.model import Event, EventSignal
from derms.adapters.openadr.oadr20b.vocabulary import SI_SCALE, SignalName, SignalType
from derms.core.objectives import Objective, ObjectiveKind

_CAP = {SignalType.SETPOINT, SignalType.X_LOAD_CONTROL_CAPACITY, SignalType.X_LOAD_CONTROL_SETPOINT}


def _watts(signal: EventSignal, value: float) -> float:
    scale = SI_SCALE.get(signal.item.scale, 1.0) if signal.item is not None else 1e3
    return value * scale


def objectives_for(
    event: Event, shed_w_per_level: Mapping[int, float], tenant_id: str | None = None
) -> list[Objective]:
    priority = event.priority or 100
    out: list[Objective] = []
    for signal in event.signals:
        if (
            signal.name in (SignalName.ELECTRICITY_PRICE, SignalName.ENERGY_PRICE)
            and signal.type is SignalType.PRICE
        ):
            out.append(
                Objective(
                    id=f"openadr-{event.event_id}-{event.modification_number}-{signal.signal_id}",
                    kind=ObjectiveKind.ARBITRAGE,
                    start=event.start,
                    duration=event.duration,
                    priority=priority,
                    prices=tuple(i.value for i in signal.intervals),
                    source=f"openadr:{event.event_id}",
                    tenant_id=tenant_id,
                )
            )
            continue
        offset = timedelta(0)
        for interval in signal.intervals:
            kind, target = _interval_objective(signal, interval.value, shed_w_per_level)
            if kind is not None and interval.duration > timedelta(0):
                out.append(
                    Objective(
                        id=f"openadr-{event.event_id}-{event.modification_number}-{signal.signal_id}-{interval.uid}",
                        kind=kind,
                        start=event.start + offset,
                        duration=interval.duration,
                        priority=priority,
                        target_w=target,
                        source=f"openadr:{event.event_id}",
                        tenant_id=tenant_id,
                    )
                )
            offset += interval.duration
    return out


def _interval_objective(
    signal: EventSignal, value: float, shed_w_per_level: Mapping[int, float]
) -> tuple[ObjectiveKind | None, float | None]:
    if signal.name in (SignalName.LOAD_DISPATCH, SignalName.LOAD_CONTROL) and signal.type in _CAP:
        return ObjectiveKind.PEAK_REDUCTION, _watts(signal, value)
    if signal.name is SignalName.LOAD_DISPATCH and signal.type is SignalType.DELTA and value < 0:
        return ObjectiveKind.CAPACITY_TARGET, abs(_watts(signal, value))
    if signal.name is SignalName.SIMPLE and int(value) in shed_w_per_level and value > 0:
        return ObjectiveKind.CAPACITY_TARGET, shed_w_per_level[int(value)]
    return None, None
