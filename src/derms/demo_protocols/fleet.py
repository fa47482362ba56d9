"""The demo's protocol devices: placed on the network, registered, connected, counted.

:class:`ProtocolFleet` runs one :class:`~derms.demo_protocols.base.DeviceGroup` per
protocol. A protocol whose stack does not import, whose devices do not start, or whose
adapter fails is logged and reported as ``failed`` in the summary; the rest of the demo
carries on. Telemetry and command states are counted per protocol from the bus, the same
messages the fleet tracker and the dispatch tracker consume.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import structlog
from sqlalchemy import Engine

from derms.bus.base import Message
from derms.core.clock import Clock
from derms.core.der import Der
from derms.core.events import COMMAND_STATE, decode_telemetry, telemetry_subject
from derms.core.site import Customer, Site
from derms.demo_protocols.base import DeviceGroup, Placement
from derms.runtime import Runtime
from derms.store import registry as reg
from derms.store.scope import TenantScope

log = structlog.get_logger(__name__)

GROUPS: dict[str, str] = {
    "ieee2030_5": "derms.demo_protocols.ieee2030_5:Ieee2030_5Devices",
    "openadr": "derms.demo_protocols.openadr:OpenAdrVens",
    "ocpp": "derms.demo_protocols.ocpp:OcppChargePoints",
    "sunspec": "derms.demo_protocols.sunspec:SunSpecDevices",
    "dnp3": "derms.demo_protocols.dnp3:Dnp3Plants",
    "cta2045": "derms.demo_protocols.cta2045:Cta2045WaterHeaters",
}
"""Protocol → its device group, imported lazily so a stack that does not import fails alone."""
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
QUIET_LOGGERS = ("httpx", "ocpp", "websockets", "derms.sim.protocols", "derms.adapters.ocpp.stations")
"""Loggers that trace every request or message at INFO (HTTP clients, the OCPP RPC layer of
both ends); the demo keeps them to warnings so its own output stays readable."""


def device_counts(n: int) -> dict[str, int]:
    """``n`` devices per protocol, but one DNP3 plant per two (a plant is utility-scale)."""
    if n < 0:
        raise ValueError("the number of protocol devices must be >= 0")
    return {protocol: (n + 1) // 2 if protocol == "dnp3" else n for protocol in GROUPS}


@dataclass
class ProtocolRun:
    """One protocol's devices in the demo and what was seen of them."""

    protocol: str
    placements: list[Placement]
    group: DeviceGroup | None = None
    ders: list[Der] = field(default_factory=list)
    state: str = "pending"
    """pending → prepared → running, or failed (see ``error``)."""
    error: str = ""
    reporting: set[str] = field(default_factory=set)
    commands: Counter[str] = field(default_factory=Counter)

    def fail(self, stage: str, exc: BaseException) -> None:
        self.state = "failed"
        self.error = f"{stage}: {type(exc).__name__}: {exc}"
        log.error("demo protocol devices failed", protocol=self.protocol, stage=stage, error=repr(exc))

    def describe(self) -> str:
        """One line for the console: devices and state per protocol."""
        runs = self.runs.values()
        return ", ".join(f"{run.protocol} {len(run.ders)} {run.state}" for run in runs) or "none"

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "state": self.state,
            "devices": len(self.ders),
            "ders_reporting": len(self.reporting),
            "command_states": dict(sorted(self.commands.items())),
        }
        if self.error:
            out["error"] = self.error
        return out


def place(
    counts: dict[str, int],
    buses: Sequence[str],
    feeders: Sequence[str],
    tenant_ids: Sequence[str],
    *,
    seed: int,
) -> dict[str, list[Placement]]:
    """Sites for every protocol device on real buses: DNP3 plants on the substations' MV buses
    (the first ones given, as in :func:`derms.demo.attachment_buses`), the rest on load buses."""
    rng = np.random.default_rng(seed)
    load_buses = range(min(2, len(buses) - 1), len(buses))
    out: dict[str, list[Placement]] = {}
    for protocol, count in counts.items():
        out[protocol] = []
        for i in range(count):
            b = i % min(2, len(buses)) if protocol == "dnp3" else int(rng.choice(load_buses))
            tenant = tenant_ids[int(rng.integers(len(tenant_ids)))]
            customer = Customer(f"proto-{protocol}-cust-{i:03d}", tenant, f"{protocol} customer {i}")
            site = Site(
                id=f"proto-{protocol}-site-{i:03d}",
                customer_id=customer.id,
                tenant_id=tenant,
                feeder_id=feeders[b],
                bus=str(buses[b]),
                meter_id=f"proto-{protocol}-meter-{i:03d}",
            )
            out[protocol].append(Placement(protocol, i, site, customer, int(rng.integers(2**31))))
    return out


def _group_class(protocol: str) -> type[DeviceGroup]:
    module, _, name = GROUPS[protocol].partition(":")
    return getattr(importlib.import_module(module), name)


