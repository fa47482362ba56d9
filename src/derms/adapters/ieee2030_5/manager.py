"""Business rules of the 2030.5 server: registration, event publication, metering, responses.

Managers sit between the thin HTTP routes and the repository. Device-facing methods take the
caller's :class:`DeviceScope`; they raise :class:`derms.core.errors.NotFound` for anything
outside it and :class:`derms.core.errors.ValidationFailed` for input that breaks a rule.
Side effects for the platform (telemetry, command states, discovered devices) go to a
:class:`PlatformSink`; changed resources are announced to a change listener (subscriptions).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Protocol

from envoy_schema.server.schema.sep2.der import (
    DERAvailability,
    DERControlBase,
    DERSettings,
    DERStatus,
)
from envoy_schema.server.schema.sep2.end_device import EndDeviceRequest
from envoy_schema.server.schema.sep2.log_events import LogEvent
from envoy_schema.server.schema.sep2.metering_mirror import MirrorMeterReading, MirrorUsagePoint
from envoy_schema.server.schema.sep2.pub_sub import Subscription
from envoy_schema.server.schema.sep2.response import Response

from derms.adapters.ieee2030_5 import hrefs, telemetry
from derms.adapters.ieee2030_5.events import EventState, event_state, list_order, superseded_by
from derms.adapters.ieee2030_5.identity import normalise_lfdi, registration_pin, sfdi_from_lfdi
from derms.adapters.ieee2030_5.mappers import make_mrid, scaled
from derms.adapters.ieee2030_5.records import (
    ControlRecord,
    CurvePoint,
    CurveRecord,
    DefaultControlRecord,
    EndDeviceRecord,
    LogEventRecord,
    MirrorUsagePointRecord,
    ProgramRecord,
    ReadingRecord,
    ResponseRecord,
    SubscriptionRecord,
)
from derms.adapters.ieee2030_5.repository import Repository
from derms.adapters.ieee2030_5.schema import DERCapability
from derms.adapters.ieee2030_5.scope import DeviceScope
from derms.core.clock import Clock
from derms.core.dispatch import CommandState
from derms.core.errors import NotFound, ValidationFailed
from derms.core.telemetry import Telemetry

RESPONSE_STATES: dict[int, CommandState] = {
    1: CommandState.ACKNOWLEDGED,  # event received
    2: CommandState.ACTIVE,  # event started
    3: CommandState.COMPLETED,  # event completed
    4: CommandState.FAILED,  # user chose to opt out
    5: CommandState.ACKNOWLEDGED,  # user chose to opt in
    6: CommandState.CANCELLED,  # event cancelled
    7: CommandState.SUPERSEDED,  # event superseded
    8: CommandState.COMPLETED,  # partially completed, user opted out
    9: CommandState.COMPLETED,  # partially completed, user opted in
    10: CommandState.COMPLETED,  # completed, no user participation
    11: CommandState.ACKNOWLEDGED,  # user acknowledged
    12: CommandState.FAILED,  # cannot be displayed
    13: CommandState.SUPERSEDED,  # aborted due to an alternate server's event
    14: CommandState.SUPERSEDED,  # aborted due to another program's event
    252: CommandState.FAILED,  # rejected: control parameter not applicable
    253: CommandState.FAILED,  # rejected: invalid event
    254: CommandState.FAILED,  # rejected: event received late
}
"""Response status (2030.5-2018 Table 27, DER rows) → platform command state."""


def base_problems(base: DERControlBase) -> list[str]:
    """Rule violations in a DERControlBase: no mode set, or a power-of-ten multiplier outside [-9, 9]."""
    problems = []
    if not any(name.startswith("opMod") and value is not None for name, value in base):
        problems.append("a DERControl needs at least one opMod* value")
    for name, value in base:
        multiplier = getattr(value, "multiplier", None)
        if multiplier is not None and not -9 <= multiplier <= 9:
            problems.append(f"{name} multiplier {multiplier} outside [-9, 9]")
    return problems


class PlatformSink(Protocol):
    """Where the server reports to the platform (implemented by the adapter)."""

    async def telemetry(self, samples: list[Telemetry]) -> None: ...

    async def command_state(self, command_id: str, der_id: str, state: CommandState, detail: str) -> None: ...

    async def discovered(self, lfdi: str, info: dict[str, object]) -> None: ...


ChangeListener = Callable[[str], Awaitable[None]]


@dataclasses.dataclass(frozen=True, slots=True)
class ServerPolicy:
    """Tunables of the server (pollRate/postRate per 2030.5-2018 9.2/10.5)."""

    pen: int = 53630
    poll_rate: int = 60
    post_rate: int = 60
    allow_in_band: bool = True
    default_tenant: str = "default"
    retention_s: int = 86_400
    """How long ended events stay in lists."""


class Manager:
    """All server rules; one instance per server."""

    def __init__(self, repo: Repository, clock: Clock, sink: PlatformSink, policy: ServerPolicy) -> None:
        self.repo = repo
        self.clock = clock
        self.sink = sink
        self.policy = policy
        self._listeners: list[ChangeListener] = []

    def now(self) -> int:
        return int(self.clock.now().timestamp())

    def on_change(self, listener: ChangeListener) -> None:
        self._listeners.append(listener)

    async def _changed(self, *paths: str) -> None:
        for listener in self._listeners:
            for path in paths:
                await listener(path)

    # --- registration ------------------------------------------------------------------
    def register_out_of_band(
        self,
        lfdi: str,
        tenant_id: str,
        *,
        der_id: str | None = None,
        pin: int | None = None,
        aggregator_lfdi: str | None = None,
        is_aggregator: bool = False,
    ) -> EndDeviceRecord:
        """Operator registration (CSIP 5.2.2 out-of-band); idempotent for a known LFDI."""
        lfdi = normalise_lfdi(lfdi)
        existing = self.repo.end_device_by_lfdi(lfdi)
        if existing is not None:
            if der_id and existing.der_id != der_id:
                self.repo.link_der(existing.id, der_id)
            return existing
        aggregator_id = None
        if aggregator_lfdi is not None:
            agg = self.repo.end_device_by_lfdi(normalise_lfdi(aggregator_lfdi))
            if agg is None or not agg.is_aggregator:
                raise NotFound("aggregator", aggregator_lfdi)
            aggregator_id = agg.id
        now = self.now()
        edev_id = self.repo.next_id()
        return self.repo.add_end_device(
            EndDeviceRecord(
                id=edev_id,
                lfdi=lfdi,
                sfdi=sfdi_from_lfdi(lfdi),
                tenant_id=tenant_id,
                changed_time=now,
                pin=pin if pin is not None else registration_pin(int(lfdi[-8:], 16)),
                registered_time=now,
                is_aggregator=is_aggregator,
                aggregator_id=aggregator_id,
                der_id=der_id,
                post_rate=self.policy.post_rate,
            )
        )

    async def register_in_band(self, scope: DeviceScope, body: EndDeviceRequest) -> tuple[int, bool]:
        """POST EndDevice (2030.5-2018 9.4.3, CSIP in-band). Returns (edev id, created).

        A device certificate may only register itself; an aggregator registers devices it
        will manage. Raises ``ValidationFailed`` for a mismatched LFDI/SFDI.
        """
        if body.lFDI is None:
            raise ValidationFailed(["EndDevice lFDI is required"])
        lfdi = normalise_lfdi(body.lFDI)
        if body.sFDI != sfdi_from_lfdi(lfdi):
            raise ValidationFailed([f"sFDI {body.sFDI} does not match lFDI {lfdi}"])
        if not scope.is_aggregator and lfdi != scope.lfdi:
            raise ValidationFailed(["a device may only register its own LFDI"])
        existing = self.repo.end_device_by_lfdi(lfdi)
        if existing is not None:
            if existing.id not in scope.edev_ids and existing.lfdi != scope.lfdi:
                raise ValidationFailed(["LFDI already registered"])
            return existing.id, False
        if not self.policy.allow_in_band and not scope.is_aggregator:
            raise ValidationFailed(["in-band registration is disabled; register out of band"])
        record = self.register_out_of_band(
            lfdi,
            scope.tenant_id or self.policy.default_tenant,
            aggregator_lfdi=scope.lfdi if scope.is_aggregator else None,
        )
        record.device_category = body.deviceCategory
        self.repo.save(record)
        await self.sink.discovered(
            lfdi, {"sfdi": record.sfdi, "edev": hrefs.edev(record.id), "how": "in-band"}
        )
        await self._changed(hrefs.EDEV_LIST)
        return record.id, True

    # --- programs, controls, defaults and curves (operator side) -----------------------
    def create_program(
        self, tenant_id: str, description: str, primacy: int, edev_ids: frozenset[int] | None = None
    ) -> ProgramRecord:
        if not 0 <= primacy <= 255:
            raise ValidationFailed([f"primacy {primacy} outside 0..255"])
        program_id = self.repo.next_id()
        return self.repo.add_program(
            ProgramRecord(
                id=program_id,
                mrid=make_mrid("derp", program_id, self.policy.pen),
                tenant_id=tenant_id,
                description=description,
                primacy=primacy,
                edev_ids=edev_ids,
            )
        )

    async def create_control(
        self,
        program_id: int,
        base: DERControlBase,
        start: int,
        duration: int,
        *,
        description: str = "",
        randomize_start: int | None = None,
        randomize_duration: int | None = None,
        command_id: str | None = None,
        der_id: str | None = None,
    ) -> ControlRecord:
        """Publish a DERControl; events it supersedes in the same program are reported SUPERSEDED."""
        program = self.repo.program(program_id)
        problems = base_problems(base)
        if duration <= 0:
            problems.append("duration must be positive")
        if problems:
            raise ValidationFailed(problems)
        control_id = self.repo.next_id()
        record = self.repo.add_control(
            ControlRecord(
                id=control_id,
                program_id=program.id,
                mrid=make_mrid("derc", command_id or control_id, self.policy.pen),
                description=description or f"control {control_id}",
                creation_time=self.now(),
                start=start,
                duration=duration,
                base=base,
                randomize_start=randomize_start,
                randomize_duration=randomize_duration,
                command_id=command_id,
                der_id=der_id,
            )
        )
        siblings = self.repo.controls_of(program.id)
        for older in siblings:
            live = older.id != record.id and older.cancelled_time is None
            if live and older.command_id and older.der_id and superseded_by(older, [record]) is not None:
                await self.sink.command_state(
                    older.command_id, older.der_id, CommandState.SUPERSEDED, f"superseded by {record.mrid}"
                )
        await self._program_changed(program)
        return record

    async def cancel_control(self, control_id: int, *, randomized: bool = False) -> ControlRecord:
        """Cancel an event; it stays listed with status Cancelled (2030.5-2018 12.1.3.4)."""
        record = self.repo.control(control_id)
        if record.cancelled_time is None:
            record.cancelled_time = self.now()
            record.cancel_randomized = randomized
            record.version += 1
            self.repo.save(record)
            if record.command_id and record.der_id:
                await self.sink.command_state(
                    record.command_id, record.der_id, CommandState.CANCELLED, "cancelled"
                )
            await self._program_changed(self.repo.program(record.program_id))
        return record

    async def set_default(
        self, program_id: int, base: DERControlBase, **settings: int | None
    ) -> ProgramRecord:
        """Set the program's DefaultDERControl (one per program, CSIP 5.2.4)."""
        program = self.repo.program(program_id)
        problems = [p for p in base_problems(base) if "at least one" not in p]
        if problems:
            raise ValidationFailed(problems)
        version = program.default.version + 1 if program.default else 0
        program.default = DefaultControlRecord(
            mrid=make_mrid("dderc", f"{program_id}:{version}", self.policy.pen),
            base=base,
            version=version,
            **settings,
        )
        await self._program_changed(program)
        return program

    async def create_curve(
        self,
        program_id: int,
        curve_type: int,
        points: list[tuple[float, float]],
        *,
        y_ref_type: int,
        x_multiplier: int = 0,
        y_multiplier: int = 0,
        excitation: list[bool] | None = None,
        open_loop_tms: int | None = None,
        description: str = "",
    ) -> CurveRecord:
        """Add a DERCurve (2030.5-2018 10.10.4.3: 1..10 points, curveType 0..14)."""
        program = self.repo.program(program_id)
        problems = []
        if not 0 <= curve_type <= 14:
            problems.append(f"curveType {curve_type} outside 0..14")
        if not 1 <= len(points) <= 10:
            problems.append("a DERCurve has 1 to 10 points")
        for mult in (x_multiplier, y_multiplier):
            if not -9 <= mult <= 9:
                problems.append(f"multiplier {mult} outside [-9, 9]")
        if problems:
            raise ValidationFailed(problems)
        curve_id = self.repo.next_id()
        record = self.repo.add_curve(
            CurveRecord(
                id=curve_id,
                program_id=program.id,
                mrid=make_mrid("dc", curve_id, self.policy.pen),
                description=description or f"curve {curve_id}",
                creation_time=self.now(),
                curve_type=curve_type,
                points=tuple(
                    CurvePoint(
                        round(x / 10.0**x_multiplier),
                        round(y / 10.0**y_multiplier),
                        excitation[i] if excitation else None,
                    )
                    for i, (x, y) in enumerate(points)
                ),
                x_multiplier=x_multiplier,
                y_multiplier=y_multiplier,
                y_ref_type=y_ref_type,
                open_loop_tms=open_loop_tms,
            )
        )
        await self._program_changed(program)
        return record

    async def _program_changed(self, program: ProgramRecord) -> None:
        program.version += 1
        self.repo.save(program)
        await self.notify_program(program)

    async def notify_program(self, program: ProgramRecord, *, events_only: bool = False) -> None:
        """Announce the program's lists as changed to every device it is assigned to."""
        edevs = (
            [self.repo.end_devices[e] for e in program.edev_ids if e in self.repo.end_devices]
            if program.edev_ids is not None
            else [d for d in self.repo.end_devices.values() if d.tenant_id == program.tenant_id]
        )
        paths = []
        for edev in edevs:
            paths += [hrefs.derc_list(edev.id, program.id), hrefs.actderc(edev.id, program.id)]
            if not events_only:
                paths += [hrefs.dderc(edev.id, program.id), hrefs.curve_list(edev.id, program.id)]
        await self._changed(*paths)

    async def announce_transitions(self, since: int, now: int) -> int:
        """Notify subscribers of programs with an event starting or ending in ``(since, now]``.

        Event status moves from Scheduled to Active (and out of the ActiveDERControlList) with
        time alone (2030.5-2018 12.1.3), so subscribers are told at those instants. Returns the
        number of programs announced.
        """
        programs = {
            c.program_id
            for c in self.repo.controls.values()
            if c.cancelled_time is None and (since < c.start <= now or since < c.end <= now)
        }
        for program_id in sorted(programs):
            await self.notify_program(self.repo.program(program_id), events_only=True)
        return len(programs)

    # --- event views ---------------------------------------------------------------------
    def control_states(
        self, edev: EndDeviceRecord, program: ProgramRecord
    ) -> list[tuple[ControlRecord, EventState]]:
        """Listed events of ``program`` for ``edev`` with their status, in list order."""
        now = self.now()
        mine = self.repo.controls_of(program.id)
        others = [
            c for p in self.repo.programs_for(edev) if p.id != program.id for c in self.repo.controls_of(p.id)
        ]
        listed = [c for c in mine if c.end + self.policy.retention_s > now]
        return [(c, event_state(c, now, mine, others)) for c in list_order(listed)]

    # --- DER resources -----------------------------------------------------------------
    async def put_der_part(
        self,
        scope: DeviceScope,
        edev_id: int,
        body: DERCapability | DERSettings | DERStatus | DERAvailability,
    ) -> None:
        """PUT DERCapability/DERSettings/DERStatus/DERAvailability (2030.5-2018 10.10.4.4)."""
        edev = self.repo.end_device(scope, edev_id)
        match body:
            case DERCapability():
                edev.capability = body
            case DERSettings():
                edev.settings = body
            case DERStatus():
                edev.status = body
            case DERAvailability():
                edev.availability = body
        self.repo.save(edev)
        if isinstance(body, DERCapability | DERSettings) and edev.capability is not None:
            caps = telemetry.capabilities(edev.capability, edev.settings)
            await self.sink.discovered(
                edev.lfdi,
                {"der_id": edev.der_id, "capabilities": dataclasses.asdict(caps), "sfdi": edev.sfdi},
            )
        elif edev.der_id and isinstance(body, DERStatus):
            await self.sink.telemetry([telemetry.status_sample(edev.der_id, body)])
        elif edev.der_id and isinstance(body, DERAvailability):
            await self.sink.telemetry(
                [
                    Telemetry(
                        der_id=edev.der_id,
                        ts=self.clock.now(),
                        available=bool(body.statWAvail is None or body.statWAvail.value > 0),
                    )
                ]
            )

    # --- metering mirror ---------------------------------------------------------------
    async def create_mup(self, scope: DeviceScope, body: MirrorUsagePoint) -> tuple[int, bool]:
        """POST MirrorUsagePoint (2030.5-2018 10.5.4.2). Same mRID → update, not duplicate."""
        lfdi = normalise_lfdi(body.deviceLFDI)
        owner = self.repo.end_device_by_lfdi(lfdi)
        if owner is None or owner.id not in scope.edev_ids:
            raise ValidationFailed([f"deviceLFDI {lfdi} is not a registered device of this client"])
        existing = self.repo.mup_by_mrid(scope, body.mRID.upper())
        record = existing or self.repo.add_mup(
            MirrorUsagePointRecord(
                id=self.repo.next_id(),
                edev_id=owner.id,
                mrid=body.mRID.upper(),
                description=body.description or "",
                device_lfdi=lfdi,
                role_flags=body.roleFlags,
                service_category=int(body.serviceCategoryKind),
                status=body.status,
            )
        )
        for reading in body.mirrorMeterReadings or []:
            await self._accept_reading(record, reading)
        return record.id, existing is None

    async def post_readings(
        self, scope: DeviceScope, mup_id: int, readings: list[MirrorMeterReading]
    ) -> None:
        """POST MirrorMeterReading(s) to a MirrorUsagePoint; every reading is checked first."""
        record = self.repo.mup(scope, mup_id)
        for reading in readings:
            self._check_reading(record, reading)
        for reading in readings:
            await self._accept_reading(record, reading)

    def _check_reading(self, record: MirrorUsagePointRecord, reading: MirrorMeterReading) -> None:
        known = record.readings.get(reading.mRID.upper())
        if reading.readingType is None and known is None:
            raise ValidationFailed([f"MirrorMeterReading {reading.mRID} has no ReadingType"])
        mult = reading.readingType.powerOfTenMultiplier if reading.readingType else None
        if mult is not None and not -9 <= mult <= 9:
            raise ValidationFailed([f"powerOfTenMultiplier {mult} outside [-9, 9]"])

    async def _accept_reading(self, record: MirrorUsagePointRecord, reading: MirrorMeterReading) -> None:
        self._check_reading(record, reading)
        series = record.readings.get(reading.mRID.upper())
        if series is None or reading.readingType is not None:
            rt = reading.readingType
            assert rt is not None
            series = ReadingRecord(
                id=len(record.readings) + 1,
                mrid=reading.mRID.upper(),
                description=reading.description or "",
                uom=int(rt.uom) if rt.uom is not None else None,
                power_of_ten=rt.powerOfTenMultiplier or 0,
                flow_direction=int(rt.flowDirection) if rt.flowDirection is not None else None,
                kind=int(rt.kind) if rt.kind is not None else None,
                phase=int(rt.phase) if rt.phase is not None else None,
                last_value=series.last_value if series else None,
                last_time=series.last_time if series else None,
            )
            record.readings[series.mrid] = series
            self.repo.save(record)  # a new or redefined ReadingType; values stay in memory
        values = [reading.reading] if reading.reading is not None else []
        for reading_set in reading.mirrorReadingSets or []:
            values += reading_set.readings or []
        owner = self.repo.end_devices[record.edev_id]
        samples = []
        for value in values:
            if value.value is None:
                continue
            ts = value.timePeriod.start if value.timePeriod else (reading.lastUpdateTime or self.now())
            series.last_value = scaled(value.value, series.power_of_ten)
            series.last_time = ts
            if owner.der_id:
                sample = telemetry.reading_sample(
                    owner.der_id,
                    ts,
                    series.uom,
                    value.value,
                    series.power_of_ten,
                    series.flow_direction,
                    int(record.role_flags, 16),
                )
                if sample is not None:
                    samples.append(sample)
        if samples:
            await self.sink.telemetry(telemetry.merge(samples))

    # --- responses and log events ------------------------------------------------------
    async def post_response(self, scope: DeviceScope, body: Response) -> ResponseRecord:
        """A device's Response to an event; feeds the platform's command tracking."""
        lfdi = normalise_lfdi(body.endDeviceLFDI)
        edev = self.repo.end_device_by_lfdi(lfdi)
        if edev is None or edev.id not in scope.edev_ids:
            raise ValidationFailed([f"endDeviceLFDI {lfdi} is not this client's device"])
        control = self.repo.control_by_mrid(body.subject)
        if control is None:
            raise NotFound("DERControl", body.subject)
        self.repo.program_for(edev, control.program_id)
        status = int(body.status) if body.status is not None else 0
        if status not in RESPONSE_STATES:
            raise ValidationFailed([f"response status {status} is not defined for DER events"])
        record = ResponseRecord(
            self.repo.next_id(), edev.id, control.mrid, status, body.createdDateTime or self.now()
        )
        self.repo.add_response(record)
        if control.command_id and control.der_id:
            await self.sink.command_state(
                control.command_id, control.der_id, RESPONSE_STATES[status], f"2030.5 response {status}"
            )
        return record

    def post_log_event(self, scope: DeviceScope, edev_id: int, body: LogEvent) -> LogEventRecord:
        edev = self.repo.end_device(scope, edev_id)
        record = LogEventRecord(
            id=self.repo.next_id(),
            edev_id=edev.id,
            created=body.createdDateTime,
            code=body.logEventCode,
            log_id=body.logEventID,
            pen=body.logEventPEN,
            function_set=int(body.functionSet),
            profile_id=int(body.profileID),
            details=body.details,
        )
        self.repo.add_log_event(record)
        return record

    # --- subscriptions -----------------------------------------------------------------
    def subscribe(self, scope: DeviceScope, edev_id: int, body: Subscription) -> SubscriptionRecord:
        """POST Subscription (2030.5-2018 9.5.4): only resources the device may read."""
        scope.require(edev_id)
        resource = body.subscribedResource
        if not (
            resource.startswith(f"{hrefs.edev(edev_id)}/")
            or resource == hrefs.edev(edev_id)
            or resource == hrefs.EDEV_LIST
        ):
            raise ValidationFailed([f"cannot subscribe to {resource}"])
        if not body.notificationURI.startswith("https://"):
            raise ValidationFailed(["notificationURI must be https"])
        record = SubscriptionRecord(
            id=self.repo.next_id(),
            edev_id=edev_id,
            resource=resource,
            notification_uri=body.notificationURI,
            limit=body.limit,
            encoding=int(body.encoding),
            level=body.level,
        )
        self.repo.add_subscription(record)
        return record

    def unsubscribe(self, scope: DeviceScope, edev_id: int, sub_id: int) -> None:
        self.repo.remove_subscription(self.repo.subscription(scope, edev_id, sub_id))
