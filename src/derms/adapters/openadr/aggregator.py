"""derms as an OpenADR 2.0b VEN under a utility VTN (the aggregator role).

Each event the utility sends becomes platform objectives on the bus (``objective.created``;
``objective.cancelled`` when the event is modified or cancelled) for the orchestrator; the opt
decision comes from a policy (default: opt in unless every objective is refused). Delivered
load is reported as ``TELEMETRY_USAGE`` real power: the sum of the latest telemetry of the
enrolled DERs, turned back into OpenADR's load-positive kW.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from pydantic import BaseModel, Field

from derms.adapters.openadr.oadr20b.model import POWER_REAL_KW, Event, Report, ReportDescription
from derms.adapters.openadr.oadr20b.schema import SchemaValidator, find_schema
from derms.adapters.openadr.oadr20b.ven import VenClient
from derms.adapters.openadr.oadr20b.vocabulary import OptType, ReadingType, ReportName, ReportType
from derms.adapters.openadr.objectives import objectives_for
from derms.bus import Bus
from derms.bus.base import Message
from derms.core.clock import Clock
from derms.core.events import OBJECTIVE, decode_telemetry, encode_objective
from derms.core.objectives import Objective

REPORT_SPECIFIER = "derms-delivered-load"
R_ID = "delivered-load"


class AggregatorSettings(BaseModel):
    vtn_url: str
    ven_name: str
    ven_id: str | None = None
    der_ids: list[str] = Field(default_factory=list)
    """DERs whose telemetry sums to the reported load (empty: every DER on the bus)."""
    shed_w_per_level: dict[int, float] = Field(
        default_factory=lambda: {1: 50_000.0, 2: 100_000.0, 3: 150_000.0}
    )
    report_min_s: float = 1.0
    report_max_s: float = 3600.0
    tenant_id: str | None = None
    schema_path: str | None = None


OptPolicy = Callable[[Event, list[Objective]], Awaitable[OptType]]


async def opt_in_when_actionable(event: Event, objectives: list[Objective]) -> OptType:
    return OptType.OPT_IN if objectives else OptType.OPT_OUT


class OpenAdrAggregator:
    def __init__(
        self, bus: Bus, clock: Clock, settings: AggregatorSettings, policy: OptPolicy = opt_in_when_actionable
    ) -> None:
        self.bus = bus
        self.clock = clock
        self.settings = settings
        self.policy = policy
        self.latest_w: dict[str, float] = {}
        self.published: dict[str, list[str]] = {}
        """event id → ids of the objectives published for its current version."""
        path = find_schema(settings.schema_path)
        self.client = VenClient(
            settings.vtn_url,
            settings.ven_name,
            clock,
            on_event=self._on_event,
            on_cancel=self._on_cancel,
            reports=[self._metadata()],
            read_point=self._read_point,
            validator=SchemaValidator(path) if path is not None else None,
            ven_id=settings.ven_id,
        )
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._subscription = None

    def _metadata(self) -> Report:
        return Report(
            REPORT_SPECIFIER,
            ReportName.METADATA_TELEMETRY_USAGE,
            self.clock.now(),
            descriptions=(
                ReportDescription(
                    R_ID,
                    ReportType.USAGE,
                    ReadingType.SUMMED,
                    resource_id=self.settings.ven_name,
                    item=POWER_REAL_KW,
                    min_period=timedelta(seconds=self.settings.report_min_s),
                    max_period=timedelta(seconds=self.settings.report_max_s),
                ),
            ),
        )

    async def start(self) -> None:
        self._subscription = await self.bus.subscribe("telemetry.>", self._on_telemetry)
        self._task = asyncio.create_task(self.client.run(self._stop))

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self._task
        if self._subscription is not None:
            await self._subscription.unsubscribe()
        await self.client.close()

    async def _on_telemetry(self, message: Message) -> None:
        wanted = set(self.settings.der_ids)
        for sample in decode_telemetry(message.data):
            if sample.p_w is not None and (not wanted or sample.der_id in wanted):
                self.latest_w[sample.der_id] = sample.p_w

    async def _read_point(self, specifier: str, r_id: str, now: datetime) -> float | None:
        if specifier != REPORT_SPECIFIER or r_id != R_ID or not self.latest_w:
            return None
        return -sum(self.latest_w.values()) / 1000.0

    async def _withdraw(self, event_id: str) -> None:
        for objective_id in self.published.pop(event_id, []):
            await self.bus.publish(
                f"{OBJECTIVE}.cancelled", {"id": objective_id, "source": f"openadr:{event_id}"}
            )

    async def _on_event(self, event: Event) -> OptType:
        objectives = objectives_for(event, self.settings.shed_w_per_level, self.settings.tenant_id)
        decision = await self.policy(event, objectives)
        await self._withdraw(event.event_id)
        if decision is OptType.OPT_IN:
            for objective in objectives:
                await self.bus.publish(f"{OBJECTIVE}.created", encode_objective(objective))
            self.published[event.event_id] = [o.id for o in objectives]
        return decision

    async def _on_cancel(self, event: Event) -> None:
        await self._withdraw(event.event_id)
