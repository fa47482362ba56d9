import asyncio

import numpy as np
from sqlalchemy import Engine

from derms.adapters.base import AdapterContext
from derms.bus import MemoryBus
from derms.core import Capabilities, Der, DerKind, Site, Telemetry
from derms.core.clock import ManualClock
from derms.fleet import FleetState, rollup
from derms.fleet.tracker import FleetTracker
from derms.store.telemetry import TelemetryStore
from tests.conftest import T0


async def test_tracker_updates_state_and_persists(db_engine: Engine) -> None:
    clock = ManualClock(T0)
    state = FleetState()
    caps = Capabilities(w_max=5000, w_max_consume=5000, wh_max=10000)
    state.register(
        (
            i,
            Der(f"d{i}", "s", DerKind.HOME_BATTERY, caps, "sim", str(i), "t"),
            Site("s", "c", "t", feeder_id=f"f{i % 2}"),
        )
        for i in range(10)
    )
    store = TelemetryStore(db_engine)
    async with MemoryBus(clock) as bus:
        tracker = FleetTracker(bus, state, clock, store, flush_rows=15, flush_s=60)
        await tracker.start()
        context = AdapterContext(bus, clock, "sim")
        await context.publish_telemetry([Telemetry(f"d{i}", T0, p_w=100.0 * i, soc=0.5) for i in range(10)])
        await context.publish_telemetry([Telemetry("ghost", T0, p_w=1.0)])
        await context.publish_status("d3", online=False, detail="lost")
        await bus.publish("telemetry.sim", {"der_id": ["d1"], "ts_ms": "garbage"})  # malformed: dropped
        await bus.drain()
        await tracker.stop()
    assert tracker.received == 10 and tracker.unknown == {"ghost"}
    assert store.count() == 10 and tracker.written == 10
    assert np.allclose(store.latest().p_w, [100.0 * i for i in range(10)])
    totals = rollup(state).fleet()
    assert totals["online"] == 9 and totals["p_w"] == sum(100.0 * i for i in range(10) if i != 3)
    await asyncio.sleep(0)
