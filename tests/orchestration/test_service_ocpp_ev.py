"""The orchestration service with an EV behind the OCPP CSMS over a real websocket: the need
the vehicle announces (2.0.1 NotifyEVChargingNeeds) reaches the plan through the bus and the
fleet state, the plan's charging limit is accepted by the charge point, and an objective
asking for more than the vehicle can give up before its departure leaves a shortfall instead
of the vehicle short."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import Engine

from derms.adapters.ocpp import OcppAdapter, OcppSettings
from derms.bridge.ocpp import OcppTranslator
from derms.core.clock import ManualClock
from derms.core.der import Capabilities, Der, DerKind
from derms.core.dispatch import CommandState
from derms.core.objectives import Area, AreaLevel, Objective, ObjectiveKind
from derms.sim.protocols.ocpp import SimChargePoint
from derms.store import registry as reg
from derms.store.scope import TenantScope
from tests.orchestration.service_rig import START, Rig, start_rig

CHARGER = Capabilities(w_max_consume=11_000.0, va_max=11_000.0, phases=3, v_nom=230.0)
PASSWORD = "pw-ev"
DEPARTURE_S = 3600.0
NEED_WH = 10_000.0
"""More than the charger gives after the first 15 minutes (8.25 kWh): it must charge at least
(10,000 - 8,250) Wh / 0.25 h = 7 kW now."""
MUST_W = (NEED_WH - 11_000.0 * (DEPARTURE_S - 900.0) / 3600.0) / 0.25


class PacedClock:
    """The platform's manual time for the charge point, whose loop waits 50 ms of real time
    whatever it asks for (the manual clock's ``sleep`` would move the platform's time)."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock

    def now(self) -> datetime:
        return self.clock.now()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(0.05)


@dataclass
class EvRig:
    rig: Rig
    adapter: OcppAdapter
    point: SimChargePoint
    der: Der

    async def until(self, predicate: Callable[[], bool], what: str) -> None:
        async with asyncio.timeout(20):
            while not predicate():
                await asyncio.sleep(0.05)
                await self.rig.drain()
        assert predicate(), what


@pytest.fixture
async def ev(db_engine: Engine) -> AsyncIterator[EvRig]:
    rig = await start_rig(db_engine, n=60)
    runtime = rig.runtime
    site = next(d.site_id for d in rig.ders if d.tenant_id == "utility")
    der = Der("ocpp-ev-1", site, DerKind.EV_CHARGER, CHARGER, "ocpp", "CP-EV-1/1", "utility")
    with runtime.engine.begin() as conn:
        reg.create_ders(conn, [der], scope=TenantScope.utility(), at=START, actor="test")
    runtime.reload_fleet()
    adapter = OcppAdapter(
        runtime.context("ocpp"), OcppSettings(port=0, passwords={"CP-EV-1": PASSWORD}, response_timeout_s=5)
    )
    runtime.add_adapter(adapter)
    runtime.bridge.register(OcppTranslator())
    await adapter.start()
    await adapter.register_device(der)
    point = SimChargePoint(
        "CP-EV-1",
        f"ws://127.0.0.1:{adapter.csms.port}/ocpp",
        PacedClock(rig.clock),  # type: ignore[arg-type]
        version="2.0.1",
        password=PASSWORD,
        ev_max_w=CHARGER.w_max_consume,
        need_wh=NEED_WH,
        departure=rig.clock.now() + timedelta(seconds=DEPARTURE_S),
        # Energy is counted per meter interval of the charge point's clock; the platform's
        # time stands still between the test's steps, so (almost) none is delivered meanwhile.
        meter_interval_s=1e-6,
    )
    task = asyncio.create_task(point.run())
    ev_rig = EvRig(rig, adapter, point, der)
    state, row = runtime.fleet, runtime.fleet.index[der.id]
    try:
        await ev_rig.until(lambda: np.isfinite(state.ev_energy_needed_wh[row]), "the need reached the fleet")
        yield ev_rig
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await adapter.stop()
        await runtime.stop()


async def test_announced_need_is_planned_and_the_limit_accepted(ev: EvRig) -> None:
    service, state = ev.rig.service, ev.rig.runtime.fleet
    row = state.index[ev.der.id]
    assert state.ev_energy_needed_wh[row] == pytest.approx(NEED_WH, abs=1.0)  # nothing metered yet
    assert state.ev_departure_ms[row] == pytest.approx((START.timestamp() + DEPARTURE_S) * 1000, abs=60_000)
    objective = Objective(
        "ev-ocpp",
        ObjectiveKind.CAPACITY_TARGET,
        START,
        timedelta(hours=1),
        area=Area(AreaLevel.GROUP, (ev.der.id,)),
        target_w=CHARGER.w_max_consume,  # stop charging altogether: more than it may give
    )
    await service.submit(objective, actor="test")
    await service.step()
    out, orch = service.last_outcome, service.orchestrator
    assert out is not None and orch is not None
    (sp,) = out.plan.setpoints
    assert sp.der_id == ev.der.id and sp.control.kind == "charging_limit"
    assert sp.control.limit == pytest.approx(MUST_W, rel=1e-3)  # what it must, no less
    assert float(out.solution.shortfall_w["ev-ocpp"][0]) == pytest.approx(MUST_W, rel=1e-3)
    (cid,) = [c.command_id for (d, _), c in service._in_force.items() if d == ev.der.id]
    await ev.until(lambda: service.tracker.state(cid) == CommandState.ACKNOWLEDGED, "charge point accepted")
    assert ev.point.profiles_received == 1
    assert ev.point.power_w() == pytest.approx(MUST_W, abs=230.0 * 3)  # OCPP carries 0.1 A steps
