"""Field protocol throughput: OCPP charging profiles delivered per second to N connected chargers,
and SunSpec Modbus devices polled per second.

The simulated devices run in a child process (real sockets on loopback), the CSMS / master in
this one, so the two sides do not share an interpreter. Prints one JSON object: medians over
``--repeats`` rounds.

    python benchmarks/field.py            # 5,000 chargers, 200 Modbus devices
    python benchmarks/field.py --quick    # 50 chargers, 10 devices, one round
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import resource
import statistics
import sys
import time
from datetime import timedelta
from typing import Any

from derms.adapters.base import AdapterContext
from derms.adapters.ocpp import OcppAdapter, OcppSettings
from derms.adapters.sunspec import SunSpecAdapter, SunSpecSettings
from derms.bridge.ocpp import OcppTranslator
from derms.bus import MemoryBus
from derms.bus.base import Message
from derms.core.clock import SystemClock
from derms.core.controls import ChargingLimit
from derms.core.der import Capabilities, Der, DerKind
from derms.core.dispatch import Setpoint


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    del soft


# --- child processes: the devices -------------------------------------------------------------
def _chargers(url: str, n: int, version: str, ready: Any, stop: Any) -> None:
    from websockets.exceptions import ConnectionClosed, InvalidHandshake

    from derms.sim.protocols.ocpp import SimChargePoint

    _raise_fd_limit()

    async def keep_connected(sim: SimChargePoint) -> None:
        """Run a charger, reconnecting after a refused or timed-out handshake (the connection storm)."""
        while True:
            try:
                await sim.run()
            except (OSError, TimeoutError, InvalidHandshake, ConnectionClosed):
                await asyncio.sleep(1.0)

    async def main() -> None:
        clock = SystemClock()
        sims = [
            SimChargePoint(f"CP{i:05d}", url, clock, version=version, meter_interval_s=3600) for i in range(n)
        ]
        tasks = []
        for i, sim in enumerate(sims):
            tasks.append(asyncio.create_task(keep_connected(sim)))
            if i % 50 == 49:
                await asyncio.sleep(0.1)  # pace the connection storm
        await asyncio.gather(*(s.booted.wait() for s in sims))
        ready.put(n)
        await asyncio.to_thread(stop.wait)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(main())


def _modbus_devices(n: int, ports: Any, stop: Any) -> None:
    from derms.sim.protocols.sunspec import SunSpecDeviceServer, battery_inverter, pv_inverter

    _raise_fd_limit()

    async def main() -> None:
        clock = SystemClock()
        servers = []
        for i in range(n):
            device, models = (pv_inverter if i % 2 else battery_inverter)(f"D{i}")
            server = SunSpecDeviceServer(device, models, clock)
            await server.start()
            servers.append(server)
        ports.put([s.port for s in servers])
        await asyncio.to_thread(stop.wait)
        for server in servers:
            await server.stop()

    asyncio.run(main())


# --- this process: CSMS and master ------------------------------------------------------------
async def bench_ocpp(n: int, repeats: int, version: str) -> dict[str, Any]:
    bus = MemoryBus()
    acks: dict[str, int] = {"acknowledged": 0, "failed": 0}

    async def count(message: Message) -> None:
        if message.data["state"] in acks:
            acks[message.data["state"]] += 1

    await bus.subscribe("command.state", count)
    clock = SystemClock()
    adapter = OcppAdapter(
        AdapterContext(bus=bus, clock=clock, protocol="ocpp"),
        OcppSettings(port=0, allow_anonymous=True, heartbeat_interval_s=3600, response_timeout_s=120),
    )
    ders = [Der(id=f"ev{i}", site_id="s", kind=DerKind.EV_CHARGER, protocol="ocpp", address=f"CP{i:05d}/1",
                tenant_id="t", capabilities=Capabilities(w_max_consume=11_000, phases=3)) for i in range(n)]  # fmt: skip
    for der in ders:
        await adapter.register_device(der)
    await adapter.start()
    ctx = mp.get_context("spawn")
    ready, stop = ctx.Queue(), ctx.Event()
    child = ctx.Process(
        target=_chargers, args=(f"ws://127.0.0.1:{adapter.csms.port}/ocpp", n, version, ready, stop)
    )
    t_connect = time.perf_counter()
    child.start()
    while ready.empty():
        await asyncio.sleep(0.2)
        if not child.is_alive():
            raise RuntimeError("charger process died")
    connect_s = time.perf_counter() - t_connect
    connected = len(adapter.csms.registry.stations)
    translator = OcppTranslator(stack_level=2)
    rates: list[float] = []
    for round_ in range(repeats):
        start = clock.now()
        commands = [
            translator.translate(der, Setpoint(der.id, ChargingLimit(limit=3000 + 10 * round_ + (i % 50)),
                                               start, start + timedelta(hours=1)), f"r{round_}-{i}")
            for i, der in enumerate(ders)
        ]  # fmt: skip
        t0 = time.perf_counter()
        await asyncio.gather(*(adapter.send(c) for c in commands))
        rates.append(n / (time.perf_counter() - t0))
    await bus.drain()
    await adapter.stop()  # closes every websocket while the chargers can still answer the close
    stop.set()
    child.join(30)
    await bus.close()
    return {
        "ocpp_version": version,
        "chargers_connected": connected,
        "connect_and_boot_s": round(connect_s, 2),
        "profiles_per_s_median": round(statistics.median(rates), 1),
        "profiles_per_s_rounds": [round(r, 1) for r in rates],
        "acknowledged": acks["acknowledged"],
        "failed": acks["failed"],
    }


async def bench_modbus(n: int, repeats: int) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    ports_q, stop = ctx.Queue(), ctx.Event()
    child = ctx.Process(target=_modbus_devices, args=(n, ports_q, stop))
    child.start()
    while ports_q.empty():
        await asyncio.sleep(0.1)
        if not child.is_alive():
            raise RuntimeError("device process died")
    ports = ports_q.get()
    bus = MemoryBus()
    clock = SystemClock()
    adapter = SunSpecAdapter(AdapterContext(bus=bus, clock=clock, protocol="sunspec"),
                             SunSpecSettings(max_concurrency=64, timeout_s=5))  # fmt: skip
    for i, port in enumerate(ports):
        await adapter.register_device(Der(id=f"d{i}", site_id="s", kind=DerKind.PV_INVERTER, protocol="sunspec",
                                          address=f"127.0.0.1:{port}/1", tenant_id="t",
                                          capabilities=Capabilities(w_max=10_000)))  # fmt: skip
    t0 = time.perf_counter()
    first = await asyncio.gather(*(adapter.poll_once(f"d{i}") for i in range(n)))
    discover_s = time.perf_counter() - t0
    rates: list[float] = []
    ok = sum(s is not None for s in first)
    for _ in range(repeats):
        t0 = time.perf_counter()
        samples = await asyncio.gather(*(adapter.poll_once(f"d{i}") for i in range(n)))
        rates.append(sum(s is not None for s in samples) / (time.perf_counter() - t0))
    await adapter.stop()
    stop.set()
    child.join(30)
    await bus.close()
    return {
        "devices": n,
        "connect_and_discover_s": round(discover_s, 2),
        "discovered": ok,
        "devices_polled_per_s_median": round(statistics.median(rates), 1),
        "devices_polled_per_s_rounds": [round(r, 1) for r in rates],
        "concurrency": 64,
    }


async def main(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "benchmark": "field",
        "quick": args.quick,
        "cpus": os.cpu_count(),
        "ocpp": await bench_ocpp(args.chargers, args.repeats, args.ocpp_version),
        "sunspec": await bench_modbus(args.devices, args.repeats),
    }


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="50 chargers, 10 devices, one round")
    parser.add_argument("--chargers", type=int, default=5000)
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ocpp-version", default="1.6", choices=["1.6", "2.0.1"])
    args = parser.parse_args(argv)
    if args.quick:
        args.chargers, args.devices, args.repeats = 50, 10, 1
    return args


if __name__ == "__main__":
    _raise_fd_limit()
    print(json.dumps(asyncio.run(main(parse(sys.argv[1:]))), indent=2))
