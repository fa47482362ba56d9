"""A simulated C&I load behind an OpenADR 2.0b VEN (our :class:`VenClient`) on loopback.

It registers, offers a TELEMETRY_USAGE report (real power in kW, load positive) and a
TELEMETRY_STATUS report, opts in to every event it can act on (SIMPLE, LOAD_DISPATCH,
LOAD_CONTROL) and out of the rest, and at each :meth:`step` applies the intervals in force.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from derms.adapters.openadr.oadr20b.model import POWER_REAL_KW, Event, Report, ReportDescription
from derms.adapters.openadr.oadr20b.ven import VenClient
from derms.adapters.openadr.oadr20b.vocabulary import (
    SI_SCALE,
    EventStatus,
    OptType,
    ReadingType,
    ReportName,
    ReportType,
    SignalName,
    SignalType,
)
from derms.core.clock import Clock
from derms.sim.protocols.openadr.load import Command, SimulatedCiLoad

USAGE_SPECIFIER = "usage"
STATUS_SPECIFIER = "status"
_ACTIONABLE = {SignalName.SIMPLE, SignalName.LOAD_DISPATCH, SignalName.LOAD_CONTROL}


class CiLoadVen20b:
    def __init__(
        self, vtn_url: str, ven_name: str, clock: Clock, load: SimulatedCiLoad, resource_id: str = "load-1"
    ) -> None:
        self.load = load
        self.clock = clock
        self.resource_id = resource_id
        now = clock.now()
        usage = Report(
            USAGE_SPECIFIER,
            ReportName.METADATA_TELEMETRY_USAGE,
            now,
            descriptions=(
                ReportDescription(
                    "p",
                    ReportType.USAGE,
                    ReadingType.DIRECT_READ,
                    resource_id,
                    POWER_REAL_KW,
                    timedelta(seconds=1),
                    timedelta(hours=1),
                ),
            ),
        )
        status = Report(
            STATUS_SPECIFIER,
            ReportName.METADATA_TELEMETRY_STATUS,
            now,
            descriptions=(
                ReportDescription(
                    "online",
                    ReportType.X_RESOURCE_STATUS,
                    ReadingType.X_NOT_APPLICABLE,
                    resource_id,
                    min_period=timedelta(seconds=1),
                    max_period=timedelta(hours=1),
                ),
            ),
        )
        self.client = VenClient(
            vtn_url, ven_name, clock, on_event=self._on_event, reports=[usage, status], read_point=self._read
        )

    async def _on_event(self, event: Event) -> OptType:
        return OptType.OPT_IN if any(s.name in _ACTIONABLE for s in event.signals) else OptType.OPT_OUT

    async def _read(self, specifier: str, r_id: str, now: datetime) -> float | None:
        if specifier == USAGE_SPECIFIER:
            return -self.load.p_w / 1000.0
        if specifier == STATUS_SPECIFIER:
            return 1.0
        return None

    def command(self, now: datetime) -> Command:
        """The command the opted-in events in force add up to."""
        cmd = Command()
        for event_id, event in self.client.state.events.items():
            if self.client.state.opts.get(event_id) is not OptType.OPT_IN:
                continue
            if event.status_at(now) is not EventStatus.ACTIVE:
                continue
            for signal in event.signals:
                value = signal.value_at(now - event.start)
                if value is None:
                    continue
                scale = SI_SCALE.get(signal.item.scale, 1.0) if signal.item is not None else 1e3
                if signal.name is SignalName.SIMPLE:
                    cmd.shed_level = max(cmd.shed_level, int(value))
                elif signal.type in (
                    SignalType.SETPOINT,
                    SignalType.X_LOAD_CONTROL_CAPACITY,
                    SignalType.X_LOAD_CONTROL_SETPOINT,
                ):
                    cap = value * scale
                    cmd.limit_w = cap if cmd.limit_w is None else min(cmd.limit_w, cap)
                elif signal.type is SignalType.DELTA and value < 0:
                    cmd.reduce_w = max(cmd.reduce_w or 0.0, -value * scale)
        return cmd

    def step(self, dt_s: float) -> float:
        now = self.clock.now()
        return self.load.step(now, dt_s, self.command(now))

    async def run(self, stop: asyncio.Event, dt_s: float = 1.0) -> None:
        """Protocol loop plus physics stepping every ``dt_s`` seconds of the clock."""
        protocol = asyncio.create_task(self.client.run(stop))
        try:
            while not stop.is_set():
                self.step(dt_s)
                await self.clock.sleep(dt_s)
        finally:
            stop.set()
            await protocol
            await self.client.close()
