"""Encode and decode OpenADR 2.0b payloads (``oadrPayload/oadrSignedObject/<message>``).

Element order follows ``oadr_20b.xsd`` (OpenADR 2.0b schema, 2015); every encoder here is
checked against that schema in the tests. Decoders take the message element (the child of
``oadrSignedObject``) and return typed objects from :mod:`.model`, raising
:class:`~.xmlutil.MalformedMessage` when a required element is missing or a value is invalid.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from lxml import etree

from derms.adapters.openadr.oadr20b.model import (
    Availability,
    Event,
    EventResponse,
    EventSignal,
    Interval,
    ItemBase,
    Opt,
    Registration,
    Report,
    ReportDescription,
    ReportRequest,
    ReportValue,
    Target,
)
from derms.adapters.openadr.oadr20b.vocabulary import (
    EventStatus,
    OptReason,
    OptType,
    ReadingType,
    ReportType,
    ResponseRequired,
    SignalName,
    SignalType,
)
from derms.adapters.openadr.oadr20b.xmlutil import (
    NS,
    NSMAP,
    MalformedMessage,
    el,
    need,
    opt,
    parse_datetime,
    parse_duration,
    parse_xml,
    qname,
    text,
    texts,
    to_bool,
)

SCHEMA_VERSION = "2.0b"
SIGNED_OBJECT_ID = "oadrSignedObject"


# --------------------------------------------------------------------------- envelope


def message(name: str, *children: etree._Element | None) -> etree._Element:
    """A message element ``oadr:<name>`` with ``ei:schemaVersion="2.0b"``."""
    node = el(f"oadr:{name}", *children)
    node.set(qname("ei:schemaVersion"), SCHEMA_VERSION)
    return node


def envelope(msg: etree._Element) -> etree._Element:
    """Wrap a message in ``oadrPayload/oadrSignedObject`` (the signature goes before it)."""
    signed = etree.Element(qname("oadr:oadrSignedObject"), nsmap=NSMAP)
    signed.append(msg)
    signed.set(qname("oadr:Id"), SIGNED_OBJECT_ID)
    # elements are built without namespace maps (17x cheaper); declare the prefixes once here
    etree.cleanup_namespaces(signed, top_nsmap=NSMAP)
    # Only ``oadr`` is declared on the root, as in the Alliance's samples: a detached signature
    # inserted next to oadrSignedObject then canonicalises the same before and after insertion.
    payload = etree.Element(qname("oadr:oadrPayload"), nsmap={"oadr": NS["oadr"]})
    payload.append(signed)
    return payload


def serialize(payload: etree._Element) -> bytes:
    return etree.tostring(payload, xml_declaration=True, encoding="utf-8")


@dataclass(frozen=True, slots=True)
class Incoming:
    """A parsed payload: the message name, its element and the whole tree (for signatures)."""

    name: str
    element: etree._Element
    root: etree._Element

    def ven_id(self) -> str | None:
        """The message's own ``ei:venID`` (not one inside a target)."""
        for path in _VEN_ID_PATHS:
            node = self.element.find(path)
            if node is not None and node.text and node.text.strip():
                return node.text.strip()
        return None

    def request_id(self) -> str | None:
        for path in _REQUEST_ID_PATHS:
            node = self.element.find(path)
            if node is not None:
                return (node.text or "").strip()
        return None


def _clark(*paths: str) -> tuple[str, ...]:
    """Prefixed paths in Clark notation: lxml finds them without a namespace map (faster)."""
    return tuple("/".join(qname(step) for step in p.split("/")) for p in paths)


_VEN_ID_PATHS = _clark("ei:venID", "pyld:eiRequestEvent/ei:venID", "pyld:eiCreatedEvent/ei:venID")
_REQUEST_ID_PATHS = _clark(
    "pyld:requestID", "ei:eiResponse/pyld:requestID", "pyld:eiRequestEvent/pyld:requestID"
)
_PAYLOAD = qname("oadr:oadrPayload")
_SIGNED_OBJECT = qname("oadr:oadrSignedObject")


