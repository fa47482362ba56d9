"""The 2030.5 adapter: the utility server wired to the platform through an AdapterContext."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import ClassVar

from envoy_schema.server.schema.sep2.identification import Link
from pydantic import BaseModel
from sqlalchemy import Engine

from derms.adapters.base import Adapter, AdapterContext, NativeCommand
from derms.adapters.ieee2030_5 import hrefs
from derms.adapters.ieee2030_5.app import create_app
from derms.adapters.ieee2030_5.batching import TelemetryBatcher
from derms.adapters.ieee2030_5.manager import Manager, ServerPolicy
from derms.adapters.ieee2030_5.mappers import make_mrid
from derms.adapters.ieee2030_5.native import DerControlCommand
from derms.adapters.ieee2030_5.notifier import Notifier
from derms.adapters.ieee2030_5.persistence import Persistence
from derms.adapters.ieee2030_5.repository import Repository
from derms.adapters.ieee2030_5.server import TlsServer
from derms.adapters.ieee2030_5.tls import CSIP_CIPHERS, client_context, server_context
from derms.core.controls import ControlKind
from derms.core.der import Der
from derms.core.dispatch import CommandState
from derms.core.errors import LimitViolation, NotFound
from derms.core.tasks import cancel_and_wait
from derms.core.telemetry import Telemetry

PROTOCOL = "ieee2030_5"
TRANSITION_TICK_S = 1.0
DISPATCH_PROGRAM = "derms dispatch"
"""Description of the per-device program that carries platform dispatch."""


class Ieee2030_5Settings(BaseModel):
    """Settings of the 2030.5 server. ``port`` 0 picks a free port (tests)."""

    host: str = "127.0.0.1"
    port: int = 8443
    cert_file: Path | None = None
    key_file: Path | None = None
    ca_file: Path | None = None
    ciphers: str = CSIP_CIPHERS
    proxy_header: str | None = None
    """Trust a PEM client certificate in this header (TLS-terminating proxy mode); off by default."""
    proxy_hosts: frozenset[str] = frozenset({"127.0.0.1", "::1"})
    """Peers allowed to forward a certificate in ``proxy_header``."""
    tenant_id: str = "default"
    pen: int = 53630
    poll_rate: int = 60
    post_rate: int = 60
    allow_in_band: bool = True
    dispatch_primacy: int = 1
    """Primacy of the per-device program that carries platform dispatch (1: contracted provider)."""
    telemetry_flush_s: float = 0.2
    """Readings and DER status are published to the bus in batches at this interval (and on stop)."""


class ContextSink:
    """PlatformSink that forwards to the adapter context (bus); telemetry goes through ``batcher``."""

    def __init__(self, context: AdapterContext, batcher: TelemetryBatcher) -> None:
        self._context = context
        self._batcher = batcher

    async def telemetry(self, samples: list[Telemetry]) -> None:
        await self._batcher.add(samples)

    async def command_state(self, command_id: str, der_id: str, state: CommandState, detail: str) -> None:
        await self._context.report_command(command_id, der_id, state, detail)

    async def discovered(self, lfdi: str, info: dict[str, object]) -> None:
        await self._context.device_discovered(lfdi, info)


class Ieee2030_5Adapter(Adapter):
    protocol: ClassVar[str] = PROTOCOL
    native_controls: ClassVar[frozenset[ControlKind]] = frozenset(
        {
            ControlKind.ACTIVE_POWER_LIMIT,
            ControlKind.ACTIVE_POWER_TARGET,
            ControlKind.FIXED_ACTIVE_POWER,
            ControlKind.FIXED_REACTIVE_POWER,
            ControlKind.FIXED_POWER_FACTOR,
            ControlKind.VOLT_VAR,
            ControlKind.VOLT_WATT,
            ControlKind.FREQ_WATT,
            ControlKind.WATT_PF,
            ControlKind.CONNECT,
            ControlKind.ENERGIZE,
            ControlKind.CHARGE_DISCHARGE,
            ControlKind.IMPORT_EXPORT_LIMIT,
            ControlKind.GENERATION_LIMIT,
            ControlKind.LOAD_LIMIT,
        }
    )

    def __init__(
        self, context: AdapterContext, settings: Ieee2030_5Settings, engine: Engine | None = None
    ) -> None:
        super().__init__(context)
        self.settings = settings
        self.repo = Repository.restore(Persistence(engine)) if engine is not None else Repository()
        self.telemetry = TelemetryBatcher(context.publish_telemetry, settings.telemetry_flush_s)
        self.manager = Manager(
            self.repo,
            context.clock,
            ContextSink(context, self.telemetry),
            ServerPolicy(
                pen=settings.pen,
                poll_rate=settings.poll_rate,
                post_rate=settings.post_rate,
                allow_in_band=settings.allow_in_band,
                default_tenant=settings.tenant_id,
            ),
        )
        self.app = create_app(
            self.manager, proxy_header=settings.proxy_header, proxy_hosts=settings.proxy_hosts
        )
        self.notifier: Notifier | None = None
        self._transitions: asyncio.Task[None] | None = None
        self._server: TlsServer | None = None
        self._dispatch_programs: dict[int, int] = {
            next(iter(p.edev_ids)): p.id
            for p in self.repo.programs.values()
            if p.description == DISPATCH_PROGRAM and p.edev_ids is not None and len(p.edev_ids) == 1
        }

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("server not started")
        return self._server.url

    async def start(self) -> None:
        s = self.settings
        if s.cert_file and s.key_file and s.ca_file:
            context = server_context(s.cert_file, s.key_file, s.ca_file, s.ciphers)
        elif s.proxy_header:
            context = None  # TLS terminated by the proxy
        else:
            raise ValueError("2030.5 needs cert_file, key_file and ca_file (or proxy_header behind a proxy)")
        client_tls = (
            client_context(s.cert_file, s.key_file, s.ca_file, s.ciphers, check_hostname=False)
            if s.cert_file and s.key_file and s.ca_file
            else None
        )
        self.notifier = Notifier(self.repo, self.app, self.context.clock, client_tls)
        self.manager.on_change(self.notifier.changed)
        self._server = TlsServer(self.app, context, s.host, s.port)
        await self._server.start()
        self.telemetry.start()
        self._transitions = asyncio.create_task(self._watch_transitions())

    async def _watch_transitions(self) -> None:
        """Once a second of wall time, announce events that started or ended on the clock.

        Wall-time ticks (not ``clock.sleep``) so a manual or scaled clock is only read, never
        driven, by the server.
        """
        last = self.manager.now()
        while True:
            await asyncio.sleep(TRANSITION_TICK_S)
            now = self.manager.now()
            if now > last:
                await self.manager.announce_transitions(last, now)
                last = now

    async def stop(self) -> None:
        await cancel_and_wait(self._transitions)
        self._transitions = None
        if self.notifier is not None:
            await self.notifier.close()
        if self._server is not None:
            await self._server.stop()
            self._server = None
        await self.telemetry.stop()  # after the server: every acknowledged reading is published

    async def register_device(self, der: Der) -> None:
        """Out-of-band registration: ``der.address`` is the device's LFDI."""
        edev = self.manager.register_out_of_band(der.address, der.tenant_id, der_id=der.id)
        self._dispatch_program(edev.id, der.tenant_id)

    def _dispatch_program(self, edev_id: int, tenant_id: str) -> int:
        program_id = self._dispatch_programs.get(edev_id)
        if program_id is None:
            program = self.manager.create_program(
                tenant_id, DISPATCH_PROGRAM, self.settings.dispatch_primacy, frozenset({edev_id})
            )
            program_id = self._dispatch_programs[edev_id] = program.id
        return program_id

    async def send(self, command: NativeCommand) -> None:
        """Publish the command as a DERControl in the device's dispatch program; reports SENT."""
        edev = self.repo.end_device_by_der(command.der_id)
        payload = command.payload
        if not isinstance(payload, DerControlCommand):
            raise LimitViolation(command.der_id, f"not a 2030.5 command: {type(payload).__name__}")
        program_id = self._dispatch_program(edev.id, edev.tenant_id)
        base = payload.base
        if payload.curve is not None:
            spec = payload.curve
            curve = await self.manager.create_curve(
                program_id,
                spec.curve_type,
                list(spec.points),
                y_ref_type=spec.y_ref_type,
                x_multiplier=spec.x_multiplier,
                y_multiplier=spec.y_multiplier,
                excitation=list(spec.excitation) if spec.excitation else None,
                open_loop_tms=spec.open_loop_tms,
            )
            base = base.model_copy(update={spec.mode: Link(href=hrefs.curve(edev.id, program_id, curve.id))})
        start = int(command.start.timestamp())
        await self.manager.create_control(
            program_id,
            base,
            start,
            max(1, int(command.end.timestamp()) - start),
            description=f"derms command {command.command_id}",
            randomize_start=payload.randomize_start,
            randomize_duration=payload.randomize_duration,
            command_id=command.command_id,
            der_id=command.der_id,
        )
        detail = "; ".join(
            f"{loss.field}: {loss.requested}→{loss.delivered} {loss.unit}" for loss in command.losses
        )
        await self.context.report_command(command.command_id, command.der_id, CommandState.SENT, detail)

    async def cancel(self, command_id: str) -> None:
        """Withdraw the DERControl(s) published for ``command_id`` (``tracker.Cancels``).

        The control's mRID is derived from the command id (``make_mrid("derc", command_id)``),
        and controls are persisted with the repository, so the mapping survives a restart. Each
        live control of the command (a resend publishes it again) gets EventStatus Cancelled,
        or Cancelled with Randomization when it carried randomization (IEEE 2030.5-2018
        12.1.3.4, EventStatus currentStatus 2/3); the command is reported CANCELLED and the
        program's subscribers are notified (:meth:`Manager.cancel_control`). Raises NotFound
        when no control of the command is still to run (never sent here, ended, cancelled).
        """
        found = self.repo.control_by_mrid(make_mrid("derc", command_id, self.settings.pen))
        now = self.manager.now()
        live = (
            []
            if found is None
            else [
                c
                for c in self.repo.controls_of(found.program_id)
                if c.command_id == command_id and c.cancelled_time is None and c.end > now
            ]
        )
        if not live:
            raise NotFound("2030.5 command", command_id)
        for control in live:
            await self.manager.cancel_control(control.id, randomized=True)


def create_adapter(
    context: AdapterContext, settings: Ieee2030_5Settings, engine: Engine | None = None
) -> Ieee2030_5Adapter:
    """Factory the platform calls; with ``engine`` (migrated to ``ieee2030_5_0001``) state is durable."""
    return Ieee2030_5Adapter(context, settings, engine)
