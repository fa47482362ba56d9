"""The composition root: engine, bus, clock, fleet state, tracker, bridge and adapters.

`derms serve` and `derms demo` build one :class:`Runtime`; the API reads it from
``app.state.runtime``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

import structlog
from pydantic import BaseModel
from sqlalchemy import Engine, select

from derms.adapters import registry
from derms.adapters.base import Adapter, AdapterContext, NativeCommand
from derms.bridge import Bridge
from derms.bus import Bus, MemoryBus, Message, Subscription
from derms.core.clock import Clock, SystemClock
from derms.core.controls import Control
from derms.core.der import Der
from derms.core.dispatch import Reason, Setpoint
from derms.core.errors import NotFound
from derms.core.events import DER_STATUS
from derms.fleet import FleetState
from derms.fleet.tracker import FleetTracker
from derms.settings import Settings
from derms.store import make_engine, upgrade
from derms.store import registry as reg
from derms.store.mappers import capabilities_from_json, der_from_row, site_from_row
from derms.store.schema import ders, sites
from derms.store.scope import TenantScope
from derms.store.telemetry import TelemetryStore

if TYPE_CHECKING:  # imported when started: it pulls in the optimizer and the power flow
    from derms.orchestration.service import OrchestrationService

log = structlog.get_logger(__name__)


def make_bus(settings: Settings, clock: Clock) -> Bus:
    if settings.bus_url == "memory":
        return MemoryBus(clock)
    from derms.bus.nats import NatsBus

    return NatsBus(settings.bus_url, prefix=settings.bus_prefix, clock=clock)


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    bus: Bus
    clock: Clock
    fleet: FleetState = field(default_factory=FleetState)
    bridge: Bridge = field(default_factory=Bridge)
    adapters: dict[str, Adapter] = field(default_factory=dict)
    tracker: FleetTracker | None = None
    network: Any = None
    """The grid model (``derms.grid.model.NetworkModel``) the fleet is mapped to, when one is loaded."""
    orchestration: OrchestrationService | None = None
    """The ``derms.orchestration.service.OrchestrationService``, running while a grid model and a
    fleet are loaded."""
    _subscriptions: list[Subscription] = field(default_factory=list, init=False, repr=False)

    @classmethod
    def create(
        cls, settings: Settings | None = None, *, clock: Clock | None = None, bus: Bus | None = None
    ) -> Runtime:
        """Open the database (migrating it to the newest schema) and load the fleet state."""
        settings = settings or Settings()
        clock = clock or SystemClock()
        engine = make_engine(settings.database_url)
        upgrade(engine)
        runtime = cls(settings, engine, bus or make_bus(settings, clock), clock)
        if settings.network:
            from derms.grid.network import load_network

            runtime.network = load_network(settings.network)
        runtime.reload_fleet()
        for name in settings.adapter_names:
            runtime.enable(name)
        return runtime

    def enable(self, protocol: str, settings: BaseModel | str | None = None) -> Adapter:
        """Build the protocol's adapter (settings: model, JSON, or ``DERMS_ADAPTER_<NAME>``) and
        register its translator with the bridge."""
        adapter, translator = registry.build(protocol, self.context(protocol), settings, engine=self.engine)
        self.add_adapter(adapter)
        self.bridge.register(translator)
        return adapter

    @cached_property
    def telemetry(self) -> TelemetryStore:
        """The one telemetry store of this runtime (the tracker writes, the API reads)."""
        return TelemetryStore(self.engine)

    def reload_fleet(self) -> int:
        """(Re)load every registered DER into the columnar state; returns how many."""
        with self.engine.connect() as conn:
            site_rows = {r.id: site_from_row(r) for r in conn.execute(select(sites))}
            der_rows = conn.execute(select(ders).order_by(ders.c.idx)).all()
        self.fleet.register((r.idx, der_from_row(r), site_rows.get(r.site_id)) for r in der_rows)
        return len(der_rows)

    def context(self, protocol: str) -> AdapterContext:
        return AdapterContext(self.bus, self.clock, protocol)

    def add_adapter(self, adapter: Adapter) -> None:
        self.adapters[adapter.protocol] = adapter

    async def start(self) -> None:
        await self.bus.start()
        self.tracker = FleetTracker(
            self.bus,
            self.fleet,
            self.clock,
            self.telemetry,
            flush_s=self.settings.telemetry_flush_s,
            stale_after_s=self.settings.stale_after_s,
        )
        await self.tracker.start()
        self._subscriptions.append(await self.bus.subscribe(f"{DER_STATUS}.>", self._on_discovery))
        for adapter in self.adapters.values():
            await adapter.start()
        with self.engine.connect() as conn:
            registered = reg.list_ders(conn, scope=TenantScope.utility(), limit=None)
        for der in registered:
            adapter = self.adapters.get(der.protocol)
            if adapter is not None and der.enabled:
                await adapter.register_device(der)
        if self.network is not None and registered:
            from derms.orchestration.service import OrchestrationService, ServiceOptions

            self.orchestration = OrchestrationService(
                self.engine,
                self.bus,
                self.clock,
                self.fleet,
                self.network,
                self.bridge,
                self.adapters,
                ServiceOptions(tick_s=self.settings.orchestration_tick_s),
            )
            await self.orchestration.start()

    async def _on_discovery(self, message: Message) -> None:
        """A device reported its own ratings (2030.5 DERCapability/DERSettings, ...): record them
        in the registry, with history, and refresh the fleet state."""
        data = message.data
        if not isinstance(data, dict) or data.get("detail") != "discovered" or not data.get("capabilities"):
            return
        der_id = data.get("der_id")
        protocol = message.subject.rsplit(".", 1)[-1]
        try:
            caps = capabilities_from_json(dict(data["capabilities"]))
            with self.engine.begin() as conn:
                der = reg.get_der(conn, str(der_id), scope=TenantScope.utility())
                if der.protocol != protocol or der.capabilities == caps:
                    return
                reg.update_der(
                    conn,
                    replace(der, capabilities=caps),
                    scope=TenantScope.utility(),
                    at=self.clock.now(),
                    actor=f"adapter:{protocol}",
                )
        except (NotFound, TypeError, ValueError) as exc:
            log.warning(
                "ignored device-reported capabilities", der_id=der_id, protocol=protocol, error=str(exc)
            )
            return
        self.reload_fleet()

    async def stop(self) -> None:
        if self.orchestration is not None:
            await self.orchestration.stop()
        for sub in self._subscriptions:
            await sub.unsubscribe()
        self._subscriptions.clear()
        for adapter in self.adapters.values():
            await adapter.stop()
        if self.tracker is not None:
            await self.tracker.stop()
        await self.bus.close()
        self.engine.dispose()

    async def send_control(
        self,
        der: Der,
        control: Control,
        *,
        start: datetime | None = None,
        duration: timedelta,
        reason: Reason,
    ) -> NativeCommand:
        """Translate a control through the bridge and hand it to the DER's adapter.

        Raises ``LimitViolation`` (outside device limits, or no translator) or ``NotFound``
        (no adapter is running for the DER's protocol).
        """
        begin = start or self.clock.now()
        setpoint = Setpoint(der.id, control, begin, begin + duration, reason)
        command = self.bridge.translate(der, setpoint, uuid.uuid4().hex)
        adapter = self.adapters.get(der.protocol)
        if adapter is None:
            raise NotFound("adapter", der.protocol)
        await adapter.send(command)
        log.info("command sent", der_id=der.id, command_id=command.command_id, control=str(control.kind))
        return command
