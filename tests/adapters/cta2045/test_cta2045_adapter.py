"""The CTA-2045 adapter end to end: bridge translation, command states, telemetry."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from derms.adapters.base import AdapterContext
from derms.adapters.cta2045 import Cta2045Settings, create_adapter
from derms.bridge.base import Bridge
from derms.bridge.cta2045 import Cta2045Translator
from derms.bus import MemoryBus
from derms.core.clock import ManualClock, ScaledClock
from derms.core.controls import LoadLimit, LoadShed, LoadUp
from derms.core.der import Capabilities, Der, DerKind
from derms.core.dispatch import Setpoint
from derms.core.events import COMMAND_STATE, decode_telemetry
from derms.core.telemetry import OperationalStatus
from derms.sim.protocols.cta2045 import WaterHeaterSgd

pytestmark = pytest.mark.timeout(60)
T0 = datetime(2026, 1, 15, 17, tzinfo=UTC)


async def wait_for(predicate: Any, seconds: float = 10.0) -> None:
    for _ in range(int(seconds / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


async def test_bridged_commands_reach_the_water_heater(sgd: WaterHeaterSgd) -> None:
    clock = ScaledClock(T0, speed=60.0)  # a simulated minute per wall second
    bus = MemoryBus(clock)
    telemetry: list[Any] = []
    states: list[dict[str, str]] = []

    async def on_telemetry(msg: Any) -> None:
        telemetry.extend(decode_telemetry(msg.data))

    async def on_state(msg: Any) -> None:
        states.append(msg.data)

    await bus.subscribe("telemetry.cta2045", on_telemetry)
    await bus.subscribe(COMMAND_STATE, on_state)
    adapter = create_adapter(AdapterContext(bus, clock, "cta2045"), Cta2045Settings(poll_interval_s=0.2))
    caps = Capabilities(w_max_consume=4500.0, wh_max=0.0)
    der = Der("wh-1", "home-1", DerKind.WATER_HEATER, caps, "cta2045", f"127.0.0.1:{sgd.port}", "t1")
    await adapter.register_device(der)
    await adapter.start()
    bridge = Bridge([Cta2045Translator()])
    try:
        await wait_for(lambda: telemetry)
        assert telemetry[0].p_w == 0.0 and telemetry[0].status is OperationalStatus.STANDBY
        assert 0 < telemetry[0].soc < 1

        now = clock.now()
        up = bridge.translate(der, Setpoint("wh-1", LoadUp(1), now, now + timedelta(hours=1)), "up")
        assert [(x.field, x.delivered) for x in up.losses] == [("duration_s", 3528.0)]
        await adapter.send(up)
        await wait_for(lambda: any(s["command_id"] == "up" and s["state"] == "active" for s in states))
        await wait_for(lambda: telemetry[-1].p_w == -4500.0)

        now = clock.now()
        shed = bridge.translate(der, Setpoint("wh-1", LoadShed(3), now, now + timedelta(minutes=2)), "shed")
        assert shed.payload.duration_s == 98.0  # 2 min quantised to 2·7² s; the SGD ends it itself
        await adapter.send(shed)
        await wait_for(lambda: any(s["command_id"] == "shed" and s["state"] == "active" for s in states))
        assert ("up", "superseded") in [(s["command_id"], s["state"]) for s in states]
        await wait_for(lambda: any(s["command_id"] == "shed" and s["state"] == "completed" for s in states))
        assert [s["state"] for s in states if s["command_id"] == "shed"] == [
            "sent",
            "acknowledged",
            "active",
            "completed",
        ]

        level = bridge.translate(
            der, Setpoint("wh-1", LoadLimit(w=2000.0), T0, T0 + timedelta(hours=1)), "lvl"
        )
        await adapter.send(level)  # the simulated tank does not implement Power Level
        await wait_for(lambda: any(s["command_id"] == "lvl" and s["state"] == "failed" for s in states))
    finally:
        await adapter.stop()
        await bus.drain()


async def test_offline_device_fails_commands_and_reconnects(sgd: WaterHeaterSgd) -> None:
    clock = ManualClock(T0)
    bus = MemoryBus(clock)
    statuses: list[dict[str, Any]] = []
    states: list[dict[str, str]] = []

    async def on_status(msg: Any) -> None:
        statuses.append(msg.data)

    async def on_state(msg: Any) -> None:
        states.append(msg.data)

    await bus.subscribe("der.status.cta2045", on_status)
    await bus.subscribe(COMMAND_STATE, on_state)
    adapter = create_adapter(
        AdapterContext(bus, clock, "cta2045"), Cta2045Settings(poll_interval_s=0.1, reconnect_delay_s=1.0)
    )
    der = Der("wh-2", "home-2", DerKind.WATER_HEATER, Capabilities(w_max_consume=4500.0), "cta2045",
              f"127.0.0.1:{sgd.port}", "t1")  # fmt: skip
    await adapter.register_device(der)
    await adapter.start()
    try:
        await wait_for(lambda: any(s["online"] for s in statuses))
        for link in sgd.links:
            await link.close()  # the SGD drops the connection
        await wait_for(lambda: any(not s["online"] for s in statuses))
        shed = Cta2045Translator().translate(
            der, Setpoint("wh-2", LoadShed(2), T0, T0 + timedelta(hours=1)), "c"
        )
        await adapter.send(shed)  # within the reconnect delay: the link is down
        await wait_for(lambda: states)
        assert states[0]["state"] == "failed" and states[0]["detail"] == "not connected"
        await wait_for(lambda: sum(1 for s in statuses if s["online"]) >= 2)  # reconnected
    finally:
        await adapter.stop()
        await bus.drain()


async def test_an_event_longer_than_any_duration_is_ended_with_end_shed(sgd: WaterHeaterSgd) -> None:
    clock = ScaledClock(T0, speed=100_000.0)  # 50 simulated hours in under two seconds
    bus = MemoryBus(clock)
    states: list[tuple[str, str]] = []

    async def on_state(msg: Any) -> None:
        states.append((msg.data["command_id"], msg.data["state"]))

    await bus.subscribe(COMMAND_STATE, on_state)
    adapter = create_adapter(AdapterContext(bus, clock, "cta2045"), Cta2045Settings(poll_interval_s=0.2))
    der = Der("wh-3", "home-3", DerKind.WATER_HEATER, Capabilities(w_max_consume=4500.0), "cta2045",
              f"127.0.0.1:{sgd.port}", "t1")  # fmt: skip
    await adapter.register_device(der)
    await adapter.start()
    try:
        await wait_for(lambda: adapter.sessions["wh-3"].online)
        now = clock.now()
        shed = Cta2045Translator().translate(
            der, Setpoint("wh-3", LoadShed(1), now, now + timedelta(hours=50)), "x"
        )
        assert shed.payload.duration_s is None  # sent as "unknown": the SGD holds it
        await adapter.send(shed)
        assert sgd.heater.mode == "shed" and sgd.heater.remaining_s is None
        await wait_for(lambda: ("x", "completed") in states)
        assert sgd.heater.mode == "normal"  # ended by the End Shed the adapter sent
        assert any(getattr(m, "opcode1", None) == 0x02 for m in sgd.received)
    finally:
        await adapter.stop()
        await bus.drain()
