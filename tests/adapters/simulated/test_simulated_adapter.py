"""The simulated adapter against the adapter contract, over a real in-process bus."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from derms.adapters.base import AdapterContext, NativeCommand
from derms.adapters.simulated import SimulatedAdapter, SimulatedSettings, create_adapter
from derms.bridge.base import Bridge
from derms.bridge.simulated import SimulatedTranslator
from derms.bus import MemoryBus
from derms.bus.base import Message
from derms.core.clock import Clock, ManualClock, ScaledClock
from derms.core.controls import ActivePowerLimit, ChargeDischarge, Control, LoadShed
from derms.core.der import Der, DerKind
from derms.core.dispatch import Reason, Setpoint
from derms.core.errors import LimitViolation, NotFound, ValidationFailed
from derms.core.events import COMMAND_STATE, DER_STATUS, decode_telemetry, telemetry_subject
from derms.core.site import Site
from derms.sim.fleet import generate_fleet

START = datetime(2026, 7, 15, 17, 0, tzinfo=UTC)  # local noon at the weather station
BUSES = [str(b) for b in range(6)]


@dataclass
class Recorder:
    telemetry: list[list[Any]] = field(default_factory=list)
    status: list[dict[str, Any]] = field(default_factory=list)
    commands: list[dict[str, Any]] = field(default_factory=list)

    async def on_telemetry(self, message: Message) -> None:
        self.telemetry.append(decode_telemetry(message.data))

    async def on_status(self, message: Message) -> None:
        self.status.append(message.data)

    async def on_command(self, message: Message) -> None:
        self.commands.append(message.data)

    def states(self, command_id: str) -> list[str]:
        return [c["state"] for c in self.commands if c["command_id"] == command_id]


async def eventually(condition: Callable[[], bool]) -> None:
    """Wait (at most 5 s) until the bus has delivered what ``condition`` looks for."""
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the bus did not deliver the expected events within 5 s")


@pytest.fixture(scope="module")
def parts() -> tuple[list[Der], list[Site]]:
    ders, sites, _ = generate_fleet(60, BUSES, seed=9, tenant_ids=["utility"], feeder_ids=["f1"] * len(BUSES))
    return ders, sites


@pytest.fixture
async def bus() -> AsyncIterator[tuple[MemoryBus, Recorder]]:
    bus = MemoryBus()
    await bus.start()
    recorder = Recorder()
    await bus.subscribe(telemetry_subject("sim"), recorder.on_telemetry)
    await bus.subscribe(f"{DER_STATUS}.sim", recorder.on_status)
    await bus.subscribe(COMMAND_STATE, recorder.on_command)
    yield bus, recorder
    await bus.close()


async def driven(
    bus: MemoryBus, clock: Clock, parts: tuple[list[Der], list[Site]], **settings: Any
) -> SimulatedAdapter:
    """A started adapter whose periodic loop is stopped, so the test drives ``tick``."""
    ders, sites = parts
    adapter = create_adapter(
        AdapterContext(bus, clock, "sim"), SimulatedSettings(**settings), ders=ders, sites=sites
    )
    await adapter.start()
    await adapter.stop()
    return adapter


def first(ders: list[Der], kind: DerKind) -> Der:
    return next(d for d in ders if d.kind is kind)


def command(
    der: Der, control: Control, start: datetime, minutes: float = 15, cid: str = "c1"
) -> NativeCommand:
    setpoint = Setpoint(der.id, control, start, start + timedelta(minutes=minutes), Reason("objective-1"))
    return Bridge([SimulatedTranslator()]).translate(der, setpoint, cid)


async def test_loop_publishes_one_batch_per_period_and_status(
    bus: tuple[MemoryBus, Recorder], parts: tuple[list[Der], list[Site]]
) -> None:
    memory, rec = bus
    clock = ScaledClock(START, speed=3600.0)  # a 60 s period every 17 ms of wall time
    adapter = SimulatedAdapter(AdapterContext(memory, clock, "sim"), SimulatedSettings(period_s=60.0))
    ders, _ = parts
    for der in ders:
        await adapter.register_device(der)
    await adapter.start()
    await eventually(lambda: len(rec.telemetry) >= 3)
    await adapter.stop()
    await asyncio.sleep(0.1)
    batches = len(rec.telemetry)
    await asyncio.sleep(0.1)
    assert len(rec.telemetry) == batches  # stopped: nothing more
    assert all(len(batch) == len(ders) for batch in rec.telemetry)
    assert {s.der_id for s in rec.telemetry[-1]} == {d.id for d in ders}
    times = [batch[0].ts for batch in rec.telemetry]
    assert times == sorted(times) and len(set(times)) == len(times)
    assert sum(s.p_w or 0.0 for s in rec.telemetry[-1] if s.der_id == first(ders, DerKind.PV_INVERTER).id) > 0
    assert {s["der_id"] for s in rec.status if s["online"]} == {d.id for d in ders}


async def test_command_lifecycle_to_completion(
    bus: tuple[MemoryBus, Recorder], parts: tuple[list[Der], list[Site]]
) -> None:
    memory, rec = bus
    clock = ManualClock(START)
    adapter = await driven(memory, clock, parts)
    battery = first(parts[0], DerKind.HOME_BATTERY)
    await adapter.send(command(battery, ChargeDischarge(w=1_500.0), START))
    await eventually(lambda: rec.states("c1") == ["sent", "acknowledged", "active"])
    for _ in range(10):
        clock.advance(60.0)
        await adapter.tick()
    await eventually(lambda: len(rec.telemetry) == 10)
    sample = next(s for s in rec.telemetry[-1] if s.der_id == battery.id)
    assert sample.p_w == pytest.approx(1_500.0)
    for _ in range(6):
        clock.advance(60.0)
        await adapter.tick()
    await eventually(lambda: rec.states("c1")[-1:] == ["completed"])
    assert rec.states("c1") == ["sent", "acknowledged", "active", "completed"]
    # after the window the battery is back on its own schedule (charging at half rating at noon)
    assert adapter.fleet.power()[adapter.fleet.row(battery.id)] == pytest.approx(-2_500.0)


async def test_future_command_waits_for_its_start(
    bus: tuple[MemoryBus, Recorder], parts: tuple[list[Der], list[Site]]
) -> None:
    memory, rec = bus
    clock = ManualClock(START)
    adapter = await driven(memory, clock, parts)
    pv = first(parts[0], DerKind.PV_INVERTER)
    await adapter.send(command(pv, ActivePowerLimit(pct=20.0), START + timedelta(minutes=5)))
    await eventually(lambda: rec.states("c1") == ["sent", "acknowledged"])
    clock.advance(240.0)
    await adapter.tick()
    await asyncio.sleep(0.05)
    assert rec.states("c1") == ["sent", "acknowledged"]
    clock.advance(120.0)
    await adapter.tick()
    await eventually(lambda: rec.states("c1") == ["sent", "acknowledged", "active"])
    clock.advance(60.0)
    await adapter.tick()
    assert adapter.fleet.power()[adapter.fleet.row(pv.id)] <= 0.2 * pv.capabilities.w_max + 1e-6


async def test_later_command_supersedes_earlier(
    bus: tuple[MemoryBus, Recorder], parts: tuple[list[Der], list[Site]]
) -> None:
    memory, rec = bus
    adapter = await driven(memory, ManualClock(START), parts)
    battery = first(parts[0], DerKind.HOME_BATTERY)
    await adapter.send(command(battery, ChargeDischarge(w=1_000.0), START, cid="a"))
    await adapter.send(command(battery, ActivePowerLimit(pct=50.0), START, cid="limit"))
    await adapter.send(command(battery, ChargeDischarge(w=2_000.0), START, cid="b"))
    await eventually(lambda: "superseded" in rec.states("a"))
    assert rec.states("a") == ["sent", "acknowledged", "active", "superseded"]
    assert rec.states("limit") == ["sent", "acknowledged", "active"]  # another slot: untouched
    assert rec.states("b") == ["sent", "acknowledged", "active"]


async def test_failures_are_reported_with_reason(
    bus: tuple[MemoryBus, Recorder], parts: tuple[list[Der], list[Site]]
) -> None:
    memory, rec = bus
    clock = ManualClock(START)
    adapter = await driven(memory, clock, parts)
    pv = first(parts[0], DerKind.PV_INVERTER)
    unsupported = NativeCommand("u", pv.id, "sim", LoadShed(level=1), START, START + timedelta(minutes=5))
    await adapter.send(unsupported)
    garbage = NativeCommand("g", pv.id, "sim", {"kind": "load_shed"}, START, START + timedelta(minutes=5))
    await adapter.send(garbage)
    late = NativeCommand("l", pv.id, "sim", ActivePowerLimit(pct=10.0), START - timedelta(hours=1), START)
    await adapter.send(late)
    adapter.fleet.set_online(np.array(adapter.fleet.der_ids) == pv.id, False, "test")
    await adapter.send(command(pv, ActivePowerLimit(pct=10.0), START, cid="off"))
    with pytest.raises(NotFound):
        await adapter.send(NativeCommand("n", "nobody", "sim", ActivePowerLimit(pct=1.0), START, START))
    await eventually(lambda: len(rec.commands) >= 8)
    failed = {c["command_id"]: c["detail"] for c in rec.commands if c["state"] == "failed"}
    assert "does not support load_shed" in failed["u"]
    assert "is not a derms control" in failed["g"]
    assert "window ended" in failed["l"]
    assert failed["off"] == "device is offline"
    assert all(rec.states(cid)[0] == "sent" for cid in "ugl")


async def test_device_drop_publishes_offline_and_fails_its_commands(
    bus: tuple[MemoryBus, Recorder], parts: tuple[list[Der], list[Site]]
) -> None:
    memory, rec = bus
    clock = ManualClock(START)
    adapter = await driven(memory, clock, parts)
    battery = first(parts[0], DerKind.HOME_BATTERY)
    await adapter.send(command(battery, ChargeDischarge(w=1_000.0), START, minutes=60))
    adapter.fleet.set_online(np.array(adapter.fleet.der_ids) == battery.id, False, "lost comms")
    clock.advance(60.0)
    await adapter.tick()
    await eventually(lambda: rec.states("c1")[-1:] == ["failed"])
    assert any(
        s["der_id"] == battery.id and not s["online"] and s["detail"] == "lost comms" for s in rec.status
    )
    await eventually(lambda: len(rec.telemetry) == 1)
    assert battery.id not in {s.der_id for s in rec.telemetry[0]}
    assert len(rec.telemetry[0]) == len(parts[0]) - 1


async def test_scenario_from_settings_drops_devices(
    bus: tuple[MemoryBus, Recorder], parts: tuple[list[Der], list[Site]]
) -> None:
    memory, rec = bus
    more, sites, _ = generate_fleet(250, BUSES, seed=1, tenant_ids=["utility"], prefix="big")
    scenario_start = datetime(2026, 7, 15, 5, 0, tzinfo=UTC)
    clock = ManualClock(scenario_start + timedelta(hours=14, minutes=58))
    adapter = await driven(memory, clock, (more, sites), scenario="heat_event_drop")
    assert adapter.runner is not None
    clock.advance(180.0)
    await adapter.tick()
    await eventually(lambda: len(rec.telemetry) == 1)
    assert len(rec.telemetry[0]) == 50
    offline = [s for s in rec.status if not s["online"]]
    assert len(offline) == 200 and {s["detail"] for s in offline} == {"mass device drop"}


async def test_register_after_start_and_wrong_protocol(
    bus: tuple[MemoryBus, Recorder], parts: tuple[list[Der], list[Site]]
) -> None:
    memory, rec = bus
    ders, sites = parts
    clock = ManualClock(START)
    adapter = await driven(memory, clock, (ders[:10], sites))
    await adapter.register_device(ders[10])
    await adapter.register_device(ders[10])  # idempotent
    assert len(adapter.fleet) == 11
    clock.advance(60.0)
    await adapter.tick()
    await eventually(lambda: len(rec.telemetry) == 1)
    assert ders[10].id in {s.der_id for s in rec.telemetry[0]}
    other = Der("x", "s", DerKind.PV_INVERTER, ders[0].capabilities, "sunspec", "127.0.0.1:502/1", "utility")
    with pytest.raises(ValidationFailed, match="not 'sim'"):
        await adapter.register_device(other)


def test_translator_is_identity_without_losses(parts: tuple[list[Der], list[Site]]) -> None:
    battery = first(parts[0], DerKind.HOME_BATTERY)
    control = ChargeDischarge(w=-1234.5678)
    native = command(battery, control, START, cid="t")
    assert native.payload is control
    assert native.protocol == "sim" and native.losses == () and native.der_id == battery.id
    assert native.start == START and native.end == START + timedelta(minutes=15)
    translator = SimulatedTranslator()
    pv = first(parts[0], DerKind.PV_INVERTER)
    setpoint = Setpoint(pv.id, LoadShed(level=2), START, START + timedelta(minutes=5))
    with pytest.raises(LimitViolation, match="does not support load_shed"):
        translator.translate(pv, setpoint, "x")
    with pytest.raises(LimitViolation, match="exceeds w_max"):
        command(battery, ChargeDischarge(w=1e6), START)