def parse_payload(data: bytes) -> Incoming:
    """Parse an ``oadrPayload``; raises :class:`MalformedMessage` when it is not one."""
    root = parse_xml(data)
    if root.tag != _PAYLOAD:
        raise MalformedMessage(f"root element is {root.tag}, not oadrPayload")
    signed = root.find(_SIGNED_OBJECT)
    children = [] if signed is None else [c for c in signed if isinstance(c.tag, str)]
    if len(children) != 1:
        raise MalformedMessage("oadrSignedObject must hold exactly one message")
    msg = children[0]
    if not isinstance(msg.tag, str) or not msg.tag.startswith(f"{{{NS['oadr']}}}"):
        raise MalformedMessage("message is not in the oadr namespace")
    return Incoming(etree.QName(msg).localname, msg, root)


# --------------------------------------------------------------------------- common parts


def ei_response(code: int, description: str, request_id: str | None) -> etree._Element:
    return el(
        "ei:eiResponse",
        el("ei:responseCode", text=code),
        el("ei:responseDescription", text=description),
        el("pyld:requestID", text=request_id or ""),
    )


def decode_response(node: etree._Element) -> tuple[int, str, str]:
    """``(responseCode, responseDescription, requestID)`` of the ``ei:eiResponse`` in ``node``."""
    resp = node.find(".//ei:eiResponse", NS)
    if resp is None:
        raise MalformedMessage("missing ei:eiResponse")
    try:
        code = int(need(resp, "ei:responseCode"))
    except ValueError as exc:
        raise MalformedMessage("responseCode is not a number") from exc
    return code, text(resp, "ei:responseDescription") or "", text(resp, "pyld:requestID") or ""


def target(t: Target) -> etree._Element:
    return el(
        "ei:eiTarget",
        *(el("ei:groupID", text=v) for v in t.group_ids),
        *(el("ei:groupName", text=v) for v in t.group_names),
        *(el("ei:resourceID", text=v) for v in t.resource_ids),
        *(el("ei:venID", text=v) for v in t.ven_ids),
        *(el("ei:partyID", text=v) for v in t.party_ids),
    )


def decode_target(node: etree._Element | None) -> Target:
    if node is None:
        return Target()
    return Target(
        group_ids=texts(node, "ei:groupID"),
        group_names=texts(node, "ei:groupName"),
        resource_ids=texts(node, "ei:resourceID"),
        ven_ids=texts(node, "ei:venID"),
        party_ids=texts(node, "ei:partyID"),
    )


def item_base(item: ItemBase) -> etree._Element:
    prefix = item.element.split(":", 1)[0]
    attrs = None
    if item.hertz is not None:
        attrs = el(
            "power:powerAttributes",
            el("power:hertz", text=item.hertz),
            el("power:voltage", text=item.voltage if item.voltage is not None else 0.0),
            el("power:ac", text=item.ac if item.ac is not None else True),
        )
    return el(
        item.element,
        el(f"{prefix}:itemDescription", text=item.description),
        el(f"{prefix}:itemUnits", text=item.units),
        el("scale:siScaleCode", text=item.scale),
        attrs,
    )


_ITEM_NAMESPACES = {NS["power"]: "power", NS["oadr"]: "oadr", NS["emix"]: "emix"}


def decode_item_base(parent: etree._Element) -> ItemBase | None:
    for child in parent:
        if not isinstance(child.tag, str):
            continue
        q = etree.QName(child)
        prefix = _ITEM_NAMESPACES.get(q.namespace or "")
        if prefix is None or child.find(f"{prefix}:itemUnits", NS) is None:
            continue
        hertz = text(child, "power:powerAttributes/power:hertz")
        voltage = text(child, "power:powerAttributes/power:voltage")
        ac = text(child, "power:powerAttributes/power:ac")
        return ItemBase(
            element=f"{prefix}:{q.localname}",
            description=text(child, f"{prefix}:itemDescription") or "",
            units=text(child, f"{prefix}:itemUnits") or "",
            scale=text(child, "scale:siScaleCode") or "none",
            hertz=float(hertz) if hertz else None,
            voltage=float(voltage) if voltage else None,
            ac=to_bool(ac) if ac is not None else None,
        )
    return None


def _date_time(name: str, value: datetime) -> etree._Element:
    return el(name, el("xcal:date-time", text=value))


def _duration(name: str, value: timedelta) -> etree._Element:
    return el(name, el("xcal:duration", text=value))


