"""A self-contained drill environment: a network, a registered simulated fleet, its users and
a running runtime with the console's API served by uvicorn on a free port.

Used for drills and training (and by the console's browser tests and benchmark): the
built-in ``heat_event_drop`` scenario is replayed from shortly before its mass drop, so the
drop happens ``lead`` of simulated time after the start instead of 15 hours in.
"""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from derms.adapters.simulated import SimulatedAdapter
from derms.adapters.simulated.settings import SimulatedSettings
from derms.api.auth import Role, create_user, issue_token
from derms.bridge.simulated import SimulatedTranslator
from derms.bus import MemoryBus
from derms.console.monitor import ConsoleMonitor
from derms.console.routes import attach
from derms.core.clock import ScaledClock
from derms.grid.network import load_network
from derms.runtime import Runtime
from derms.serve import api_server
from derms.settings import Settings
from derms.sim.generate import generate_fleet
from derms.sim.scenario import DeviceDrop, Scenario, builtin_scenario
from derms.store import make_engine, upgrade
from derms.store import registry as reg
from derms.store.scope import TenantScope

USERS = (
    ("operator", "utility", Role.OPERATOR),
    ("viewer", "utility", Role.VIEWER),
    ("admin", "utility", Role.ADMIN),
)


def drill_scenario(lead: timedelta, drop_count: int | None = None, name: str = "heat_event_drop") -> Scenario:
    """``name`` re-based to start ``lead`` before its first device drop; windows already open
    at the new start are cut to what remains of them."""
    base = builtin_scenario(name)
    drop = next(e for e in base.events if isinstance(e, DeviceDrop))
    shift = drop.at - lead
    events = []
    for event in base.events:
        update: dict = {"at": max(event.at - shift, timedelta(0))}
        duration = getattr(event, "duration", None)
        if duration is not None:
            remaining = event.at + duration - shift - update["at"]
            if remaining <= timedelta(0):
                continue
            update["duration"] = remaining
        if event is drop and drop_count is not None:
            update["count"] = drop_count
        events.append(event.model_copy(update=update))
    return base.model_copy(
        update={"start": base.start + shift, "events": events, "duration": base.duration - shift}
    )


@dataclass
class Sandbox:
    runtime: Runtime
    adapter: SimulatedAdapter
    tokens: dict[str, str]
    url: str = ""
    monitor: ConsoleMonitor | None = None
    _server: object = None
    _task: asyncio.Task | None = None
    _tmp: tempfile.TemporaryDirectory | None = field(default=None, repr=False)

    @classmethod
    async def start(
        cls,
        *,
        n_ders: int = 500,
        scenario: Scenario | None = None,
        speed: float = 60.0,
        network: str = "mv_oberrhein",
        seed: int = 7,
        serve: bool = True,
    ) -> Sandbox:
        scenario = scenario or drill_scenario(timedelta(minutes=20))
        tmp = tempfile.TemporaryDirectory(prefix="derms-console-")
        settings = Settings(
            database_url=f"sqlite:///{Path(tmp.name) / 'drill.sqlite'}",
            telemetry_flush_s=1.0,
            stale_after_s=None,
        )
        engine = make_engine(settings.database_url)
        upgrade(engine)
        model = load_network(network)
        buses = model.buses
        ids = [b for b in buses.index if buses.loc[b, "has_load"] and buses.loc[b, "feeder_id"]]
        ders, sites, customers = generate_fleet(
            n_ders,
            ids,
            seed=seed,
            tenant_ids=["utility"],
            feeder_ids=[str(buses.loc[b, "feeder_id"]) for b in ids],
        )
        scope, at, tokens = TenantScope.utility(), scenario.start, {}
        with engine.begin() as conn:
            reg.create_tenant(
                conn, tenant_id="utility", name="Drill Utility", kind="utility", at=at, actor="drill"
            )
            for username, tenant, role in USERS:
                uid = create_user(conn, username=username, tenant_id=tenant, role=role, at=at)
                tokens[username] = issue_token(conn, user_id=uid, at=at, label="drill")
            for customer in customers:
                reg.create_customer(conn, customer, scope=scope, at=at, actor="drill")
            for site in sites:
                reg.create_site(conn, site, scope=scope, at=at, actor="drill")
            for k in range(0, len(ders), 1000):
                reg.create_ders(conn, ders[k : k + 1000], scope=scope, at=at, actor="drill")
        clock = ScaledClock(scenario.start, speed=speed)
        runtime = Runtime(settings, engine, MemoryBus(clock), clock, network=model)
        runtime.reload_fleet()
        runtime.bridge.register(SimulatedTranslator())
        adapter = SimulatedAdapter(
            runtime.context("sim"),
            SimulatedSettings(period_s=scenario.step_s, seed=seed),
            ders=ders,
            sites=sites,
            scenario=scenario,
        )
        runtime.add_adapter(adapter)
        await runtime.start()
        box = cls(runtime, adapter, tokens, _tmp=tmp)
        if serve:
            await box._serve()
        return box

    async def _serve(self) -> None:
        server = api_server(self.runtime, "127.0.0.1", 0)
        self._server = server
        self._task = asyncio.create_task(server.serve(), name="console-sandbox-api")
        while not server.started:
            if self._task.done():
                raise RuntimeError(f"the API did not start: {self._task.exception()}")
            await asyncio.sleep(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.monitor = await attach(server.config.app)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            self._server.force_exit = True
            if self._task is not None:
                await self._task
        if self.monitor is not None:
            await self.monitor.stop()
        await self.runtime.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
