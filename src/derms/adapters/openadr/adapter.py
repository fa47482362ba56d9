"""The OpenADR 2.0b VTN as a derms adapter.

Commands from the bridge (:mod:`derms.bridge.openadr`) carry a 2.0b :class:`Event`; the VTN
queues it for its VENs' next poll (state SENT), the VEN's ``oadrCreatedEvent`` or
``oadrCreateOpt`` acknowledges it (ACKNOWLEDGED on optIn, FAILED with ``customer:opt_out`` on
optOut), and the clock moves it to ACTIVE and COMPLETED. ``oadrUpdateReport`` data become
:class:`Telemetry` (2.0b reports count load positive; derms counts consumption negative).
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta
from typing import ClassVar

from sqlalchemy import Engine

from derms.adapters.base import Adapter, AdapterContext, NativeCommand
from derms.adapters.openadr.oadr3.app import BASE_PATH as OADR3_BASE
from derms.adapters.openadr.oadr3.app import build as build_oadr3
from derms.adapters.openadr.oadr3.auth import Client
from derms.adapters.openadr.oadr3.dispatch import Dispatch3
from derms.adapters.openadr.oadr3.models import Event as Event3
from derms.adapters.openadr.oadr3.models import Report as Report3
from derms.adapters.openadr.oadr3.models import Stored
from derms.adapters.openadr.oadr3.store import Vtn3Store
from derms.adapters.openadr.oadr3.telemetry import report_telemetry
from derms.adapters.openadr.oadr3.vtn import Vtn3
from derms.adapters.openadr.oadr20b.model import Event, ReportDescription, ReportValue
from derms.adapters.openadr.oadr20b.push import PushDelivery
from derms.adapters.openadr.oadr20b.schema import SchemaValidator, find_schema
from derms.adapters.openadr.oadr20b.server import HttpServer, TlsFiles, make_app
from derms.adapters.openadr.oadr20b.signature import Signer, Verifier
from derms.adapters.openadr.oadr20b.telemetry import to_telemetry
from derms.adapters.openadr.oadr20b.vocabulary import EventStatus, OptType
from derms.adapters.openadr.oadr20b.vtn import VenProfile, VenRecord, Vtn
from derms.adapters.openadr.persistence import VtnStore, restore
from derms.adapters.openadr.settings import OpenAdrSettings
from derms.core.controls import ControlKind
from derms.core.der import Der
from derms.core.dispatch import CommandState
from derms.core.errors import NotFound
from derms.core.tasks import cancel_and_wait

PROTOCOL = "openadr"


class OpenAdrVtnAdapter(Adapter):
    protocol: ClassVar[str] = PROTOCOL
    native_controls: ClassVar[frozenset[ControlKind]] = frozenset(
        {
            ControlKind.LOAD_SHED,
            ControlKind.LOAD_LIMIT,
            ControlKind.ACTIVE_POWER_TARGET,
            ControlKind.PRICE_SIGNAL,
        }
    )

    def __init__(
        self, context: AdapterContext, settings: OpenAdrSettings, engine: Engine | None = None
    ) -> None:
        super().__init__(context)
        self.settings = settings
        path = find_schema(settings.schema_path)
        validator = SchemaValidator(path) if path is not None else None
        signer = None
        if settings.sign_messages:
            if not (settings.tls_certfile and settings.tls_keyfile):
                raise ValueError("sign_messages needs tls_certfile and tls_keyfile")
            signer = Signer.from_files(settings.tls_certfile, settings.tls_keyfile)
        self.vtn = Vtn(
            settings.vtn_id,
            context.clock,
            poll_freq=timedelta(seconds=settings.poll_freq_s),
            report_granularity=timedelta(seconds=settings.report_granularity_s),
            validator=validator,
            profiles=[
                VenProfile(
                    ven_name=v.ven_name,
                    fingerprint=v.fingerprint,
                    ven_id=v.ven_id,
                    group_ids=tuple(v.group_ids),
                    party_id=v.party_id,
                    resource_ids=tuple(v.resource_ids),
                )
                for v in settings.vens
            ],
            open_enrolment=settings.open_enrolment,
            listener=self,
            signer=(lambda payload: signer.sign(payload, context.clock.now()))
            if signer is not None
            else None,
            verifier=Verifier(),
            require_signatures=settings.require_signatures,
            store=VtnStore(engine) if engine is not None else None,
        )
        if engine is not None:
            self.vtn.restore(*restore(VtnStore(engine).load()))
        tls = None
        if settings.tls_certfile and settings.tls_keyfile and settings.tls_ca_certs:
            tls = TlsFiles(settings.tls_certfile, settings.tls_keyfile, settings.tls_ca_certs)
        self.server = HttpServer(make_app(self.vtn), settings.host, settings.port, tls)
        self.pusher = PushDelivery(self.vtn, tls=tls)
        self.vtn3: Vtn3 | None = None
        self.server3: HttpServer | None = None
        self.dispatch3: Dispatch3 | None = None
        if settings.oadr3_enabled:
            clients = [
                Client(c.client_id, c.client_secret, c.role, c.ven_name) for c in settings.oadr3_clients
            ]  # type: ignore[arg-type]
            store3 = Vtn3Store(engine) if engine is not None else None
            app3, self.vtn3, _ = build_oadr3(clients, context.clock, store3)
            self.vtn3.on_change = self._oadr3_changed
            self.server3 = HttpServer(app3, settings.host, settings.oadr3_port, tls)
            ven_names = frozenset(c.ven_name for c in settings.oadr3_clients if c.ven_name)
            self.dispatch3 = Dispatch3(self.vtn3, settings.oadr3_program_name, ven_names, self._report3)
        self._ders: dict[str, Der] = {}
        self._by_address: dict[str, str] = {}
        self._commands: dict[str, NativeCommand] = {}
        self._states: dict[str, CommandState] = {}
        self._ticker: asyncio.Task[None] | None = None
        self._pending: list[asyncio.Task[None]] = []

    @property
    def url(self) -> str:
        """Base URL VENs use (``…/OpenADR2/Simple/2.0b``)."""
        return f"{self.server.url}/OpenADR2/Simple/2.0b"

    @property
    def url3(self) -> str:
        """Base URL of the 3.0.1 VTN (``…/openadr3/3.0.1``)."""
        if self.server3 is None:
            raise RuntimeError("the 3.0.1 VTN is not enabled")
        return f"{self.server3.url}{OADR3_BASE}"

    async def start(self) -> None:
        await self.server.start()
        self.pusher.start()
        if self.server3 is not None and self.vtn3 is not None:
            await self.vtn3.start()
            await self.server3.start()
        self._ticker = asyncio.create_task(self._tick())

    async def stop(self) -> None:
        await cancel_and_wait(self._ticker)
        self._ticker = None
        await self.pusher.stop()
        await self.server.stop()
        if self.server3 is not None and self.vtn3 is not None:
            await self.server3.stop()
            await self.vtn3.stop()

    async def register_device(self, der: Der) -> None:
        self._ders[der.id] = der
        self._by_address[der.address] = der.id

    async def send(self, command: NativeCommand) -> None:
        if command.der_id not in self._ders:
            raise NotFound("der", command.der_id)
        event = command.payload
        if isinstance(event, Event3) and self.dispatch3 is not None:
            ven_name = self._ders[command.der_id].address.partition("/")[0]
            await self.dispatch3.send(command, event, ven_name)
            return
        if not isinstance(event, Event):
            await self.context.report_command(
                command.command_id, command.der_id, CommandState.FAILED, "payload is not an OpenADR event"
            )
            return
        event = replace(event, created=self.context.clock.now())
        if event.event_id in self.vtn.events:
            self.vtn.modify_event(event)
        else:
            self.vtn.create_event(event)
        self._commands[event.event_id] = command
        await self._report(
            event.event_id, CommandState.SENT, "queued for the VEN (pushed, or at its next oadrPoll)"
        )

    async def cancel(self, command_id: str) -> None:
        """Cancel a sent event (eventStatus=cancelled, modificationNumber+1; 3.0.1: deleted).

        Raises NotFound for a command this adapter does not hold (never sent, or a 3.0.1
        command already finished)."""
        if self.dispatch3 is not None and await self.dispatch3.cancel(command_id):
            return
        if command_id not in self.vtn.events:
            raise NotFound("openadr command", command_id)
        self.vtn.cancel_event(command_id)
        await self._report(command_id, CommandState.CANCELLED, "event cancelled")

    async def _report(self, event_id: str, state: CommandState, detail: str) -> None:
        command = self._commands.get(event_id)
        if command is None or self._states.get(event_id) == state:
            return
        self._states[event_id] = state
        await self.context.report_command(command.command_id, command.der_id, state, detail)

    async def _report3(self, command: NativeCommand, state: CommandState, detail: str) -> None:
        await self.context.report_command(command.command_id, command.der_id, state, detail)

    def speaks_oadr3(self, ven_name: str) -> bool:
        """Commands for this VEN go out as 3.0.1 events (see :mod:`derms.bridge.openadr3`)."""
        return self.dispatch3 is not None and self.dispatch3.speaks(ven_name)

    def dispatch_program_id(self) -> str:
        if self.dispatch3 is None:
            raise RuntimeError("the 3.0.1 VTN is not enabled")
        return self.dispatch3.program_id()

    async def _tick(self) -> None:
        while True:
            now = self.context.clock.now()
            if self.dispatch3 is not None:
                await self.dispatch3.tick(now)
            for event_id in list(self._commands):
                event = self.vtn.events.get(event_id)
                state = self._states.get(event_id)
                if event is None or state in (
                    CommandState.FAILED,
                    CommandState.CANCELLED,
                    CommandState.COMPLETED,
                ):
                    continue
                status = event.status_at(now)
                if status is EventStatus.COMPLETED:
                    await self._report(event_id, CommandState.COMPLETED, "event completed")
                elif status is EventStatus.ACTIVE and state is CommandState.ACKNOWLEDGED:
                    await self._report(event_id, CommandState.ACTIVE, "event active")
            # paced in wall time: states come from the injected clock, but a ManualClock's sleep
            # would advance it, so the ticker must not be the one moving time
            await asyncio.sleep(self.settings.status_tick_s)

    def _der_for(self, ven_name: str, resource_id: str | None) -> str | None:
        if resource_id:
            found = self._by_address.get(f"{ven_name}/{resource_id}")
            if found:
                return found
        return self._by_address.get(ven_name)

    def _oadr3_changed(self, kind: str, operation: str, obj: Stored) -> None:
        if kind == "REPORT" and operation != "DELETE" and isinstance(obj, Report3):
            samples = report_telemetry(obj, self._der_for, self.context.clock.now())
            if samples:
                self._pending.append(asyncio.create_task(self.context.publish_telemetry(samples)))
            if self.dispatch3 is not None:
                self._pending.append(asyncio.create_task(self.dispatch3.changed(kind, obj)))
            self._pending = [t for t in self._pending if not t.done()]

    # ---------------------------------------------------------------- VtnListener

    async def ven_registered(self, ven: VenRecord) -> None:
        known = [d for a, d in self._by_address.items() if a.partition("/")[0] == ven.ven_name]
        for der_id in known:
            await self.context.publish_status(der_id, True, f"VEN {ven.ven_id} registered")
        if not known:
            await self.context.device_discovered(ven.ven_name, {"ven_id": ven.ven_id, "protocol": PROTOCOL})

    async def ven_cancelled(self, ven: VenRecord) -> None:
        for address, der_id in self._by_address.items():
            if address.partition("/")[0] == ven.ven_name:
                await self.context.publish_status(der_id, False, "registration cancelled")

    async def event_response(self, ven: VenRecord, event: Event, opt_type: OptType) -> None:
        if opt_type is OptType.OPT_IN:
            await self._report(event.event_id, CommandState.ACKNOWLEDGED, f"VEN {ven.ven_name} opted in")
        else:
            await self._report(event.event_id, CommandState.FAILED, f"customer:opt_out (VEN {ven.ven_name})")

    async def report_values(
        self, ven: VenRecord, points: list[tuple[ReportDescription, ReportValue]]
    ) -> None:
        samples = to_telemetry(points, lambda resource: self._der_for(ven.ven_name, resource))
        await self.context.publish_telemetry(samples)


def create_adapter(
    context: AdapterContext, settings: OpenAdrSettings, engine: Engine | None = None
) -> OpenAdrVtnAdapter:
    """Factory the platform calls; with ``engine`` (migrated to ``openadr_0002``) VTN state is durable."""
    return OpenAdrVtnAdapter(context, settings, engine)