def _float(node: etree._Element, path: str) -> float:
    raw = need(node, path)
    try:
        return float(raw)
    except ValueError as exc:
        raise MalformedMessage(f"{path} is not a number: {raw!r}") from exc


def _enum[E](kind: type[E], raw: str | None, what: str) -> E:
    try:
        return kind(raw)  # type: ignore[call-arg]
    except ValueError as exc:
        raise MalformedMessage(f"unknown {what}: {raw!r}") from exc


# --------------------------------------------------------------------------- events


def event_signal(signal: EventSignal) -> etree._Element:
    intervals = el(
        "strm:intervals",
        *(
            el(
                "ei:interval",
                _duration("xcal:duration", i.duration),
                el("xcal:uid", el("xcal:text", text=i.uid)),
                el("ei:signalPayload", el("ei:payloadFloat", el("ei:value", text=float(i.value)))),
            )
            for i in signal.intervals
        ),
    )
    current = None
    if signal.current_value is not None:
        current = el(
            "ei:currentValue", el("ei:payloadFloat", el("ei:value", text=float(signal.current_value)))
        )
    return el(
        "ei:eiEventSignal",
        intervals,
        target(signal.target) if signal.target is not None else None,
        el("ei:signalName", text=signal.name),
        el("ei:signalType", text=signal.type),
        el("ei:signalID", text=signal.signal_id),
        item_base(signal.item) if signal.item is not None else None,
        current,
    )


def oadr_event(event: Event, status: EventStatus) -> etree._Element:
    """``oadr:oadrEvent`` with the event status as of now (the VTN computes it)."""
    descriptor = el(
        "ei:eventDescriptor",
        el("ei:eventID", text=event.event_id),
        el("ei:modificationNumber", text=event.modification_number),
        opt("ei:modificationDateTime", event.modification_date_time),
        opt("ei:modificationReason", event.modification_reason),
        el("ei:priority", text=event.priority),
        el("ei:eiMarketContext", el("emix:marketContext", text=event.market_context)),
        el("ei:createdDateTime", text=event.created),
        el("ei:eventStatus", text=status),
        el("ei:testEvent", text=event.test_event),
        opt("ei:vtnComment", event.vtn_comment),
    )
    props = el(
        "xcal:properties",
        _date_time("xcal:dtstart", event.start),
        _duration("xcal:duration", event.duration),
        None
        if event.start_after is None
        else el("xcal:tolerance", el("xcal:tolerate", el("xcal:startafter", text=event.start_after))),
        None
        if event.notification is None
        else el("ei:x-eiNotification", el("xcal:duration", text=event.notification)),
        None if event.ramp_up is None else el("ei:x-eiRampUp", el("xcal:duration", text=event.ramp_up)),
        None if event.recovery is None else el("ei:x-eiRecovery", el("xcal:duration", text=event.recovery)),
    )
    return el(
        "oadr:oadrEvent",
        el(
            "ei:eiEvent",
            descriptor,
            el("ei:eiActivePeriod", props, el("xcal:components")),
            el("ei:eiEventSignals", *(event_signal(s) for s in event.signals)),
            target(event.target),
        ),
        el("oadr:oadrResponseRequired", text=event.response_required),
    )


def _opt_duration(node: etree._Element, path: str) -> timedelta | None:
    raw = text(node, path)
    return None if raw is None else parse_duration(raw)


