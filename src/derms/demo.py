"""``derms demo``: one process on the embedded default.

Loads a network that ships with pandapower, attaches a seeded simulated fleet to its load
buses, registers it (tenants, users, customers, sites, DERs), runs an accelerated summer day
through the reference adapter, and serves the API; at the evening peak the demo operator asks
for a feeder peak reduction (``derms.demo_objective``), which the orchestration service plans
and dispatches. ``--headless`` stops after ``--duration`` wall seconds, checks that telemetry
flowed, that the feeder roll-ups agree with the stored latest values and, once the objective
was posted, that plans were made and their commands acknowledged; it prints a JSON summary
and exits 0 (1 if a check failed).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import structlog
from rich.console import Console
from rich.progress import Progress

from derms.adapters.simulated import SimulatedAdapter
from derms.adapters.simulated.settings import SimulatedSettings
from derms.api.auth import Role, create_user, issue_token
from derms.bridge.simulated import SimulatedTranslator
from derms.bus import MemoryBus
from derms.core.clock import ScaledClock
from derms.demo_objective import post_at
from derms.demo_protocols import prepare_protocol_fleet
from derms.fleet import rollup
from derms.grid.mapping import attachment_buses as load_buses
from derms.grid.model import NetworkModel
from derms.grid.network import load_network
from derms.runtime import Runtime
from derms.serve import api_server, start_console
from derms.settings import Settings
from derms.sim.generate import generate_fleet
from derms.sim.scenario import builtin_scenario
from derms.store import audit, make_engine, upgrade
from derms.store import registry as reg
from derms.store.scope import TenantScope

log = structlog.get_logger(__name__)

TENANTS = (
    ("utility", "Demo Utility", "utility"),
    ("sunrise", "Sunrise Energy", "aggregator"),
    ("gridshare", "GridShare", "aggregator"),
)
USERS = (
    ("admin", "utility", Role.ADMIN),
    ("operator", "utility", Role.OPERATOR),
    ("viewer", "utility", Role.VIEWER),
    ("sunrise-ops", "sunrise", Role.OPERATOR),
)


@dataclass(frozen=True, slots=True)
class DemoOptions:
    headless: bool = False
    duration_s: float = 0.0
    n_ders: int = 2000
    speed: float = 120.0
    network: str = "mv_oberrhein"
    port: int = 8080
    database: Path = Path("var/demo.sqlite")
    seed: int = 7
    scenario: str = "summer_day"
    protocol_devices: int = 2
    """Simulated devices per protocol run through the real protocol stacks (0: none)."""
    objective_hour: float = 17.0
    """Local hour of the simulated day (the scenario starts at local midnight) at which the demo
    operator asks for a feeder peak reduction through the API; negative: never."""


def _fresh_database(path: Path) -> str:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def attachment_buses(model: NetworkModel) -> tuple[list[str], list[str]]:
    """The network's load buses (:func:`derms.grid.mapping.attachment_buses`) with their
    feeders; the substations' MV buses come first so that utility-scale units sit there."""
    buses = model.buses
    sources = [b for b in model.substations["source_bus"] if b in buses.index and buses.loc[b, "feeder_id"]]
    ids = sources + [b for b in load_buses(model).index if b not in sources]
    return ids, [str(buses.loc[b, "feeder_id"]) for b in ids]


def register_demo(
    engine: Any, model: NetworkModel, options: DemoOptions, clock: ScaledClock, console: Console
) -> tuple[dict[str, str], list, list]:
    """Tenants, users (tokens returned), and the generated fleet, in one transaction."""
    buses, feeders = attachment_buses(model)
    ders, sites, customers = generate_fleet(
        options.n_ders, buses, seed=options.seed, tenant_ids=[t[0] for t in TENANTS], feeder_ids=feeders
    )
    utility = TenantScope.utility()
    at = clock.now()
    tokens: dict[str, str] = {}
    with engine.begin() as conn, Progress(console=console, transient=True) as progress:
        for tenant_id, name, kind in TENANTS:
            reg.create_tenant(conn, tenant_id=tenant_id, name=name, kind=kind, at=at, actor="demo")
        for username, tenant_id, role in USERS:
            tokens[username] = issue_token(
                conn,
                user_id=create_user(conn, username=username, tenant_id=tenant_id, role=role, at=at),
                at=at,
                label="demo",
            )
        task = progress.add_task(
            "registering the simulated fleet", total=len(customers) + len(sites) + len(ders)
        )
        reg.create_customers(conn, customers, scope=utility, at=at, actor="demo")
        progress.advance(task, len(customers))
        reg.create_sites(conn, sites, scope=utility, at=at, actor="demo")
        progress.advance(task, len(sites))
        for start in range(0, len(ders), 500):
            reg.create_ders(conn, ders[start : start + 500], scope=utility, at=at, actor="demo")
            progress.advance(task, len(ders[start : start + 500]))
        audit.append(
            conn,
            at=at,
            actor="demo",
            action="demo.setup",
            target=options.network,
            detail={"ders": len(ders), "sites": len(sites)},
        )
    return tokens, ders, sites


