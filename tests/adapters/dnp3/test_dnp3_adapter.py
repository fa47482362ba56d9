"""The DNP3 adapter end to end: bridge translation, bus events, plant response."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from derms.adapters.base import AdapterContext
from derms.adapters.dnp3 import Dnp3Settings, create_adapter
from derms.bridge.base import Bridge
from derms.bridge.dnp3 import Dnp3Translator
from derms.bus import MemoryBus
from derms.core.clock import ManualClock, ScaledClock
from derms.core.controls import ActivePowerLimit, ChargeDischarge, CurvePoint, VoltVarCurve
from derms.core.der import Capabilities, Der, DerKind
from derms.core.dispatch import Setpoint
from derms.core.errors import LimitViolation
from derms.core.events import COMMAND_STATE, decode_telemetry
from derms.sim.protocols.dnp3 import SimulatedPlant

pytestmark = pytest.mark.timeout(60)
T0 = datetime(2026, 7, 1, 12, tzinfo=UTC)


def plant_der(port: int) -> Der:
    caps = Capabilities(w_max=5e6, w_max_consume=2e6, wh_max=8e6, var_max_inject=1e6, var_max_absorb=1e6)
    return Der("plant-1", "site-1", DerKind.UTILITY_BATTERY, caps, "dnp3", f"127.0.0.1:{port}/10", "t1")


async def wait_for(predicate: Any, seconds: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    for _ in range(int(seconds / 0.02) + 1):
        if predicate():
            return
        if loop.time() > deadline:
            break
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


async def test_adapter_polls_telemetry_and_applies_bridged_limit(plant: SimulatedPlant) -> None:
    clock = ScaledClock(T0, speed=600.0)  # ten simulated minutes per wall second
    bus = MemoryBus(clock)
    telemetry: list[Any] = []
    states: list[dict[str, str]] = []

    async def on_telemetry(msg: Any) -> None:
        telemetry.extend(decode_telemetry(msg.data))

    async def on_state(msg: Any) -> None:
        states.append(msg.data)

    await bus.subscribe("telemetry.dnp3", on_telemetry)
    await bus.subscribe(COMMAND_STATE, on_state)
    adapter = create_adapter(
        AdapterContext(bus, clock, "dnp3"), Dnp3Settings(event_poll_interval_s=0.2, reconnect_delay_s=0.1)
    )
    der = plant_der(plant.port)
    await adapter.register_device(der)
    await adapter.start()
    try:
        await wait_for(lambda: telemetry)
        first = telemetry[0]
        assert first.p_w == pytest.approx(plant.model.p_w)
        assert first.soc == pytest.approx(0.5)
        assert first.f_hz == pytest.approx(60.0)

        bridge = Bridge([Dnp3Translator()])
        now = clock.now()
        setpoint = Setpoint("plant-1", ActivePowerLimit(pct=33.33), now, now + timedelta(hours=2))
        command = bridge.translate(der, setpoint, "cmd-1")
        (loss,) = command.losses
        assert (loss.field, loss.requested, loss.delivered) == ("DWMX.WLimPct", 33.33, pytest.approx(33.3))
        await adapter.send(command)
        await wait_for(lambda: any(s["state"] == "active" for s in states))
        assert [s["state"] for s in states] == ["sent", "acknowledged", "active"]
        await wait_for(lambda: telemetry[-1].p_w == pytest.approx(0.333 * 5e6))

        now = clock.now()  # a later limit on the same mode supersedes the first
        second = Setpoint("plant-1", ActivePowerLimit(pct=50), now, now + timedelta(minutes=20))
        await adapter.send(bridge.translate(der, second, "cmd-2"))
        await wait_for(lambda: ("cmd-1", "superseded") in [(s["command_id"], s["state"]) for s in states])
        await wait_for(lambda: ("cmd-2", "completed") in [(s["command_id"], s["state"]) for s in states])
        assert not any(s["command_id"] == "cmd-1" and s["state"] == "completed" for s in states)
        await wait_for(lambda: telemetry[-1].p_w == pytest.approx(3e6))  # the limit is lifted at the end
    finally:
        await adapter.stop()
        await bus.drain()


def test_translator_scales_watts_and_refuses_what_mesa_cannot_carry() -> None:
    der = plant_der(20000)
    translator = Dnp3Translator()
    setpoint = Setpoint("plant-1", ChargeDischarge(w=-1234.6), T0, T0 + timedelta(minutes=5))
    command = translator.translate(der, setpoint, "c")
    (analog,) = command.payload.analogs
    assert analog.value == -1235  # DWGC.GnWSpt: 1 W per count, rounded half away from zero
    assert command.losses[0].error == pytest.approx(-0.4)
    assert [c.index for c in command.payload.crobs] == [18]  # DWGC.Mod
    curve = VoltVarCurve(points=(CurvePoint(0.9, 0.4), CurvePoint(1.1, -0.4)))
    with pytest.raises(LimitViolation, match="cannot carry volt_var"):
        translator.translate(der, Setpoint("plant-1", curve, T0, T0 + timedelta(minutes=5)), "c2")


async def test_adapter_reports_offline_and_failed_commands_when_plant_goes_away(
    plant: SimulatedPlant,
) -> None:
    clock = ManualClock(T0)
    bus = MemoryBus(clock)
    statuses: list[dict[str, Any]] = []
    states: list[dict[str, str]] = []

    async def on_status(msg: Any) -> None:
        statuses.append(msg.data)

    async def on_state(msg: Any) -> None:
        states.append(msg.data)

    await bus.subscribe("der.status.dnp3", on_status)
    await bus.subscribe(COMMAND_STATE, on_state)
    adapter = create_adapter(
        AdapterContext(bus, clock, "dnp3"), Dnp3Settings(event_poll_interval_s=0.1, reconnect_delay_s=0.1)
    )
    der = plant_der(plant.port)
    await adapter.register_device(der)
    await adapter.start()
    try:
        await wait_for(lambda: any(s["online"] for s in statuses))
        await plant.stop()
        await wait_for(lambda: any(not s["online"] for s in statuses))
        setpoint = Setpoint("plant-1", ActivePowerLimit(pct=50), T0, T0 + timedelta(hours=1))
        await adapter.send(Dnp3Translator().translate(der, setpoint, "cmd-2"))
        await wait_for(lambda: states)
        assert states[-1]["state"] == "failed"
    finally:
        await adapter.stop()
        await bus.drain()