def decode_event(node: etree._Element) -> Event:
    """Decode an ``oadr:oadrEvent``."""
    ev = node.find("ei:eiEvent", NS)
    if ev is None:
        raise MalformedMessage("oadrEvent without ei:eiEvent")
    desc = ev.find("ei:eventDescriptor", NS)
    props = ev.find("ei:eiActivePeriod/xcal:properties", NS)
    if desc is None or props is None:
        raise MalformedMessage("eiEvent without eventDescriptor or eiActivePeriod")
    signals = []
    for sig in ev.findall("ei:eiEventSignals/ei:eiEventSignal", NS):
        intervals = []
        for n, iv in enumerate(sig.findall("strm:intervals/ei:interval", NS)):
            uid = text(iv, "xcal:uid/xcal:text")
            intervals.append(
                Interval(
                    duration=parse_duration(need(iv, "xcal:duration/xcal:duration")),
                    value=_float(iv, "ei:signalPayload/ei:payloadFloat/ei:value"),
                    uid=int(uid) if uid and uid.isdigit() else n,
                )
            )
        current = text(sig, "ei:currentValue/ei:payloadFloat/ei:value")
        try:
            signals.append(
                EventSignal(
                    name=_enum(SignalName, text(sig, "ei:signalName"), "signalName"),
                    type=_enum(SignalType, text(sig, "ei:signalType"), "signalType"),
                    signal_id=need(sig, "ei:signalID"),
                    intervals=tuple(intervals),
                    item=decode_item_base(sig),
                    current_value=float(current) if current else None,
                    target=decode_target(sig.find("ei:eiTarget", NS))
                    if sig.find("ei:eiTarget", NS) is not None
                    else None,
                )
            )
        except ValueError as exc:
            raise MalformedMessage(str(exc)) from exc
    modified = text(desc, "ei:modificationDateTime")
    try:
        return Event(
            event_id=need(desc, "ei:eventID"),
            modification_number=int(need(desc, "ei:modificationNumber")),
            market_context=text(desc, "ei:eiMarketContext/emix:marketContext") or "",
            created=parse_datetime(need(desc, "ei:createdDateTime")),
            status=_enum(EventStatus, text(desc, "ei:eventStatus"), "eventStatus"),
            start=parse_datetime(need(props, "xcal:dtstart/xcal:date-time")),
            duration=parse_duration(need(props, "xcal:duration/xcal:duration")),
            signals=tuple(signals),
            target=decode_target(ev.find("ei:eiTarget", NS)),
            priority=int(text(desc, "ei:priority") or 0),
            response_required=_enum(
                ResponseRequired, text(node, "oadr:oadrResponseRequired") or "always", "oadrResponseRequired"
            ),
            test_event=to_bool(text(desc, "ei:testEvent")),
            vtn_comment=text(desc, "ei:vtnComment"),
            modification_reason=text(desc, "ei:modificationReason"),
            modification_date_time=parse_datetime(modified) if modified else None,
            start_after=_opt_duration(props, "xcal:tolerance/xcal:tolerate/xcal:startafter"),
            notification=_opt_duration(props, "ei:x-eiNotification/xcal:duration"),
            ramp_up=_opt_duration(props, "ei:x-eiRampUp/xcal:duration"),
            recovery=_opt_duration(props, "ei:x-eiRecovery/xcal:duration"),
        )
    except ValueError as exc:
        raise MalformedMessage(str(exc)) from exc


def distribute_event(
    request_id: str, vtn_id: str, events: Iterable[tuple[Event, EventStatus]]
) -> etree._Element:
    return message(
        "oadrDistributeEvent",
        el("pyld:requestID", text=request_id),
        el("ei:vtnID", text=vtn_id),
        *(oadr_event(e, s) for e, s in events),
    )


def request_event(request_id: str, ven_id: str, reply_limit: int | None = None) -> etree._Element:
    return message(
        "oadrRequestEvent",
        el(
            "pyld:eiRequestEvent",
            el("pyld:requestID", text=request_id),
            el("ei:venID", text=ven_id),
            opt("pyld:replyLimit", reply_limit),
        ),
    )


def created_event(
    code: int, description: str, request_id: str, responses: Sequence[EventResponse], ven_id: str
) -> etree._Element:
    return message(
        "oadrCreatedEvent",
        el(
            "pyld:eiCreatedEvent",
            ei_response(code, description, request_id),
            el(
                "ei:eventResponses",
                *(
                    el(
                        "ei:eventResponse",
                        el("ei:responseCode", text=r.response_code),
                        el("ei:responseDescription", text=r.response_description),
                        el("pyld:requestID", text=r.request_id),
                        el(
                            "ei:qualifiedEventID",
                            el("ei:eventID", text=r.event_id),
                            el("ei:modificationNumber", text=r.modification_number),
                        ),
                        el("ei:optType", text=r.opt_type),
                    )
                    for r in responses
                ),
            )
            if responses
            else None,
            el("ei:venID", text=ven_id),
        ),
    )


