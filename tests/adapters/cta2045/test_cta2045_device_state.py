"""The CTA-2045 adapter publishes the tank's stored energy from the SGD's commodity read
(codes 6 Total and 7 Present Energy Storage) as device state, over a real TCP link."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from derms.adapters.base import AdapterContext
from derms.adapters.cta2045 import Cta2045Settings, create_adapter
from derms.bus import MemoryBus
from derms.core.clock import ManualClock
from derms.core.der import Capabilities, Der, DerKind
from derms.core.device_state import decode_device_states
from derms.fleet.state import FleetState
from derms.sim.physics.water_heater import CP_WATER
from derms.sim.protocols.cta2045 import WaterHeaterSgd

pytestmark = pytest.mark.timeout(60)
T0 = datetime(2026, 1, 15, 17, tzinfo=UTC)


async def test_tank_energy_reaches_the_fleet_state(sgd: WaterHeaterSgd) -> None:
    clock = ManualClock(T0)
    bus = MemoryBus(clock)
    reports: list[dict[str, Any]] = []

    async def on_state(msg: Any) -> None:
        reports.append(msg.data)

    await bus.subscribe("der.state.cta2045", on_state)
    adapter = create_adapter(AdapterContext(bus, clock, "cta2045"), Cta2045Settings(poll_interval_s=0.2))
    der = Der(
        "wh-1", "home-1", DerKind.WATER_HEATER, Capabilities(w_max_consume=4500.0), "cta2045",
        f"127.0.0.1:{sgd.port}", "t1",
    )  # fmt: skip
    await adapter.register_device(der)
    await adapter.start()
    try:
        for _ in range(500):
            if reports:
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("no device state within 10 s")
        tank = sgd.heater
        temperature = tank.temperature_c
    finally:
        await adapter.stop()
        await bus.close()
    wh_per_k = 190 * CP_WATER / 3600
    (report,) = reports[:1]
    assert report["der_id"] == ["wh-1"] and report["ts_ms"] == [T0.timestamp() * 1000]
    assert report["tank_max_wh"] == [round(wh_per_k * (65 - 40))]
    # The tank cools slowly (no draw, element off): within a kelvin of the reading.
    assert report["tank_wh"][0] == pytest.approx(wh_per_k * (temperature - 40), abs=wh_per_k)
    assert report["ev_energy_needed_wh"] == [None] and report["temp_c"] == [None]
    state = FleetState()
    state.register([(0, der, None)])
    cols, _ = decode_device_states(report, state.index)
    state.apply_device_state(cols)
    assert state.tank_wh[0] == report["tank_wh"][0] and state.tank_max_wh[0] == report["tank_max_wh"][0]
    assert state.fresh_state(T0.timestamp() * 1000, 60.0)[0]
