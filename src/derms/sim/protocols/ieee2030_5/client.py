"""A 2030.5 client device: discovers, registers, polls, obeys controls, posts readings and responses.

One :class:`Sep2Device` wraps one :class:`~derms.sim.device.SimulatedDevice` and talks to a
2030.5 server over mutual TLS with its own device certificate, following CSIP:

1. discovery: DeviceCapability → EndDeviceList (registering in band when its LFDI is not
   listed) → FunctionSetAssignments → DERProgramList → DERControlList, DefaultDERControl,
   DERCurveList;
2. DER registration: PUT DERCapability, DERSettings and DERStatus;
3. metering: one MirrorUsagePoint (roleFlags isMirror|isDER|isSubmeter) with W, var, V, Hz;
4. each poll (pollRate): pick the events in force (IEEE 2030.5-2018 12.1.3: lowest primacy
   wins a mode, then the latest creationTime; randomizeStart/Duration applied with a seeded
   draw), apply their modes, fall back to the program's DefaultDERControl for modes no
   event sets, post Responses (received, started, completed, cancelled, superseded), and
   post readings.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import httpx
from envoy_schema.server.schema.sep2.der import (
    DefaultDERControl,
    DERControlListResponse,
    DERControlResponse,
    DERProgramListResponse,
)
from envoy_schema.server.schema.sep2.device_capability import DeviceCapabilityResponse
from envoy_schema.server.schema.sep2.end_device import EndDeviceListResponse
from envoy_schema.server.schema.sep2.function_set_assignments import FunctionSetAssignmentsListResponse
from pydantic_xml import BaseXmlModel

from derms.adapters.ieee2030_5.identity import sfdi_from_lfdi
from derms.adapters.ieee2030_5.schema import SEP_XML, DERCurveList, DERCurveXml, parse
from derms.adapters.ieee2030_5.tls import client_context
from derms.core.clock import Clock
from derms.core.errors import LimitViolation
from derms.sim.device import SimulatedDevice
from derms.sim.protocols.ieee2030_5.translate import controls_for

M = TypeVar("M", bound=BaseXmlModel)
RECEIVED, STARTED, COMPLETED, CANCELLED, SUPERSEDED = 1, 2, 3, 6, 7
W, VAR, VOLT, HZ = 38, 63, 29, 33


@dataclass(frozen=True, slots=True)
class Sep2DeviceConfig:
    base_url: str
    cert: Path
    key: Path
    ca: Path
    lfdi: str
    seed: int = 0


@dataclass(slots=True)
class _Event:
    control: DERControlResponse
    primacy: int
    start: int
    end: int
    responses: set[int] = field(default_factory=set)


class Sep2Device:
    """One simulated DER behind a 2030.5 client."""

    def __init__(self, config: Sep2DeviceConfig, device: SimulatedDevice, clock: Clock) -> None:
        self.config = config
        self.device = device
        self.clock = clock
        self._rng = random.Random(config.seed)
        self._http = httpx.AsyncClient(
            base_url=config.base_url,
            verify=client_context(config.cert, config.key, config.ca),
            headers={"Accept": SEP_XML, "Content-Type": SEP_XML},
            timeout=10.0,
        )
        self.edev_href = ""
        self.poll_rate = 60
        self.mup_href: str | None = None
        self._der_href = ""
        self._events: dict[str, _Event] = {}
        self._defaults: list[tuple[int, DefaultDERControl]] = []
        self._curves: dict[str, DERCurveXml] = {}
        self.applied: dict[str, str] = {}
        """opMod* → mRID of the event (or ``default``) whose value the device obeys."""

    async def close(self) -> None:
        await self._http.aclose()

    def _now(self) -> int:
        return int(self.clock.now().timestamp())

    async def _get(self, href: str, model: type[M], listed: bool = False) -> M:
        response = await self._http.get(f"{href}{'&' if '?' in href else '?'}l=255" if listed else href)
        response.raise_for_status()
        return parse(response.content, model)

    async def _send(self, method: str, href: str, body: bytes) -> httpx.Response:
        response = await self._http.request(method, href, content=body)
        response.raise_for_status()
        return response

    # --- discovery and registration ----------------------------------------------------
    async def discover(self) -> None:
        dcap = await self._get("/dcap", DeviceCapabilityResponse)
        self.poll_rate = dcap.pollRate or self.poll_rate
        assert dcap.EndDeviceListLink is not None and dcap.MirrorUsagePointListLink is not None
        edevs = await self._get(dcap.EndDeviceListLink.href, EndDeviceListResponse, listed=True)
        mine = [e for e in edevs.EndDevice or [] if (e.lFDI or "").upper() == self.config.lfdi]
        if mine:
            self.edev_href = mine[0].href or ""
        else:
            body = (
                f'<EndDevice xmlns="urn:ieee:std:2030.5:ns"><sFDI>{sfdi_from_lfdi(self.config.lfdi)}</sFDI>'
                f"<changedTime>{self._now()}</changedTime><lFDI>{self.config.lfdi}</lFDI></EndDevice>"
            )
            self.edev_href = (await self._send("POST", dcap.EndDeviceListLink.href, body.encode())).headers[
                "location"
            ]
        self._der_href = f"{self.edev_href}/der/1"
        self._mup_list = dcap.MirrorUsagePointListLink.href

    async def register_der(self) -> None:
        """PUT DERCapability, DERSettings and DERStatus from the device's ratings."""
        caps = self.device.der.capabilities
        storage = self.device.der.kind.is_storage
        der_type = 83 if storage else 4
        ns = 'xmlns="urn:ieee:std:2030.5:ns"'
        w = f"<multiplier>0</multiplier><value>{round(min(caps.w_max, 32767))}</value>"
        charge = f"<multiplier>0</multiplier><value>{round(min(caps.w_max_consume, 32767))}</value>"
        cap = (
            f"<DERCapability {ns}><modesSupported>01F0C088</modesSupported>"
            + (f"<rtgMaxChargeRateW>{charge}</rtgMaxChargeRateW>" if storage else "")
            + f"<rtgMaxW>{w}</rtgMaxW>"
            + (
                f"<rtgMaxWh><multiplier>0</multiplier><value>{round(min(caps.wh_max, 32767))}</value></rtgMaxWh>"
                if storage and caps.wh_max
                else ""
            )
            + f"<type>{der_type}</type></DERCapability>"
        )
        settings = (
            f"<DERSettings {ns}><setGradW>2000</setGradW><setMaxW>{w}</setMaxW>"
            f"<updatedTime>{self._now()}</updatedTime></DERSettings>"
        )
        await self._send("PUT", f"{self._der_href}/dercap", cap.encode())
        await self._send("PUT", f"{self._der_href}/derg", settings.encode())
        await self.post_status()

    async def post_status(self) -> None:
        sample = self.device.telemetry()
        soc = (
            ""
            if sample is None or sample.soc is None
            else (
                f"<stateOfChargeStatus><dateTime>{self._now()}</dateTime><value>{round(sample.soc * 10000)}</value></stateOfChargeStatus>"
            )
        )
        body = (
            '<DERStatus xmlns="urn:ieee:std:2030.5:ns"><operationalModeStatus>'
            f"<dateTime>{self._now()}</dateTime><value>{2 if sample else 1}</value></operationalModeStatus>"
            f"<readingTime>{self._now()}</readingTime>{soc}</DERStatus>"
        )
        await self._send("PUT", f"{self._der_href}/ders", body.encode())

    # --- metering -------------------------------------------------------------------------
    def _mrid(self, index: int) -> str:
        return f"{self.config.lfdi[:24]}{index:08X}"

    async def post_readings(self) -> None:
        sample = self.device.telemetry()
        if sample is None:
            return
        values = {W: sample.p_w, VAR: sample.q_var, VOLT: sample.v_v, HZ: sample.f_hz}
        mult = {W: 0, VAR: 0, VOLT: -1, HZ: -2}
        if self.mup_href is None:
            readings = "".join(
                f"<MirrorMeterReading><mRID>{self._mrid(uom)}</mRID><description>uom {uom}</description>"
                f"<ReadingType><kind>37</kind><powerOfTenMultiplier>{mult[uom]}</powerOfTenMultiplier>"
                f"<uom>{uom}</uom></ReadingType></MirrorMeterReading>"
                for uom in values
            )
            mup = (
                f'<MirrorUsagePoint xmlns="urn:ieee:std:2030.5:ns"><mRID>{self._mrid(0)}</mRID>'
                "<description>DER</description><roleFlags>49</roleFlags><serviceCategoryKind>0</serviceCategoryKind>"
                f"<status>1</status><deviceLFDI>{self.config.lfdi}</deviceLFDI>{readings}</MirrorUsagePoint>"
            )
            self.mup_href = (await self._send("POST", self._mup_list, mup.encode())).headers["location"]
        now = self._now()
        items = "".join(
            f"<MirrorMeterReading><mRID>{self._mrid(uom)}</mRID><Reading><timePeriod><duration>0</duration>"
            f"<start>{now}</start></timePeriod><value>{round(value / 10 ** mult[uom])}</value></Reading></MirrorMeterReading>"
            for uom, value in values.items()
            if value is not None
        )
        body = f'<MirrorMeterReadingList xmlns="urn:ieee:std:2030.5:ns" all="{len(values)}" results="{len(values)}">{items}</MirrorMeterReadingList>'
        await self._send("POST", self.mup_href, body.encode())

    # --- controls ---------------------------------------------------------------------
    async def fetch_controls(self) -> None:
        fsas = await self._get(f"{self.edev_href}/fsa", FunctionSetAssignmentsListResponse, listed=True)
        seen: set[str] = set()
        self._defaults, self._curves = [], {}
        for fsa in fsas.FunctionSetAssignments or []:
            if fsa.DERProgramListLink is None:
                continue
            programs = await self._get(fsa.DERProgramListLink.href, DERProgramListResponse, listed=True)
            for program in programs.DERProgram or []:
                if program.DERCurveListLink is not None:
                    curves = await self._get(program.DERCurveListLink.href, DERCurveList, listed=True)
                    self._curves.update({c.href or "": c for c in curves.DERCurve or []})
                if program.DefaultDERControlLink is not None:
                    default = await self._get(program.DefaultDERControlLink.href, DefaultDERControl)
                    self._defaults.append((program.primacy, default))
                if program.DERControlListLink is None:
                    continue
                listed = await self._get(program.DERControlListLink.href, DERControlListResponse, listed=True)
                for control in listed.DERControl or []:
                    seen.add(control.mRID)
                    self._track(control, program.primacy)
        for mrid in list(self._events):
            if mrid not in seen:
                del self._events[mrid]

    def _track(self, control: DERControlResponse, primacy: int) -> None:
        event = self._events.get(control.mRID)
        if event is None:
            start = control.interval.start + self._rng.randint(0, max(0, control.randomizeStart or 0))
            end = control.interval.start + control.interval.duration
            end += self._rng.randint(0, max(0, control.randomizeDuration or 0))
            event = self._events[control.mRID] = _Event(control, primacy, start, max(end, start))
        event.control = control

    async def step(self) -> None:
        """Apply what is in force now, answer the events, report state."""
        now = self._now()
        in_force: dict[str, tuple[tuple[int, int], str, object]] = {}
        for mrid, event in self._events.items():
            status = event.control.EventStatus_.currentStatus
            await self._respond(event, RECEIVED)
            if status in (2, 3):
                await self._respond(event, CANCELLED)
                continue
            if status == 4:
                await self._respond(event, SUPERSEDED)
                continue
            if now >= event.end:
                if STARTED in event.responses:
                    await self._respond(event, COMPLETED)
                continue
            if now < event.start:
                continue
            rank = (event.primacy, -event.control.creationTime)
            for mode, control in controls_for(
                event.control.DERControlBase_, self._curves, storage=self.device.der.kind.is_storage
            ).items():
                if mode not in in_force or rank < in_force[mode][0]:
                    in_force[mode] = (rank, mrid, control)
        for mrid, event in self._events.items():
            if any(m == mrid for _, m, _ in in_force.values()):
                await self._respond(event, STARTED)
        for primacy, default in sorted(self._defaults, key=lambda d: d[0]):
            for mode, control in controls_for(
                default.DERControlBase_, self._curves, storage=self.device.der.kind.is_storage
            ).items():
                if mode not in in_force:
                    in_force[mode] = ((primacy, 1), "default", control)
        self.applied = {}
        for mode, (_, mrid, control) in in_force.items():
            until = self._events[mrid].end if mrid in self._events else None
            try:
                self.device.apply(control, until=datetime.fromtimestamp(until, UTC) if until else None)  # type: ignore[arg-type]
                self.applied[mode] = mrid
            except LimitViolation:
                if mrid in self._events:
                    await self._respond(self._events[mrid], 252)  # control parameter not applicable
        await self.post_status()
        await self.post_readings()

    async def _respond(self, event: _Event, status: int) -> None:
        if status in event.responses or not event.control.replyTo:
            return
        event.responses.add(status)
        body = (
            '<DERControlResponse xmlns="urn:ieee:std:2030.5:ns">'
            f"<createdDateTime>{self._now()}</createdDateTime><endDeviceLFDI>{self.config.lfdi}</endDeviceLFDI>"
            f"<status>{status}</status><subject>{event.control.mRID}</subject></DERControlResponse>"
        )
        await self._send("POST", event.control.replyTo, body.encode())

    async def start(self) -> None:
        """Discover, register the DER and take the first look at the controls."""
        await self.discover()
        await self.register_der()
        await self.fetch_controls()
        await self.step()

    async def poll(self) -> None:
        await self.fetch_controls()
        await self.step()

    async def run(self, cycles: int | None = None) -> None:
        """Poll every ``pollRate`` seconds of the clock (forever, or ``cycles`` times)."""
        await self.start()
        n = 0
        while cycles is None or n < cycles:
            await self.clock.sleep(self.poll_rate)
            await self.poll()
            n += 1