def decode_created_event(node: etree._Element) -> tuple[str, list[EventResponse]]:
    """``(venID, eventResponses)`` of an ``oadrCreatedEvent``."""
    inner = node.find("pyld:eiCreatedEvent", NS)
    if inner is None:
        raise MalformedMessage("oadrCreatedEvent without eiCreatedEvent")
    responses = []
    for r in inner.findall("ei:eventResponses/ei:eventResponse", NS):
        try:
            responses.append(
                EventResponse(
                    event_id=need(r, "ei:qualifiedEventID/ei:eventID"),
                    modification_number=int(need(r, "ei:qualifiedEventID/ei:modificationNumber")),
                    opt_type=_enum(OptType, text(r, "ei:optType"), "optType"),
                    response_code=int(need(r, "ei:responseCode")),
                    response_description=text(r, "ei:responseDescription") or "",
                    request_id=text(r, "pyld:requestID") or "",
                )
            )
        except ValueError as exc:
            raise MalformedMessage(str(exc)) from exc
    return need(inner, "ei:venID"), responses


# --------------------------------------------------------------------------- registration


def query_registration(request_id: str) -> etree._Element:
    return message("oadrQueryRegistration", el("pyld:requestID", text=request_id))


def create_party_registration(request_id: str, reg: Registration) -> etree._Element:
    return message(
        "oadrCreatePartyRegistration",
        el("pyld:requestID", text=request_id),
        opt("ei:registrationID", reg.registration_id),
        opt("ei:venID", reg.ven_id),
        el("oadr:oadrProfileName", text=reg.profile_name),
        el("oadr:oadrTransportName", text=reg.transport_name),
        opt("oadr:oadrTransportAddress", reg.transport_address),
        el("oadr:oadrReportOnly", text=reg.report_only),
        el("oadr:oadrXmlSignature", text=reg.xml_signature),
        el("oadr:oadrVenName", text=reg.ven_name),
        el("oadr:oadrHttpPullModel", text=reg.http_pull_model),
    )


def decode_registration(node: etree._Element) -> Registration:
    return Registration(
        ven_name=text(node, "oadr:oadrVenName") or "",
        profile_name=need(node, "oadr:oadrProfileName"),
        transport_name=need(node, "oadr:oadrTransportName"),
        report_only=to_bool(text(node, "oadr:oadrReportOnly")),
        xml_signature=to_bool(text(node, "oadr:oadrXmlSignature")),
        http_pull_model=to_bool(text(node, "oadr:oadrHttpPullModel") or "true"),
        transport_address=text(node, "oadr:oadrTransportAddress") or None,
        ven_id=text(node, "ei:venID") or None,
        registration_id=text(node, "ei:registrationID") or None,
    )


def created_party_registration(
    code: int,
    description: str,
    request_id: str,
    vtn_id: str,
    registration_id: str | None,
    ven_id: str | None,
    poll_freq: timedelta,
) -> etree._Element:
    profile = el(
        "oadr:oadrProfile",
        el("oadr:oadrProfileName", text="2.0b"),
        el("oadr:oadrTransports", el("oadr:oadrTransport", el("oadr:oadrTransportName", text="simpleHttp"))),
    )
    return message(
        "oadrCreatedPartyRegistration",
        ei_response(code, description, request_id),
        opt("ei:registrationID", registration_id),
        opt("ei:venID", ven_id),
        el("ei:vtnID", text=vtn_id),
        el("oadr:oadrProfiles", profile),
        el("oadr:oadrRequestedOadrPollFreq", el("xcal:duration", text=poll_freq)),
    )


def cancel_party_registration(request_id: str, registration_id: str, ven_id: str) -> etree._Element:
    return message(
        "oadrCancelPartyRegistration",
        el("pyld:requestID", text=request_id),
        el("ei:registrationID", text=registration_id),
        el("ei:venID", text=ven_id),
    )


def canceled_party_registration(
    code: int, description: str, request_id: str, registration_id: str | None, ven_id: str | None
) -> etree._Element:
    return message(
        "oadrCanceledPartyRegistration",
        ei_response(code, description, request_id),
        opt("ei:registrationID", registration_id),
        opt("ei:venID", ven_id),
    )


def request_reregistration(ven_id: str) -> etree._Element:
    return message("oadrRequestReregistration", el("ei:venID", text=ven_id))


