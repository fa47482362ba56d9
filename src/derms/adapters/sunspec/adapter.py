"""The SunSpec adapter: polls many Modbus devices concurrently and writes verified controls.

A DER's ``address`` is ``host:port`` or ``host:port/unit``. Each device has its own poll
loop: connect, discover the model chain once, then read the measurement models every
``poll_interval_s``. A failed poll marks the device offline and reconnects with exponential
backoff; samples already read are published before anything else happens. Commands
(:class:`SunSpecWrite`) go through the same connection, one at a time per device.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import ClassVar

from derms.adapters.base import Adapter, AdapterContext, NativeCommand
from derms.adapters.sunspec.client import DeviceError, SunSpecClient
from derms.adapters.sunspec.commands import SunSpecWrite
from derms.adapters.sunspec.models import ModelBlock, SunSpecError
from derms.adapters.sunspec.settings import SunSpecSettings
from derms.adapters.sunspec.telemetry import to_telemetry
from derms.core.controls import ControlKind
from derms.core.der import Der
from derms.core.dispatch import CommandState
from derms.core.errors import NotFound
from derms.core.telemetry import Telemetry

log = logging.getLogger(__name__)

POLLED_MODELS = frozenset({101, 102, 103, 124, 701, 713, 802})
"""Models read on every poll; the others (nameplate, settings, controls) are read at discovery."""

_FAILURES = (DeviceError, SunSpecError, TimeoutError, ConnectionError, OSError)


def parse_address(address: str) -> tuple[str, int, int]:
    """``"10.0.0.5:502/3"`` -> ("10.0.0.5", 502, 3); the unit defaults to 1."""
    hostport, _, unit = address.partition("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit() or (unit and not unit.isdigit()):
        raise ValueError(f"SunSpec address must be host:port[/unit], not {address!r}")
    return host, int(port), int(unit or 1)


class DeviceSession:
    """One device's connection, model map and lock."""

    def __init__(self, der: Der, settings: SunSpecSettings) -> None:
        host, port, unit = parse_address(der.address)
        self.der = der
        self.client = SunSpecClient(host, port, unit, timeout_s=settings.timeout_s, retries=settings.retries)
        self.lock = asyncio.Lock()
        self.online = False
        self.failures = 0

    async def ensure_ready(self) -> None:
        if not self.client.connected:
            await self.client.connect()
        if not self.client.headers:
            await self.client.discover()
            await self.client.read_models()

    async def poll(self) -> Mapping[int, list[ModelBlock]]:
        async with self.lock:
            await self.ensure_ready()
            return await self.client.read_models(set(POLLED_MODELS))


class SunSpecAdapter(Adapter):
    """SunSpec Modbus master as a derms adapter."""

    protocol: ClassVar[str] = "sunspec"
    native_controls: ClassVar[frozenset[ControlKind]] = frozenset(
        {
            ControlKind.ACTIVE_POWER_LIMIT,
            ControlKind.GENERATION_LIMIT,
            ControlKind.FIXED_POWER_FACTOR,
            ControlKind.VOLT_VAR,
            ControlKind.CHARGE_DISCHARGE,
        }
    )

    def __init__(self, context: AdapterContext, settings: SunSpecSettings) -> None:
        super().__init__(context)
        self.settings = settings
        self.sessions: dict[str, DeviceSession] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._running = False
        self._poll_slots = asyncio.Semaphore(settings.max_concurrency)

    async def start(self) -> None:
        self._running = True
        for der_id in self.sessions:
            self._spawn(der_id)

    async def stop(self) -> None:
        self._running = False
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        for session in self.sessions.values():
            session.client.close()

    async def register_device(self, der: Der) -> None:
        self.sessions[der.id] = DeviceSession(der, self.settings)
        if self._running:
            self._spawn(der.id)

    def _spawn(self, der_id: str) -> None:
        if der_id not in self._tasks:
            self._tasks[der_id] = asyncio.create_task(self._poll_loop(der_id), name=f"sunspec poll {der_id}")

    def device_map(self, der_id: str) -> Mapping[int, list[ModelBlock]]:
        """The models last read from a device (empty before discovery); the bridge reads scale factors here."""
        session = self.sessions.get(der_id)
        return session.client.models if session else {}

    async def poll_once(self, der_id: str) -> Telemetry | None:
        """Poll one device now and publish its sample; ``None`` (and offline status) on failure."""
        session = self.sessions[der_id]
        async with self._poll_slots:
            try:
                models = await session.poll()
            except _FAILURES as exc:
                session.failures += 1
                session.client.close()
                session.client.headers = []
                if session.online or session.failures == 1:
                    log.warning("sunspec %s (%s) poll failed: %s", der_id, session.der.address, exc)
                    await self.context.publish_status(der_id, False, f"{type(exc).__name__}: {exc}")
                session.online = False
                return None
        sample = to_telemetry(der_id, models, self.context.clock.now())
        await self.context.publish_telemetry([sample])
        if not session.online:
            session.online = True
            session.failures = 0
            await self.context.publish_status(der_id, True, "polling")
        return sample

    async def _poll_loop(self, der_id: str) -> None:
        backoff = self.settings.backoff_initial_s
        while self._running:
            sample = await self.poll_once(der_id)
            if sample is None:
                await self.context.clock.sleep(backoff)
                backoff = min(backoff * 2, self.settings.backoff_max_s)
            else:
                backoff = self.settings.backoff_initial_s
                await self.context.clock.sleep(self.settings.poll_interval_s)

    async def send(self, command: NativeCommand) -> None:
        session = self.sessions.get(command.der_id)
        if session is None:
            raise NotFound("sunspec der", command.der_id)
        report = self.context.report_command
        payload = command.payload
        if not isinstance(payload, SunSpecWrite):
            await report(command.command_id, command.der_id, CommandState.FAILED,
                         f"SunSpec adapter cannot send {type(payload).__name__}")  # fmt: skip
            return
        await report(
            command.command_id, command.der_id, CommandState.SENT, f"{len(payload.writes)} point writes"
        )
        done: list[str] = []
        try:
            async with session.lock:
                await session.ensure_ready()
                for write in payload.writes:
                    held = await session.client.write_point(write.model_id, write.path, write.value)
                    done.append(f"{write.model_id}.{write.path}={held}")
        except (*_FAILURES, KeyError) as exc:
            detail = f"{type(exc).__name__}: {exc}" + (f" (after {', '.join(done)})" if done else "")
            log.warning("sunspec command %s to %s failed: %s", command.command_id, command.der_id, detail)
            await report(command.command_id, command.der_id, CommandState.FAILED, detail)
            return
        await report(
            command.command_id, command.der_id, CommandState.ACKNOWLEDGED, "verified: " + ", ".join(done)
        )


def create_adapter(context: AdapterContext, settings: SunSpecSettings | None = None) -> SunSpecAdapter:
    """Factory the platform calls."""
    return SunSpecAdapter(context, settings or SunSpecSettings())
