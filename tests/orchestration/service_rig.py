"""A running platform for the orchestration service tests: SQLite, MemoryBus, the simulated
adapter on a seeded fleet, and pandapower's CIGRE MV network (two feeders, quick to solve).

The clock is manual and the service's loop is off (``orchestration_tick_s=0``): tests step
the simulator (:meth:`Rig.settle`) and the service (``runtime.orchestration.step()``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from sqlalchemy import Engine

from derms.adapters.simulated import SimulatedAdapter, SimulatedSettings
from derms.api.auth import Role, create_user, issue_token
from derms.bridge.simulated import SimulatedTranslator
from derms.bus import MemoryBus
from derms.core.clock import ManualClock
from derms.core.der import Der
from derms.demo import attachment_buses
from derms.grid.model import NetworkModel
from derms.grid.network import load_network
from derms.orchestration.service import OrchestrationService
from derms.runtime import Runtime
from derms.settings import Settings
from derms.sim.generate import generate_fleet
from derms.store import registry as reg
from derms.store.scope import TenantScope

START = datetime(2026, 7, 15, 22, 0, tzinfo=UTC)  # 17:00 local at the simulator's TMY station
TENANTS = {"utility": "utility", "agg-a": "aggregator", "agg-b": "aggregator"}
USERS = {
    "operator": ("utility", Role.OPERATOR),
    "viewer": ("utility", Role.VIEWER),
    "a-op": ("agg-a", Role.OPERATOR),
    "b-op": ("agg-b", Role.OPERATOR),
}


@dataclass
class Rig:
    runtime: Runtime
    sim: SimulatedAdapter
    model: NetworkModel
    clock: ManualClock
    ders: list[Der]
    tokens: dict[str, str]

    @property
    def service(self) -> OrchestrationService:
        assert self.runtime.orchestration is not None
        return self.runtime.orchestration

    async def settle(self, seconds: float = 60.0) -> None:
        """Advance the clock, step the simulator and deliver every bus message."""
        self.clock.advance(seconds)
        await self.sim.tick()
        await self.drain()

    async def drain(self) -> None:
        assert isinstance(self.runtime.bus, MemoryBus)
        await self.runtime.bus.drain()

    def drop(self, der_ids: list[str]) -> None:
        """Take simulated devices offline (reported at the next :meth:`settle`)."""
        self.sim.fleet.set_online(np.isin(np.array(self.sim.fleet.der_ids), der_ids), False, "test drop")

    def header(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}"}


async def start_rig(engine: Engine, n: int = 300) -> Rig:
    model = load_network("cigre_mv")
    buses, feeders = attachment_buses(model)
    ders, sites, customers = generate_fleet(n, buses, seed=3, tenant_ids=list(TENANTS), feeder_ids=feeders)
    clock = ManualClock(START)
    utility = TenantScope.utility()
    tokens = {}
    with engine.begin() as conn:
        for tenant_id, kind in TENANTS.items():
            reg.create_tenant(conn, tenant_id=tenant_id, name=tenant_id, kind=kind, at=START, actor="test")
        for name, (tenant_id, role) in USERS.items():
            user_id = create_user(conn, username=name, tenant_id=tenant_id, role=role, at=START)
            tokens[name] = issue_token(conn, user_id=user_id, at=START)
        reg.create_customers(conn, customers, scope=utility, at=START, actor="test")
        reg.create_sites(conn, sites, scope=utility, at=START, actor="test")
        reg.create_ders(conn, ders, scope=utility, at=START, actor="test")
    settings = Settings(telemetry_flush_s=0.05, stale_after_s=None, orchestration_tick_s=0)
    runtime = Runtime(settings, engine, MemoryBus(clock), clock, network=model)
    runtime.reload_fleet()
    runtime.bridge.register(SimulatedTranslator())
    await runtime.start()
    # Added after the runtime started and stopped before its loop ever runs: the loop's sleep
    # would move the manual clock; the tests drive tick() instead.
    sim = SimulatedAdapter(runtime.context("sim"), SimulatedSettings(seed=3), ders=ders, sites=sites)
    runtime.add_adapter(sim)
    await sim.start()
    await sim.stop()
    rig = Rig(runtime, sim, model, clock, ders, tokens)
    await rig.settle(60.0)  # one simulated minute: every device has reported
    return rig