def response(code: int, description: str, request_id: str | None, ven_id: str | None) -> etree._Element:
    return message("oadrResponse", ei_response(code, description, request_id), opt("ei:venID", ven_id))


def poll(ven_id: str) -> etree._Element:
    return message("oadrPoll", el("ei:venID", text=ven_id))


# --------------------------------------------------------------------------- opt


def create_opt(o: Opt, request_id: str) -> etree._Element:
    vavailability = None
    if o.availability:
        vavailability = el(
            "xcal:vavailability",
            el(
                "xcal:components",
                *(
                    el(
                        "xcal:available",
                        el(
                            "xcal:properties",
                            _date_time("xcal:dtstart", a.start),
                            _duration("xcal:duration", a.duration),
                        ),
                    )
                    for a in o.availability
                ),
            ),
        )
    qualified = None
    if o.event_id is not None:
        qualified = el(
            "ei:qualifiedEventID",
            el("ei:eventID", text=o.event_id),
            el("ei:modificationNumber", text=o.modification_number or 0),
        )
    return message(
        "oadrCreateOpt",
        el("ei:optID", text=o.opt_id),
        el("ei:optType", text=o.opt_type),
        el("ei:optReason", text=o.opt_reason),
        opt("emix:marketContext", o.market_context),
        el("ei:venID", text=o.ven_id),
        vavailability,
        el("ei:createdDateTime", text=o.created),
        el("pyld:requestID", text=request_id),
        qualified,
        target(o.target),
    )


def decode_opt(node: etree._Element) -> Opt:
    windows = []
    for a in node.findall("xcal:vavailability/xcal:components/xcal:available/xcal:properties", NS):
        windows.append(
            Availability(
                start=parse_datetime(need(a, "xcal:dtstart/xcal:date-time")),
                duration=parse_duration(need(a, "xcal:duration/xcal:duration")),
            )
        )
    mod = text(node, "ei:qualifiedEventID/ei:modificationNumber")
    return Opt(
        opt_id=need(node, "ei:optID"),
        opt_type=_enum(OptType, text(node, "ei:optType"), "optType"),
        opt_reason=_enum(OptReason, text(node, "ei:optReason"), "optReason"),
        ven_id=need(node, "ei:venID"),
        created=parse_datetime(need(node, "ei:createdDateTime")),
        target=decode_target(node.find("ei:eiTarget", NS)),
        market_context=text(node, "emix:marketContext"),
        event_id=text(node, "ei:qualifiedEventID/ei:eventID"),
        modification_number=int(mod) if mod else None,
        availability=tuple(windows),
    )


def created_opt(code: int, description: str, request_id: str, opt_id: str) -> etree._Element:
    return message("oadrCreatedOpt", ei_response(code, description, request_id), el("ei:optID", text=opt_id))


def cancel_opt(request_id: str, opt_id: str, ven_id: str) -> etree._Element:
    return message(
        "oadrCancelOpt",
        el("pyld:requestID", text=request_id),
        el("ei:optID", text=opt_id),
        el("ei:venID", text=ven_id),
    )


def canceled_opt(code: int, description: str, request_id: str, opt_id: str | None) -> etree._Element:
    return message("oadrCanceledOpt", ei_response(code, description, request_id), opt("ei:optID", opt_id))


# --------------------------------------------------------------------------- reports


def report_description(d: ReportDescription) -> etree._Element:
    sampling = None
    if d.min_period is not None and d.max_period is not None:
        sampling = el(
            "oadr:oadrSamplingRate",
            el("oadr:oadrMinPeriod", text=d.min_period),
            el("oadr:oadrMaxPeriod", text=d.max_period),
            el("oadr:oadrOnChange", text=d.on_change),
        )
    return el(
        "oadr:oadrReportDescription",
        el("ei:rID", text=d.r_id),
        None if d.resource_id is None else el("ei:reportDataSource", el("ei:resourceID", text=d.resource_id)),
        el("ei:reportType", text=d.report_type),
        item_base(d.item) if d.item is not None else None,
        el("ei:readingType", text=d.reading_type),
        opt("emix:marketContext", d.market_context),
        sampling,
    )


