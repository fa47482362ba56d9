"""The adapter contract every protocol package implements.

An adapter connects derms to devices that speak one standard. It

* is started and stopped with the platform (:meth:`Adapter.start`, :meth:`Adapter.stop`);
* learns of registered devices (:meth:`Adapter.register_device`) and may discover new ones,
  which it reports through :meth:`AdapterContext.device_discovered`;
* publishes telemetry, online/offline status and kind-specific device state (EV needs, indoor
  temperature, tank energy) through its :class:`AdapterContext`, which puts them on the bus
  (``telemetry.<protocol>``, ``der.status.<protocol>``, ``der.state.<protocol>``);
* accepts a :class:`NativeCommand` (the bridge's translation of a setpoint into the
  standard's own vocabulary) in :meth:`Adapter.send` and reports each acknowledgement or
  failure through :meth:`AdapterContext.report_command` (``command.state`` on the bus).

Adapters never touch the database or the optimizer directly.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from derms.bus import Bus
from derms.core.clock import Clock
from derms.core.controls import ControlKind
from derms.core.der import Der
from derms.core.device_state import DEVICE_STATE, DeviceState, encode_device_states, encode_state_columns
from derms.core.dispatch import CommandState
from derms.core.events import (
    COMMAND_STATE,
    DER_STATUS,
    encode_command_state,
    encode_telemetry,
    telemetry_subject,
)
from derms.core.telemetry import Telemetry


@dataclass(frozen=True, slots=True)
class PrecisionLoss:
    """A value the native command could not carry exactly (quantisation, scale factors)."""

    field: str
    requested: float
    delivered: float
    unit: str

    @property
    def error(self) -> float:
        return self.delivered - self.requested


@dataclass(frozen=True, slots=True)
class NativeCommand:
    """A setpoint translated into one protocol's vocabulary.

    ``payload`` is the protocol's own typed object (a 2030.5 DERControl, an OCPP
    ChargingProfile, SunSpec register writes, ...). ``losses`` lists any precision lost in
    the translation.
    """

    command_id: str
    der_id: str
    protocol: str
    payload: Any
    start: datetime
    end: datetime
    losses: tuple[PrecisionLoss, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(slots=True)
class AdapterContext:
    """What the platform hands an adapter: the bus, the clock, and event helpers."""

    bus: Bus
    clock: Clock
    protocol: str
    discovered: list[dict[str, Any]] = field(default_factory=list)

    async def publish_telemetry(self, samples: Sequence[Telemetry]) -> None:
        if samples:
            await self.bus.publish(telemetry_subject(self.protocol), encode_telemetry(samples))

    async def publish_device_state(self, states: Sequence[DeviceState]) -> None:
        if states:
            await self.bus.publish(f"{DEVICE_STATE}.{self.protocol}", encode_device_states(states))

    async def publish_state_columns(
        self, der_ids: Sequence[str], ts_ms: int, columns: Mapping[str, NDArray[np.float64]]
    ) -> None:
        """Device state of many devices at once, as arrays (NaN: not reported)."""
        if der_ids:
            await self.bus.publish(
                f"{DEVICE_STATE}.{self.protocol}", encode_state_columns(der_ids, ts_ms, columns)
            )

    async def publish_status(self, der_id: str, online: bool, detail: str = "") -> None:
        await self.bus.publish(
            f"{DER_STATUS}.{self.protocol}",
            {"der_id": der_id, "online": online, "detail": detail, "ts": self.clock.now().isoformat()},
        )

    async def report_command(
        self, command_id: str, der_id: str, state: CommandState, detail: str = ""
    ) -> None:
        await self.bus.publish(
            COMMAND_STATE, encode_command_state(command_id, der_id, state, self.clock.now(), detail)
        )

    async def device_discovered(self, address: str, info: dict[str, Any]) -> None:
        """Report a device that connected but is not registered (e.g. a new charge point)."""
        self.discovered.append({"address": address, **info})
        await self.bus.publish(
            f"{DER_STATUS}.{self.protocol}",
            {"der_id": None, "address": address, "online": True, "detail": "discovered", **info},
        )


class Adapter(abc.ABC):
    """Base class of protocol adapters. ``native_controls`` lists the core control kinds the
    protocol can carry without approximation."""

    protocol: ClassVar[str]
    native_controls: ClassVar[frozenset[ControlKind]]

    def __init__(self, context: AdapterContext) -> None:
        self.context = context

    @abc.abstractmethod
    async def start(self) -> None: ...

    @abc.abstractmethod
    async def stop(self) -> None: ...

    @abc.abstractmethod
    async def register_device(self, der: Der) -> None:
        """Make a registered DER known to the adapter (its ``address`` is protocol-specific)."""

    @abc.abstractmethod
    async def send(self, command: NativeCommand) -> None:
        """Deliver a native command; report SENT/ACKNOWLEDGED/FAILED via the context.

        Must not raise for device-side failures (those are reported as ``FAILED``); raises
        ``derms.core.errors.NotFound`` if the DER is not registered with this adapter.
        """
