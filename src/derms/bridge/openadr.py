"""Setpoint → OpenADR event translation (2.0b, or 3.0.1 for VENs that speak it).

A DER reached over OpenADR is a VEN resource (``Der.address`` = ``"<venName>/<resourceID>"``
or ``"<venName>"`` for the whole VEN). When the VEN is a 3.0.1 VEN (``Oadr3Route.speaks``),
the setpoint becomes a 3.0.1 event in the adapter's dispatch program
(:mod:`derms.bridge.openadr3`). Otherwise controls map to 2.0b signals (2.0b Table 1):

* :class:`LoadShed` → ``SIMPLE``/``level`` 1..3 (0 is normal operation);
* :class:`LoadLimit` → ``LOAD_DISPATCH``/``setpoint`` in kW of real power;
* :class:`ActivePowerTarget` with ``w <= 0`` → ``LOAD_DISPATCH``/``setpoint`` of ``-w`` kW
  (OpenADR load is consumption, derms counts consumption negative);
* :class:`PriceSignal` → ``ELECTRICITY_PRICE``/``price`` in currency per kWh.

OpenADR carries floats (``ei:payloadFloat``), so the only quantisation is the adapter's
``resolution_kw`` for dispatch setpoints; each is recorded as a :class:`PrecisionLoss`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from derms.adapters.base import NativeCommand, PrecisionLoss
from derms.adapters.openadr.oadr20b.model import (
    POWER_REAL_KW,
    Event,
    EventSignal,
    Interval,
    ItemBase,
    Target,
)
from derms.adapters.openadr.oadr20b.vocabulary import EventStatus, ResponseRequired, SignalName, SignalType
from derms.bridge.openadr3 import event_for
from derms.core.controls import ActivePowerTarget, LoadLimit, LoadShed, PriceSignal
from derms.core.der import Der
from derms.core.dispatch import Setpoint
from derms.core.errors import LimitViolation

if TYPE_CHECKING:
    from derms.adapters.openadr.adapter import OpenAdrVtnAdapter
    from derms.adapters.openadr.settings import OpenAdrSettings

PROTOCOL = "openadr"


@dataclass(frozen=True, slots=True)
class Oadr3Route:
    """How setpoints reach 3.0.1 VENs: which venNames speak 3.0.1, and the dispatch program's id."""

    speaks: Callable[[str], bool]
    program_id: Callable[[], str]


def target_for(address: str) -> Target:
    """``"ven/resource"`` → resourceID target; ``"ven"`` → venName as a group-free VEN target."""
    ven, _, resource = address.partition("/")
    if resource:
        return Target(resource_ids=(resource,))
    return Target(ven_ids=(ven,))


class OpenAdrTranslator:
    """Translate setpoints into 2.0b :class:`Event` payloads; ``created`` comes from the caller's clock."""

    protocol = PROTOCOL

    def __init__(
        self,
        market_context: str,
        resolution_kw: float = 0.001,
        priority: int = 1,
        oadr3: Oadr3Route | None = None,
    ) -> None:
        if resolution_kw <= 0:
            raise ValueError("resolution_kw must be positive")
        self.market_context = market_context
        self.resolution_kw = resolution_kw
        self.priority = priority
        self.oadr3 = oadr3

    @classmethod
    def for_adapter(cls, settings: OpenAdrSettings, adapter: OpenAdrVtnAdapter) -> OpenAdrTranslator:
        """The translator feeding ``adapter``: 3.0.1 VENs are routed to its 3.0.1 VTN when enabled."""
        route = None
        if adapter.vtn3 is not None:
            route = Oadr3Route(adapter.speaks_oadr3, adapter.dispatch_program_id)
        return cls(settings.market_context, settings.dispatch_resolution_kw, oadr3=route)

    def translate(self, der: Der, setpoint: Setpoint, command_id: str) -> NativeCommand:
        payload: object
        if self.oadr3 is not None and self.oadr3.speaks(der.address.partition("/")[0]):
            payload, losses = event_for(
                der, setpoint, command_id, self.oadr3.program_id(), self.priority, self.resolution_kw
            )
        else:
            payload, losses = self._event_20b(der, setpoint, command_id)
        return NativeCommand(
            command_id=command_id,
            der_id=der.id,
            protocol=PROTOCOL,
            payload=payload,
            start=setpoint.start,
            end=setpoint.end,
            losses=tuple(losses),
        )

    def _event_20b(self, der: Der, setpoint: Setpoint, command_id: str) -> tuple[Event, list[PrecisionLoss]]:
        control = setpoint.control
        losses: list[PrecisionLoss] = []
        item: ItemBase | None = None
        if isinstance(control, LoadShed):
            name, kind, value = SignalName.SIMPLE, SignalType.LEVEL, float(control.level)
        elif isinstance(control, LoadLimit | ActivePowerTarget):
            requested_kw = control.w / 1000 if isinstance(control, LoadLimit) else -control.w / 1000
            if requested_kw < 0:
                raise LimitViolation(der.id, "OpenADR LOAD_DISPATCH cannot ask a load to inject power")
            value = round(requested_kw / self.resolution_kw) * self.resolution_kw
            if value != requested_kw:
                losses.append(PrecisionLoss("LOAD_DISPATCH.setpoint", requested_kw, value, "kW"))
            name, kind, item = SignalName.LOAD_DISPATCH, SignalType.SETPOINT, POWER_REAL_KW
        elif isinstance(control, PriceSignal):
            name, kind, value = SignalName.ELECTRICITY_PRICE, SignalType.PRICE, control.price_per_kwh
            item = ItemBase("oadr:currencyPerKWh", "currencyPerKWh", control.currency, "none")
        else:
            raise LimitViolation(der.id, f"OpenADR 2.0b has no signal for {control.kind}")
        event = build_event(
            command_id,
            self.market_context,
            setpoint.start,
            setpoint.end,
            setpoint.start,
            EventSignal(name, kind, "0", (Interval(setpoint.end - setpoint.start, value),), item=item),
            target_for(der.address),
            self.priority,
        )
        return event, losses


def build_event(
    event_id: str,
    market_context: str,
    start: datetime,
    end: datetime,
    created: datetime,
    signal: EventSignal,
    target: Target,
    priority: int,
) -> Event:
    return Event(
        event_id=event_id,
        modification_number=0,
        market_context=market_context,
        created=created,
        status=EventStatus.FAR,
        start=start,
        duration=end - start,
        signals=(signal,),
        target=target,
        priority=priority,
        response_required=ResponseRequired.ALWAYS,
    )