def report(r: Report) -> etree._Element:
    intervals = None
    if r.values:
        intervals = el(
            "strm:intervals",
            *(
                el(
                    "ei:interval",
                    _date_time("xcal:dtstart", v.dtstart),
                    None if v.duration is None else _duration("xcal:duration", v.duration),
                    el(
                        "oadr:oadrReportPayload",
                        el("ei:rID", text=v.r_id),
                        opt("ei:confidence", v.confidence),
                        opt("ei:accuracy", v.accuracy),
                        el("ei:payloadFloat", el("ei:value", text=float(v.value))),
                        opt("oadr:oadrDataQuality", v.data_quality),
                    ),
                )
                for v in r.values
            ),
        )
    return el(
        "oadr:oadrReport",
        None if r.dtstart is None else _date_time("xcal:dtstart", r.dtstart),
        None if r.duration is None else _duration("xcal:duration", r.duration),
        intervals,
        opt("ei:eiReportID", r.report_id),
        *(report_description(d) for d in r.descriptions),
        el("ei:reportRequestID", text=r.report_request_id),
        el("ei:reportSpecifierID", text=r.report_specifier_id),
        el("ei:reportName", text=r.report_name),
        el("ei:createdDateTime", text=r.created),
    )


def _sampling(d: etree._Element, name: str) -> timedelta | None:
    return _opt_duration(d, f"oadr:oadrSamplingRate/oadr:{name}")


def decode_report(node: etree._Element) -> Report:
    """Decode an ``oadr:oadrReport`` (metadata or data)."""
    descriptions = []
    for d in node.findall("oadr:oadrReportDescription", NS):
        descriptions.append(
            ReportDescription(
                r_id=need(d, "ei:rID"),
                report_type=_enum(ReportType, text(d, "ei:reportType"), "reportType"),
                reading_type=_enum(ReadingType, text(d, "ei:readingType"), "readingType"),
                resource_id=text(d, "ei:reportDataSource/ei:resourceID"),
                item=decode_item_base(d),
                min_period=_sampling(d, "oadrMinPeriod"),
                max_period=_sampling(d, "oadrMaxPeriod"),
                on_change=to_bool(text(d, "oadr:oadrSamplingRate/oadr:oadrOnChange")),
                market_context=text(d, "emix:marketContext"),
            )
        )
    values = []
    for iv in node.findall("strm:intervals/ei:interval", NS):
        pl = iv.find("oadr:oadrReportPayload", NS)
        if pl is None:
            continue
        value = text(pl, "ei:payloadFloat/ei:value")
        if value is None:
            status = pl.find("oadr:oadrPayloadResourceStatus", NS)
            if status is None:
                continue
            value = "1" if to_bool(text(status, "oadr:oadrOnline")) else "0"
        confidence = text(pl, "ei:confidence")
        accuracy = text(pl, "ei:accuracy")
        try:
            values.append(
                ReportValue(
                    r_id=need(pl, "ei:rID"),
                    dtstart=parse_datetime(need(iv, "xcal:dtstart/xcal:date-time")),
                    value=float(value),
                    duration=_opt_duration(iv, "xcal:duration/xcal:duration"),
                    confidence=int(confidence) if confidence else None,
                    accuracy=float(accuracy) if accuracy else None,
                    data_quality=text(pl, "oadr:oadrDataQuality"),
                )
            )
        except ValueError as exc:
            raise MalformedMessage(str(exc)) from exc
    dtstart = text(node, "xcal:dtstart/xcal:date-time")
    return Report(
        report_specifier_id=need(node, "ei:reportSpecifierID"),
        report_name=text(node, "ei:reportName") or "",
        created=parse_datetime(need(node, "ei:createdDateTime")),
        report_request_id=text(node, "ei:reportRequestID") or "0",
        report_id=text(node, "ei:eiReportID"),
        descriptions=tuple(descriptions),
        values=tuple(values),
        dtstart=parse_datetime(dtstart) if dtstart else None,
        duration=_opt_duration(node, "xcal:duration/xcal:duration"),
    )


