"""Keeps a :class:`FleetState` current from bus events and persists telemetry in batches."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import structlog

from derms.bus import Bus, Message, Subscription
from derms.core.clock import Clock
from derms.core.columns import TelemetryColumns, columns_from_batch, to_ms
from derms.core.device_state import DEVICE_STATE, decode_device_states
from derms.core.events import DER_STATUS, TELEMETRY
from derms.core.tasks import cancel_and_wait
from derms.fleet.state import FleetState
from derms.store.telemetry import TelemetryStore

log = structlog.get_logger(__name__)


class FleetTracker:
    """Applies ``telemetry.>``, ``der.status.>`` and ``der.state.>`` (kind-specific device
    state) events to the fleet state and, when a
    :class:`TelemetryStore` is given, writes telemetry to it in batches of up to
    ``flush_rows`` rows or every ``flush_s`` seconds, whichever comes first."""

    def __init__(
        self,
        bus: Bus,
        state: FleetState,
        clock: Clock,
        store: TelemetryStore | None = None,
        *,
        flush_rows: int = 50_000,
        flush_s: float = 1.0,
        stale_after_s: float | None = None,
    ) -> None:
        self.bus = bus
        self.state = state
        self.clock = clock
        self.store = store
        self.flush_rows = flush_rows
        self.flush_s = flush_s
        self.stale_after_s = stale_after_s
        self._pending: list[TelemetryColumns] = []
        self._pending_rows = 0
        self._subs: list[Subscription] = []
        self._flusher: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self.received = 0
        self.unknown: set[str] = set()
        self.written = 0

    async def start(self) -> None:
        self._subs = [
            await self.bus.subscribe(f"{TELEMETRY}.>", self._on_telemetry, durable="fleet-telemetry"),
            await self.bus.subscribe(f"{DER_STATUS}.>", self._on_status, durable="fleet-status"),
            await self.bus.subscribe(
                f"{DEVICE_STATE}.>", self._on_device_state, durable="fleet-device-state"
            ),
        ]
        self._flusher = asyncio.create_task(self._flush_periodically(), name="fleet-flush")

    async def stop(self) -> None:
        for sub in self._subs:
            await sub.unsubscribe()
        await cancel_and_wait(self._flusher)
        await self.flush()

    async def _on_telemetry(self, message: Message) -> None:
        try:
            cols, unknown = columns_from_batch(message.data, self.state.index)
        except ValueError as exc:
            log.warning("dropped malformed telemetry batch", subject=message.subject, error=str(exc))
            return
        if unknown:
            new = set(unknown) - self.unknown
            if new:
                log.warning(
                    "telemetry from unregistered DERs", subject=message.subject, der_ids=sorted(new)[:20]
                )
            self.unknown |= new
        self.state.apply_telemetry(cols)
        self.received += len(cols)
        if self.store is not None and len(cols):
            self._pending.append(cols)
            self._pending_rows += len(cols)
            if self._pending_rows >= self.flush_rows:
                await self.flush()

    async def _on_status(self, message: Message) -> None:
        data: dict[str, Any] = message.data
        der_id = data.get("der_id")
        if isinstance(der_id, str):
            self.state.set_online(der_id, bool(data.get("online")))

    async def _on_device_state(self, message: Message) -> None:
        try:
            cols, unknown = decode_device_states(message.data, self.state.index)
        except ValueError as exc:
            log.warning("dropped malformed device state batch", subject=message.subject, error=str(exc))
            return
        new = set(unknown) - self.unknown
        if new:
            log.warning(
                "device state of unregistered DERs", subject=message.subject, der_ids=sorted(new)[:20]
            )
            self.unknown |= new
        self.state.apply_device_state(cols)

    async def _flush_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.flush_s)
            await self.flush()
            if self.stale_after_s is not None:
                self.state.mark_stale(to_ms(self.clock.now()), self.stale_after_s)

    async def flush(self) -> None:
        """Write pending telemetry now (in a worker thread; the event loop keeps running)."""
        async with self._lock:
            if not self._pending or self.store is None:
                return
            batch = _concat(self._pending)
            self._pending, self._pending_rows = [], 0
            self.written += await asyncio.to_thread(self.store.ingest, batch)


def _concat(parts: list[TelemetryColumns]) -> TelemetryColumns:
    if len(parts) == 1:
        return parts[0]
    fields = TelemetryColumns.__dataclass_fields__
    return TelemetryColumns(**{name: np.concatenate([getattr(p, name) for p in parts]) for name in fields})
