"""Native cancel of a platform command (``tracker.Cancels``): the device sees its DERControl's
EventStatus become Cancelled (IEEE 2030.5-2018 12.1.3.4) and returns to its default; the
command id → DERControl mapping survives a restart."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine

from derms.adapters.base import AdapterContext
from derms.adapters.ieee2030_5 import Ieee2030_5Settings, create_adapter
from derms.adapters.ieee2030_5.events import EventStatusCode
from derms.adapters.ieee2030_5.schema import ActivePower, DERControlBase
from derms.bridge.ieee2030_5 import Ieee2030_5Translator
from derms.bus import MemoryBus
from derms.bus.base import Message
from derms.core.clock import ManualClock
from derms.core.controls import ChargeDischarge
from derms.core.der import Capabilities, Der, DerKind
from derms.core.dispatch import Setpoint
from derms.core.errors import NotFound
from derms.orchestration.tracker import Cancels
from derms.sim.device import SimulatedDevice
from derms.sim.protocols.ieee2030_5 import Sep2Device, Sep2DeviceConfig
from tests.adapters.ieee2030_5.sep2_harness import T0, Harness

BATTERY = Capabilities(w_max=5000, w_max_consume=5000, wh_max=13500, va_max=5000)


def _battery(lfdi: str) -> Der:
    return Der("bat-1", "site-1", DerKind.HOME_BATTERY, BATTERY, "ieee2030_5", lfdi, "default")


async def test_cancelled_command_is_cancelled_on_the_device_over_mtls(harness: Harness) -> None:
    adapter = harness.adapter
    assert isinstance(adapter, Cancels)
    lfdi = harness.lfdi("sim-1")
    der = _battery(lfdi)
    await adapter.register_device(der)
    edev = adapter.repo.end_device_by_der("bat-1")
    program_id = adapter._dispatch_programs[edev.id]
    await adapter.manager.set_default(
        program_id, DERControlBase(opModTargetW=ActivePower(value=-1000, multiplier=0))
    )
    now = harness.clock.now()
    setpoint = Setpoint("bat-1", ChargeDischarge(3000.0), now, now + timedelta(minutes=30))
    await adapter.send(Ieee2030_5Translator().translate(der, setpoint, "cmd-cancel"))

    cert, key, _ = harness.certs.device("sim-1")
    device = Sep2Device(
        Sep2DeviceConfig(adapter.url, cert, key, harness.certs.ca, lfdi),
        SimulatedDevice(der, harness.clock, seed=1),
        harness.clock,
    )
    try:
        await device.start()
        harness.clock.advance(60)
        await device.poll()
        assert device.device.p_w == pytest.approx(3000.0, rel=0.05)
        (mrid,) = device._events
        assert device._events[mrid].control.EventStatus_.currentStatus == EventStatusCode.ACTIVE

        await adapter.cancel("cmd-cancel")
        harness.clock.advance(60)
        await device.poll()
        assert device._events[mrid].control.EventStatus_.currentStatus == EventStatusCode.CANCELLED
        assert device.applied["opModTargetW"] == "default"
        harness.clock.advance(60)
        await device.poll()
        assert device.device.p_w == pytest.approx(-1000.0, rel=0.05)
    finally:
        await device.close()
    states = [m["state"] for m in await harness.published("command.state") if m["command_id"] == "cmd-cancel"]
    # CANCELLED by the server when cancelled, then by the device's Response (status 6, event
    # cancelled), which the tracker ignores as a repeat.
    assert states == ["sent", "acknowledged", "active", "cancelled", "cancelled"]
    with pytest.raises(NotFound):  # cancelled already: nothing left to withdraw
        await adapter.cancel("cmd-cancel")
    with pytest.raises(NotFound):
        await adapter.cancel("never-sent")


async def test_ended_command_is_not_found(harness: Harness) -> None:
    adapter = harness.adapter
    der = _battery(harness.lfdi("sim-2"))
    await adapter.register_device(der)
    now = harness.clock.now()
    setpoint = Setpoint("bat-1", ChargeDischarge(1000.0), now, now + timedelta(minutes=5))
    await adapter.send(Ieee2030_5Translator().translate(der, setpoint, "cmd-ended"))
    harness.clock.advance(301)
    with pytest.raises(NotFound):
        await adapter.cancel("cmd-ended")
    (control,) = adapter.repo.controls.values()
    assert control.cancelled_time is None


async def test_cancel_after_a_restart_finds_the_persisted_control(db_engine: Engine) -> None:
    clock = ManualClock(T0)
    reports: list[Message] = []

    def adapter_on(bus: MemoryBus):  # type: ignore[no-untyped-def]
        return create_adapter(
            AdapterContext(bus=bus, clock=clock, protocol="ieee2030_5"), Ieee2030_5Settings(port=0), db_engine
        )

    der = _battery("3E4F45AB31EDFE5B67E343E5E4562E31984E23E5")
    first = adapter_on(MemoryBus(clock))
    await first.register_device(der)
    setpoint = Setpoint("bat-1", ChargeDischarge(2000.0), T0, T0 + timedelta(minutes=15))
    await first.send(Ieee2030_5Translator().translate(der, setpoint, "cmd-durable"))

    bus = MemoryBus(clock)

    async def record(message: Message) -> None:
        reports.append(message)

    await bus.subscribe("command.state", record)
    second = adapter_on(bus)
    await second.cancel("cmd-durable")
    await bus.drain()
    assert [(m.data["command_id"], m.data["state"]) for m in reports] == [("cmd-durable", "cancelled")]
    edev = second.repo.end_device_by_der("bat-1")
    program = second.repo.program(second._dispatch_programs[edev.id])
    (state,) = [s.status for _, s in second.manager.control_states(edev, program)]
    assert state == EventStatusCode.CANCELLED
    await bus.close()
