"""OpenADR 2.0b VEN client (pull or push mode), for derms acting as an aggregator under a VTN.

Sequence (2.0b §8.4 and the certification test sequence): ``oadrQueryRegistration`` →
``oadrCreatePartyRegistration`` → ``oadrRegisterReport`` (our METADATA reports; the VTN's
``oadrRegisteredReport`` may request data points, answered with ``oadrCreatedReport``) →
``oadrRequestEvent`` → ``oadrCreatedEvent`` → ``oadrPoll`` every ``oadrRequestedOadrPollFreq``.
Report data go out as ``oadrUpdateReport`` at each request's granularity.

In the push model (``transport_address`` given, 2.0b 8.4) the VEN registers with
``oadrHttpPullModel=false`` and serves ``push_app()`` at that address: the VTN POSTs
``oadrDistributeEvent`` (and queued messages) to it and gets the ``oadrCreatedEvent`` (or
``oadrCreatedReport``, ...) as the HTTP reply; the VEN then does not poll.

The owner decides opt-in/out (``on_event``) and supplies report values (``read_point``);
replies that are not well-formed or fail the schema are refused with 454 and change nothing.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import httpx
import structlog
from lxml import etree
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from derms.adapters.openadr.oadr20b import codec
from derms.adapters.openadr.oadr20b.model import (
    Event,
    EventResponse,
    Opt,
    Registration,
    Report,
    ReportRequest,
    ReportValue,
)
from derms.adapters.openadr.oadr20b.schema import SchemaValidator
from derms.adapters.openadr.oadr20b.server import PATH
from derms.adapters.openadr.oadr20b.vocabulary import EventStatus, OptType, ResponseRequired, Status
from derms.adapters.openadr.oadr20b.xmlutil import MalformedMessage
from derms.core.clock import Clock

log = structlog.get_logger(__name__)

OnEvent = Callable[[Event], Awaitable[OptType]]
OnCancel = Callable[[Event], Awaitable[None]]
ReadPoint = Callable[[str, str, datetime], Awaitable[float | None]]
"""``(reportSpecifierID, rID, now) → value``; ``None`` skips the point."""


class VtnError(Exception):
    """The VTN answered with a non-200 eiResponse or an unexpected message."""


@dataclass(slots=True)
class VenState:
    ven_id: str | None = None
    registration_id: str | None = None
    vtn_id: str | None = None
    poll_freq: timedelta = timedelta(seconds=10)
    events: dict[str, Event] = field(default_factory=dict)
    opts: dict[str, OptType] = field(default_factory=dict)
    report_requests: dict[str, ReportRequest] = field(default_factory=dict)
    last_report: dict[str, datetime] = field(default_factory=dict)


class VenClient:
    def __init__(
        self,
        vtn_url: str,
        ven_name: str,
        clock: Clock,
        *,
        on_event: OnEvent,
        on_cancel: OnCancel | None = None,
        reports: Sequence[Report] = (),
        read_point: ReadPoint | None = None,
        validator: SchemaValidator | None = None,
        http: httpx.AsyncClient | None = None,
        ven_id: str | None = None,
        transport_address: str | None = None,
    ) -> None:
        self.vtn_url = vtn_url.rstrip("/")
        self.ven_name = ven_name
        self.clock = clock
        self.on_event = on_event
        self.on_cancel = on_cancel
        self.reports = list(reports)
        self.read_point = read_point
        self.validator = validator
        self.http = http or httpx.AsyncClient(timeout=10.0)
        self._own_http = http is None
        self.state = VenState(ven_id=ven_id)
        self.transport_address = transport_address
        """Root URL of :meth:`push_app` for the push model; ``None`` polls (pull model)."""
        self._background: set[asyncio.Task[None]] = set()

    async def close(self) -> None:
        if self._own_http:
            await self.http.aclose()

    # ------------------------------------------------------------------ transport

    async def _send(self, service: str, msg: etree._Element) -> codec.Incoming:
        data = codec.serialize(codec.envelope(msg))
        response = await self.http.post(
            f"{self.vtn_url}/{service}", content=data, headers={"content-type": "application/xml"}
        )
        if response.status_code != 200:
            raise VtnError(f"{service}: HTTP {response.status_code}")
        reply = codec.parse_payload(response.content)
        if self.validator is not None:
            self.validator.check(reply.root)
        return reply

    @staticmethod
    def _ok(reply: codec.Incoming) -> None:
        code, description, _ = codec.decode_response(reply.element)
        if code != Status.OK:
            raise VtnError(f"{reply.name}: {code} {description}")

    # ------------------------------------------------------------------ registration

    async def register(self) -> None:
        query = await self._send("EiRegisterParty", codec.query_registration(_new_id()))
        self._ok(query)
        reg = Registration(
            ven_name=self.ven_name,
            profile_name="2.0b",
            transport_name="simpleHttp",
            report_only=False,
            xml_signature=False,
            http_pull_model=self.transport_address is None,
            transport_address=self.transport_address,
            ven_id=self.state.ven_id,
            registration_id=self.state.registration_id,
        )
        reply = await self._send("EiRegisterParty", codec.create_party_registration(_new_id(), reg))
        if reply.name != "oadrCreatedPartyRegistration":
            raise VtnError(f"expected oadrCreatedPartyRegistration, got {reply.name}")
        self._ok(reply)
        ns = codec.NS
        self.state.ven_id = reply.element.findtext("ei:venID", namespaces=ns) or self.state.ven_id
        self.state.registration_id = reply.element.findtext("ei:registrationID", namespaces=ns)
        self.state.vtn_id = reply.element.findtext("ei:vtnID", namespaces=ns)
        freq = reply.element.findtext("oadr:oadrRequestedOadrPollFreq/xcal:duration", namespaces=ns)
        if freq:
            self.state.poll_freq = max(codec.parse_duration(freq), timedelta(seconds=1))
        if not self.state.ven_id or not self.state.registration_id:
            raise VtnError("registration without venID or registrationID")

    async def cancel_registration(self) -> None:
        assert self.state.ven_id and self.state.registration_id
        reply = await self._send(
            "EiRegisterParty",
            codec.cancel_party_registration(_new_id(), self.state.registration_id, self.state.ven_id),
        )
        self._ok(reply)
        self.state.registration_id = None

    # ------------------------------------------------------------------ reports

    async def register_reports(self) -> None:
        reply = await self._send("EiReport", codec.register_report(_new_id(), self.reports, self.ven_id))
        self._ok(reply)
        await self._accept_requests(reply)

    async def _accept_requests(self, reply: codec.Incoming) -> None:
        created = self._created_report(reply)
        if created is not None:
            await self._send("EiReport", created)

    def _created_report(self, reply: codec.Incoming) -> etree._Element | None:
        """Take the report requests of an ``oadrRegisteredReport``/``oadrCreateReport``."""
        requests = [
            codec.decode_report_request(n) for n in reply.element.findall("oadr:oadrReportRequest", codec.NS)
        ]
        if not requests and reply.name != "oadrCreateReport":
            return None
        known = {r.report_specifier_id for r in self.reports}
        pending = []
        for rr in requests:
            if rr.report_specifier_id in known:
                self.state.report_requests[rr.report_request_id] = rr
                pending.append(rr.report_request_id)
        code = Status.OK if len(pending) == len(requests) else Status.REPORT_NOT_SUPPORTED
        return codec.created_report(
            code,
            "OK" if code == Status.OK else "unknown report",
            reply.request_id() or "",
            pending,
            self.ven_id,
        )

    async def send_due_reports(self) -> int:
        """Send every requested report whose granularity has elapsed; returns how many were sent."""
        if self.read_point is None:
            return 0
        now = self.clock.now()
        out = []
        for rr in self.state.report_requests.values():
            last = self.state.last_report.get(rr.report_request_id)
            if last is not None and now - last < rr.granularity:
                continue
            values = []
            for r_id, _reading in rr.points:
                value = await self.read_point(rr.report_specifier_id, r_id, now)
                if value is not None:
                    values.append(ReportValue(r_id, now, value, rr.granularity))
            if values:
                meta = next(r for r in self.reports if r.report_specifier_id == rr.report_specifier_id)
                out.append(
                    Report(
                        rr.report_specifier_id,
                        meta.report_name.removeprefix("METADATA_"),
                        now,
                        rr.report_request_id,
                        _new_id(),
                        values=tuple(values),
                        dtstart=now,
                        duration=rr.granularity,
                    )
                )
                self.state.last_report[rr.report_request_id] = now
        if out:
            self._ok(await self._send("EiReport", codec.update_report(_new_id(), out, self.ven_id)))
        return len(out)

    # ------------------------------------------------------------------ events and opts

    @property
    def ven_id(self) -> str:
        if not self.state.ven_id:
            raise VtnError("not registered")
        return self.state.ven_id

    async def request_events(self) -> None:
        reply = await self._send("EiEvent", codec.request_event(_new_id(), self.ven_id))
        if reply.name == "oadrDistributeEvent":
            await self._distribute(reply)
        else:
            self._ok(reply)

    async def _distribute(self, reply: codec.Incoming) -> None:
        created = await self._created_event(reply)
        if created is not None:
            self._ok(await self._send("EiEvent", created))

    async def _created_event(self, reply: codec.Incoming) -> etree._Element | None:
        """Decide on each event of an ``oadrDistributeEvent``; the ``oadrCreatedEvent`` if due."""
        events = [codec.decode_event(n) for n in reply.element.findall("oadr:oadrEvent", codec.NS)]
        responses = []
        for event in events:
            previous = self.state.events.get(event.event_id)
            if previous is not None and previous.modification_number == event.modification_number:
                opt = self.state.opts[event.event_id]
            elif event.status is EventStatus.CANCELLED:
                opt = OptType.OPT_IN
                if self.on_cancel is not None:
                    await self.on_cancel(event)
            else:
                opt = await self.on_event(event)
            self.state.events[event.event_id] = event
            self.state.opts[event.event_id] = opt
            if event.response_required is ResponseRequired.ALWAYS:
                responses.append(
                    EventResponse(
                        event.event_id, event.modification_number, opt, request_id=reply.request_id() or ""
                    )
                )
        if not responses:
            return None
        return codec.created_event(Status.OK, "OK", reply.request_id() or "", responses, self.ven_id)

    async def opt(self, event_id: str, opt_type: OptType, reason: str = "participating") -> str:
        """Change our opt for an event after the fact with ``oadrCreateOpt``; returns the optID."""
        event = self.state.events[event_id]
        o = Opt(
            opt_id=_new_id(),
            opt_type=opt_type,
            opt_reason=reason,  # type: ignore[arg-type]
            ven_id=self.ven_id,
            created=self.clock.now(),
            market_context=event.market_context,
            event_id=event_id,
            modification_number=event.modification_number,
        )
        reply = await self._send("EiOpt", codec.create_opt(o, _new_id()))
        self._ok(reply)
        self.state.opts[event_id] = opt_type
        return o.opt_id

    async def poll(self) -> str:
        """One ``oadrPoll``; handles what comes back and returns its message name."""
        reply = await self._send("OadrPoll", codec.poll(self.ven_id))
        if reply.name == "oadrDistributeEvent":
            await self._distribute(reply)
        elif reply.name in ("oadrCreateReport", "oadrRegisteredReport"):
            await self._accept_requests(reply)
        elif reply.name == "oadrRegisterReport":
            await self._send(
                "EiReport",
                codec.registered_report(Status.OK, "OK", reply.request_id() or "", [], self.ven_id),
            )
        elif reply.name == "oadrRequestReregistration":
            await self._send("EiRegisterParty", codec.response(Status.OK, "OK", None, self.ven_id))
            await self.register()
            await self.register_reports()
        elif reply.name == "oadrCancelPartyRegistration":
            await self._send(
                "EiRegisterParty",
                codec.canceled_party_registration(
                    Status.OK, "OK", reply.request_id() or "", self.state.registration_id, self.ven_id
                ),
            )
            self.state.registration_id = None
        elif reply.name == "oadrCancelReport":
            for node in reply.element.findall("ei:reportRequestID", codec.NS):
                self.state.report_requests.pop((node.text or "").strip(), None)
            await self._send(
                "EiReport", codec.canceled_report(Status.OK, "OK", reply.request_id() or "", [], self.ven_id)
            )
        return reply.name

    # ------------------------------------------------------------------ push model

    def push_app(self) -> Starlette:
        """The VEN's simple-HTTP endpoints for the VTN's pushes (serve it at ``transport_address``)."""

        async def endpoint(request: Request) -> Response:
            reply = await self.handle_push(request.path_params["service"], await request.body())
            return Response(reply, media_type="application/xml")

        return Starlette(routes=[Route(f"{PATH}/{{service}}", endpoint, methods=["POST"])])

    async def handle_push(self, service: str, data: bytes) -> bytes:
        """Answer one message the VTN pushed; the reply is the VEN's response message."""
        try:
            msg = codec.parse_payload(data)
            if self.validator is not None:
                self.validator.check(msg.root)
        except MalformedMessage as exc:
            return _payload(codec.response(Status.INVALID_DATA, str(exc)[:200], None, self.state.ven_id))
        answer: etree._Element | None
        try:
            answer = await self._answer_push(service, msg)
        except (MalformedMessage, VtnError) as exc:
            answer = codec.response(Status.INVALID_DATA, str(exc)[:200], msg.request_id(), self.state.ven_id)
        if answer is None:
            answer = codec.response(Status.OK, "OK", msg.request_id(), self.ven_id)
        return _payload(answer)

    async def _answer_push(self, service: str, msg: codec.Incoming) -> etree._Element | None:
        if self.state.registration_id is None:
            return codec.response(
                Status.NOT_REGISTERED_OR_AUTHORIZED, "not registered", msg.request_id(), None
            )
        match service, msg.name:
            case "EiEvent", "oadrDistributeEvent":
                if msg.element.findtext("ei:vtnID", namespaces=codec.NS) != self.state.vtn_id:
                    return codec.response(Status.INVALID_ID, "unknown vtnID", msg.request_id(), self.ven_id)
                return await self._created_event(msg)
            case "EiReport", "oadrCreateReport":
                return self._created_report(msg)
            case "EiReport", "oadrCancelReport":
                for node in msg.element.findall("ei:reportRequestID", codec.NS):
                    self.state.report_requests.pop((node.text or "").strip(), None)
                return codec.canceled_report(Status.OK, "OK", msg.request_id() or "", [], self.ven_id)
            case "EiRegisterParty", "oadrRequestReregistration":
                task = asyncio.create_task(self._reregister())
                self._background.add(task)
                task.add_done_callback(self._background.discard)
                return None
            case "EiRegisterParty", "oadrCancelPartyRegistration":
                registration_id = self.state.registration_id
                self.state.registration_id = None
                return codec.canceled_party_registration(
                    Status.OK, "OK", msg.request_id() or "", registration_id, self.ven_id
                )
        return codec.response(
            Status.NOT_RECOGNIZED, f"{msg.name} is not handled by {service}", msg.request_id(), self.ven_id
        )

    async def _reregister(self) -> None:
        try:
            await self.register()
            await self.register_reports()
        except (httpx.HTTPError, MalformedMessage, VtnError) as exc:
            log.warning("openadr.ven.reregistration_failed", vtn=self.vtn_url, error=str(exc))

    async def run(self, stop: asyncio.Event) -> None:
        """Register, then poll (pull model) and report until ``stop`` is set; errors are retried."""
        await self.register()
        await self.register_reports()
        await self.request_events()
        while not stop.is_set():
            try:
                if self.transport_address is None:
                    await self.poll()
                await self.send_due_reports()
            except (httpx.HTTPError, MalformedMessage, VtnError) as exc:
                log.warning("openadr.ven.poll_failed", vtn=self.vtn_url, ven=self.ven_name, error=str(exc))
            try:
                await asyncio.wait_for(stop.wait(), self.state.poll_freq.total_seconds())
            except TimeoutError:
                continue


def _new_id() -> str:
    return uuid.uuid4().hex


def _payload(msg: etree._Element) -> bytes:
    return codec.serialize(codec.envelope(msg))