class ProtocolFleet:
    """Simulated devices of every protocol, run through the real adapters."""

    def __init__(self, placements: dict[str, list[Placement]], clock: Clock, speed: float) -> None:
        self.clock = clock
        self.speed = speed
        self.runs = {p: ProtocolRun(p, places) for p, places in placements.items() if places}
        self._protocol_of: dict[str, str] = {}

    async def prepare(self) -> None:
        """Start the serving devices and build every protocol's DER records."""
        for run in self.runs.values():
            try:
                run.group = _group_class(run.protocol)(self.clock, self.speed)
                async with asyncio.timeout(START_TIMEOUT_S):
                    run.ders = await run.group.prepare(run.placements)
            except Exception as exc:  # any stack failure is reported, not raised
                run.fail("devices", exc)
                await self._stop_group(run)
                run.ders = []
                continue
            run.state = "prepared"
            self._protocol_of.update((der.id, run.protocol) for der in run.ders)

    @property
    def prepared(self) -> list[ProtocolRun]:
        return [run for run in self.runs.values() if run.ders]

    @property
    def ders(self) -> list[Der]:
        """The DERs of every protocol whose devices were prepared (registered with the rest)."""
        return [der for run in self.prepared for der in run.ders]

    def records(self) -> tuple[list[Der], list[Site], list[Customer]]:
        runs = self.prepared
        places = [p for run in runs for p in run.placements]
        return self.ders, [p.site for p in places], [p.customer for p in places]

    def register(self, engine: Engine, at: datetime) -> None:
        """Register the prepared devices' customers, sites and DERs (their tenants must exist)."""
        ders, sites, customers = self.records()
        utility = TenantScope.utility()
        with engine.begin() as conn:
            reg.create_customers(conn, customers, scope=utility, at=at, actor="demo")
            reg.create_sites(conn, sites, scope=utility, at=at, actor="demo")
            reg.create_ders(conn, ders, scope=utility, at=at, actor="demo")

    async def attach(self, runtime: Runtime) -> None:
        """After ``runtime.start()``: count bus traffic, enable and start each protocol's adapter,
        register its DERs, then let the connecting devices connect."""
        await runtime.bus.subscribe(COMMAND_STATE, self._on_command_state)
        for run in self.prepared:
            await runtime.bus.subscribe(telemetry_subject(run.protocol), self._on_telemetry)
            assert run.group is not None
            try:
                async with asyncio.timeout(START_TIMEOUT_S):
                    adapter = runtime.enable(run.protocol, run.group.settings())
                    await adapter.start()
                    for der in run.ders:
                        await adapter.register_device(der)
                    await run.group.connect(adapter)
            except Exception as exc:  # any stack failure is reported, not raised
                run.fail("adapter", exc)
                await self._stop_adapter(runtime, run.protocol)
                await self._stop_group(run)
                continue
            run.state = "running"
            log.info("demo protocol devices running", protocol=run.protocol, devices=len(run.ders))

    async def stop(self, runtime: Runtime) -> None:
        """Connecting devices first, then the adapters, then the serving devices, so that neither
        side spends its last moments reconnecting."""
        runs = [run for run in self.runs.values() if run.group is not None]
        for run in runs:
            if run.group is not None and run.group.clients:
                await self._stop_group(run)
        for run in runs:
            await self._stop_adapter(runtime, run.protocol)
        for run in runs:
            await self._stop_group(run)

    def describe(self) -> str:
        """One line for the console: devices and state per protocol."""
        runs = self.runs.values()
        return ", ".join(f"{run.protocol} {len(run.ders)} {run.state}" for run in runs) or "none"

    def summary(self) -> dict[str, Any]:
        return {protocol: run.summary() for protocol, run in self.runs.items()}

    async def _on_telemetry(self, message: Message) -> None:
        for sample in decode_telemetry(message.data):
            protocol = self._protocol_of.get(sample.der_id)
            if protocol is not None:
                self.runs[protocol].reporting.add(sample.der_id)

    async def _on_command_state(self, message: Message) -> None:
        protocol = self._protocol_of.get(message.data.get("der_id", ""))
        if protocol is not None:
            self.runs[protocol].commands[str(message.data["state"])] += 1

    @staticmethod
    async def _stop_group(run: ProtocolRun) -> None:
        group, run.group = run.group, None
        if group is None:
            return
        try:
            async with asyncio.timeout(STOP_TIMEOUT_S):
                await group.stop()
        except Exception as exc:  # shutting down: log and go on
            log.warning("demo protocol devices did not stop cleanly", protocol=run.protocol, error=repr(exc))

    @staticmethod
    async def _stop_adapter(runtime: Runtime, protocol: str) -> None:
        adapter = runtime.adapters.pop(protocol, None)
        if adapter is None:
            return
        try:
            async with asyncio.timeout(STOP_TIMEOUT_S):
                await adapter.stop()
        except Exception as exc:  # shutting down: log and go on
            log.warning("demo protocol adapter did not stop cleanly", protocol=protocol, error=repr(exc))


async def prepare_protocol_fleet(
    n: int,
    buses: Sequence[str],
    feeders: Sequence[str],
    tenant_ids: Sequence[str],
    *,
    seed: int,
    clock: Clock,
    speed: float,
    engine: Engine,
) -> ProtocolFleet:
    """Place ``n`` devices per protocol, start the serving ones and register them all."""
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    fleet = ProtocolFleet(place(device_counts(n), buses, feeders, tenant_ids, seed=seed), clock, speed)
    await fleet.prepare()
    fleet.register(engine, clock.now())
    return fleet