def consistency(runtime: Runtime) -> dict[str, Any]:
    """Check that the feeder roll-ups add up to the fleet total and agree with what was stored."""
    r = rollup(runtime.fleet)
    fleet = r.fleet()
    latest = runtime.telemetry.latest()
    online = runtime.fleet.online[latest.der_idx]
    stored_p = float(np.nansum(np.where(online, latest.p_w, 0.0)))
    checks = {
        "feeders_sum_to_fleet": bool(np.isclose(sum(rec["p_w"] for rec in r.records()), fleet["p_w"])),
        "online_plus_offline": fleet["online"] + fleet["offline"] == fleet["ders"],
        "rollup_matches_store": bool(np.isclose(stored_p, fleet["p_w"], rtol=1e-9, atol=1e-3)),
    }
    return {"fleet": fleet, "stored_p_w": stored_p, "checks": checks}


async def run_demo(options: DemoOptions, console: Console) -> int:
    scenario = builtin_scenario(options.scenario)
    clock = ScaledClock(scenario.start, speed=options.speed)
    settings = Settings(
        database_url=_fresh_database(options.database), telemetry_flush_s=1.0, stale_after_s=None
    )
    engine = make_engine(settings.database_url)
    upgrade(engine)
    model = load_network(options.network)
    tokens, ders, sites = register_demo(engine, model, options, clock, console)
    # Protocol devices (derms.demo_protocols): part of the fleet over the real protocol stacks.
    protocol_fleet = await prepare_protocol_fleet(
        options.protocol_devices,
        *attachment_buses(model),
        [t[0] for t in TENANTS],
        seed=options.seed,
        clock=clock,
        speed=options.speed,
        engine=engine,
    )
    runtime = Runtime(settings, engine, MemoryBus(clock), clock, network=model)
    runtime.reload_fleet()
    runtime.bridge.register(SimulatedTranslator())
    runtime.add_adapter(
        SimulatedAdapter(
            runtime.context("sim"),
            SimulatedSettings(period_s=scenario.step_s, seed=options.seed),
            ders=ders,
            sites=sites,
            scenario=scenario,
        )
    )
    await runtime.start()
    await protocol_fleet.attach(runtime)
    server = api_server(runtime, settings.host, options.port)
    monitor = await start_console(server)
    serving = asyncio.create_task(server.serve(), name="api")
    for _ in range(600):  # uvicorn offers no start event; give it up to 30 s
        if server.started or serving.done():
            break
        await asyncio.sleep(0.05)
    if serving.done():
        await monitor.stop()
        await protocol_fleet.stop(runtime)
        await runtime.stop()
        console.print(f"[red]could not start the API on port {options.port}: {serving.exception()}")
        return 1
    port = server.servers[0].sockets[0].getsockname()[1]
    console.print(
        f"[bold green]derms demo[/] — {len(ders)} simulated DERs on {options.network}, {scenario.description}"
    )
    console.print(f"protocol devices: {protocol_fleet.describe()}")
    console.print(f"console: http://{settings.host}:{port}/console/   (log in with a token below)")
    console.print(f"API:     http://{settings.host}:{port}/docs   (Authorization: Bearer <token>)")
    for username, token in tokens.items():
        console.print(f"login:   {username:12s} {token}")
    operator = (
        asyncio.create_task(
            post_at(
                clock,
                scenario.start + timedelta(hours=options.objective_hour),
                runtime,
                f"http://{settings.host}:{port}",
                tokens["operator"],
            ),
            name="demo-operator",
        )
        if options.objective_hour >= 0
        else None
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        if options.duration_s > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=options.duration_s)
        else:
            await stop.wait()
    finally:
        objective = None
        if operator is not None:
            if not operator.done():
                operator.cancel()
            try:
                objective = await operator
            except asyncio.CancelledError:
                pass
            except Exception:
                log.exception("the demo operator could not post its objective")
        sim = runtime.adapters.pop("sim")
        await sim.stop()
        await protocol_fleet.stop(runtime)
        if isinstance(runtime.bus, MemoryBus):
            await runtime.bus.drain()
        assert runtime.tracker is not None
        await runtime.tracker.flush()
        report = consistency(runtime)
        service = runtime.orchestration
        orchestration = {
            "objective": objective,
            "plans": service.plans if service else 0,
            "replans": service.replans if service else 0,
            "commands": service.command_counts() if service else {},
        }
        summary = {
            "ders": len(ders) + len(protocol_fleet.ders),
            "feeders": sorted(set(runtime.fleet.feeder_ids)),
            "simulated_until": clock.now().isoformat(),
            "telemetry_received": runtime.tracker.received,
            "telemetry_written": runtime.tracker.written,
            "protocols": protocol_fleet.summary(),
            "orchestration": orchestration,
            **report,
        }
        server.should_exit = True
        await serving
        await monitor.stop()
        await runtime.stop()
    planned = objective is None or (
        orchestration["plans"] > 0 and orchestration["commands"].get("acknowledged_ever", 0) > 0
    )
    ok = (
        summary["telemetry_received"] > 0
        and summary["telemetry_written"] == summary["telemetry_received"]
        and all(report["checks"].values())
        and planned
    )
    print(json.dumps(summary, indent=1))
    console.print(
        f"orchestration: {orchestration['plans']} plan(s), {orchestration['replans']} re-plan(s), "
        f"{orchestration['commands'].get('acknowledged_ever', 0)} command(s) acknowledged"
    )
    if not ok:
        console.print("[red]demo checks failed")
    return 0 if ok else 1