def report_request(rr: ReportRequest) -> etree._Element:
    interval = None
    if rr.interval_start is not None:
        interval = el(
            "ei:reportInterval",
            el(
                "xcal:properties",
                _date_time("xcal:dtstart", rr.interval_start),
                None if rr.interval_duration is None else _duration("xcal:duration", rr.interval_duration),
            ),
        )
    return el(
        "oadr:oadrReportRequest",
        el("ei:reportRequestID", text=rr.report_request_id),
        el(
            "ei:reportSpecifier",
            el("ei:reportSpecifierID", text=rr.report_specifier_id),
            _duration("xcal:granularity", rr.granularity),
            _duration("ei:reportBackDuration", rr.report_back_duration),
            interval,
            *(
                el("ei:specifierPayload", el("ei:rID", text=r_id), el("ei:readingType", text=reading))
                for r_id, reading in rr.points
            ),
        ),
    )


def decode_report_request(node: etree._Element) -> ReportRequest:
    spec = node.find("ei:reportSpecifier", NS)
    if spec is None:
        raise MalformedMessage("oadrReportRequest without reportSpecifier")
    start = text(spec, "ei:reportInterval/xcal:properties/xcal:dtstart/xcal:date-time")
    return ReportRequest(
        report_request_id=need(node, "ei:reportRequestID"),
        report_specifier_id=need(spec, "ei:reportSpecifierID"),
        granularity=parse_duration(need(spec, "xcal:granularity/xcal:duration")),
        report_back_duration=parse_duration(need(spec, "ei:reportBackDuration/xcal:duration")),
        points=tuple(
            (
                need(p, "ei:rID"),
                _enum(ReadingType, text(p, "ei:readingType"), "readingType"),
            )
            for p in spec.findall("ei:specifierPayload", NS)
        ),
        interval_start=parse_datetime(start) if start else None,
        interval_duration=_opt_duration(
            spec, "ei:reportInterval/xcal:properties/xcal:duration/xcal:duration"
        ),
    )


def register_report(request_id: str, reports: Sequence[Report], ven_id: str | None) -> etree._Element:
    return message(
        "oadrRegisterReport",
        el("pyld:requestID", text=request_id),
        *(report(r) for r in reports),
        opt("ei:venID", ven_id),
    )


def registered_report(
    code: int, description: str, request_id: str, requests: Sequence[ReportRequest], ven_id: str | None
) -> etree._Element:
    return message(
        "oadrRegisteredReport",
        ei_response(code, description, request_id),
        *(report_request(r) for r in requests),
        opt("ei:venID", ven_id),
    )


def create_report(request_id: str, requests: Sequence[ReportRequest], ven_id: str | None) -> etree._Element:
    return message(
        "oadrCreateReport",
        el("pyld:requestID", text=request_id),
        *(report_request(r) for r in requests),
        opt("ei:venID", ven_id),
    )


def created_report(
    code: int, description: str, request_id: str, pending: Sequence[str], ven_id: str | None
) -> etree._Element:
    return message(
        "oadrCreatedReport",
        ei_response(code, description, request_id),
        el("oadr:oadrPendingReports", *(el("ei:reportRequestID", text=p) for p in pending)),
        opt("ei:venID", ven_id),
    )


def update_report(request_id: str, reports: Sequence[Report], ven_id: str | None) -> etree._Element:
    return message(
        "oadrUpdateReport",
        el("pyld:requestID", text=request_id),
        *(report(r) for r in reports),
        opt("ei:venID", ven_id),
    )


def updated_report(code: int, description: str, request_id: str, ven_id: str | None) -> etree._Element:
    return message("oadrUpdatedReport", ei_response(code, description, request_id), opt("ei:venID", ven_id))


def cancel_report(
    request_id: str, report_request_ids: Sequence[str], report_to_follow: bool, ven_id: str | None
) -> etree._Element:
    return message(
        "oadrCancelReport",
        el("pyld:requestID", text=request_id),
        *(el("ei:reportRequestID", text=r) for r in report_request_ids),
        el("pyld:reportToFollow", text=report_to_follow),
        opt("ei:venID", ven_id),
    )


def canceled_report(
    code: int, description: str, request_id: str, pending: Sequence[str], ven_id: str | None
) -> etree._Element:
    return message(
        "oadrCanceledReport",
        ei_response(code, description, request_id),
        el("oadr:oadrPendingReports", *(el("ei:reportRequestID", text=p) for p in pending)),
        opt("ei:venID", ven_id),
    )
