"""Every 2.0b message we encode is valid against oadr_20b.xsd and decodes back to what we sent."""

from __future__ import annotations

from datetime import timedelta

import pytest

from derms.adapters.openadr.oadr20b import codec
from derms.adapters.openadr.oadr20b.model import (
    POWER_REAL_KW,
    Availability,
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
    VALID_SIGNAL_TYPES,
    EventStatus,
    OptReason,
    OptType,
    ReadingType,
    ReportName,
    ReportType,
    SignalName,
)
from derms.adapters.openadr.oadr20b.xmlutil import MalformedMessage, fmt_duration, parse_duration
from tests.adapters.openadr.openadr_samples import T0, make_event

TARGET = Target(group_ids=("feeder-7",), resource_ids=("load-1",), ven_ids=("ven-a",), party_ids=("acme",))
METADATA = Report(
    report_specifier_id="spec-usage",
    report_name=ReportName.METADATA_TELEMETRY_USAGE,
    created=T0,
    duration=timedelta(hours=1),
    descriptions=(
        ReportDescription(
            "rid-power",
            ReportType.USAGE,
            ReadingType.DIRECT_READ,
            resource_id="load-1",
            item=POWER_REAL_KW,
            min_period=timedelta(seconds=1),
            max_period=timedelta(minutes=1),
        ),
    ),
)
DATA = Report(
    report_specifier_id="spec-usage",
    report_name=ReportName.TELEMETRY_USAGE,
    created=T0,
    report_request_id="rr-1",
    report_id="r-1",
    dtstart=T0,
    duration=timedelta(minutes=1),
    values=(ReportValue("rid-power", T0, 42.5, timedelta(seconds=10), confidence=90, accuracy=0.5),),
)
REQUEST = ReportRequest(
    "rr-1",
    "spec-usage",
    timedelta(seconds=10),
    timedelta(seconds=10),
    (("rid-power", ReadingType.DIRECT_READ),),
)
OPT_SCHEDULE = Opt(
    "opt-1",
    OptType.OPT_OUT,
    OptReason.X_SCHEDULE,
    "ven-a",
    T0,
    target=Target(resource_ids=("load-1",)),
    market_context="http://mc",
    availability=(Availability(T0, timedelta(hours=2)),),
)
OPT_EVENT = Opt(
    "opt-2", OptType.OPT_IN, OptReason.PARTICIPATING, "ven-a", T0, event_id="ev-1", modification_number=3
)

MESSAGES = {
    "distribute": lambda: codec.distribute_event(
        "req", "VTN", [(make_event(target=TARGET), EventStatus.FAR), (make_event("ev-2"), EventStatus.ACTIVE)]
    ),
    "request_event": lambda: codec.request_event("req", "ven-a", 5),
    "created_event": lambda: codec.created_event(
        200, "OK", "req", [EventResponse("ev-1", 0, OptType.OPT_IN, request_id="req")], "ven-a"
    ),
    "created_event_empty": lambda: codec.created_event(200, "OK", "req", [], "ven-a"),
    "query_registration": lambda: codec.query_registration("req"),
    "create_party_registration": lambda: codec.create_party_registration(
        "req", Registration("ven-a", "2.0b", "simpleHttp", False, False, True)
    ),
    "created_party_registration": lambda: codec.created_party_registration(
        200, "OK", "req", "VTN", "reg-1", "ven-a", timedelta(seconds=10)
    ),
    "cancel_party_registration": lambda: codec.cancel_party_registration("req", "reg-1", "ven-a"),
    "canceled_party_registration": lambda: codec.canceled_party_registration(
        200, "OK", "req", "reg-1", "ven-a"
    ),
    "request_reregistration": lambda: codec.request_reregistration("ven-a"),
    "response": lambda: codec.response(463, "not registered", None, None),
    "poll": lambda: codec.poll("ven-a"),
    "create_opt_schedule": lambda: codec.create_opt(OPT_SCHEDULE, "req"),
    "create_opt_event": lambda: codec.create_opt(OPT_EVENT, "req"),
    "created_opt": lambda: codec.created_opt(200, "OK", "req", "opt-1"),
    "cancel_opt": lambda: codec.cancel_opt("req", "opt-1", "ven-a"),
    "canceled_opt": lambda: codec.canceled_opt(200, "OK", "req", "opt-1"),
    "register_report": lambda: codec.register_report("req", [METADATA], "ven-a"),
    "registered_report": lambda: codec.registered_report(200, "OK", "req", [REQUEST], "ven-a"),
    "create_report": lambda: codec.create_report("req", [REQUEST], "ven-a"),
    "created_report": lambda: codec.created_report(200, "OK", "req", ["rr-1"], "ven-a"),
    "update_report": lambda: codec.update_report("req", [DATA], "ven-a"),
    "updated_report": lambda: codec.updated_report(200, "OK", "req", "ven-a"),
    "cancel_report": lambda: codec.cancel_report("req", ["rr-1"], True, "ven-a"),
    "canceled_report": lambda: codec.canceled_report(200, "OK", "req", [], "ven-a"),
}


@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_every_message_is_schema_valid(name, validator):
    payload = codec.envelope(MESSAGES[name]())
    assert validator.errors(payload) == []
    parsed = codec.parse_payload(codec.serialize(payload))
    assert parsed.element.tag.endswith(parsed.name)


@pytest.mark.parametrize(
    ("name", "kind"), [(n, t) for n, ts in VALID_SIGNAL_TYPES.items() for t in sorted(ts)]
)
def test_every_signal_name_and_type_is_schema_valid(name, kind, validator):
    value = 1.0 if name is SignalName.SIMPLE else 12.5
    signal = EventSignal(name, kind, "s", (Interval(timedelta(minutes=5), value),))
    event = make_event()
    event = type(event)(
        **{**{f: getattr(event, f) for f in event.__dataclass_fields__}, "signals": (signal,)}
    )
    payload = codec.envelope(codec.distribute_event("r", "VTN", [(event, EventStatus.NEAR)]))
    assert validator.errors(payload) == []
    decoded = codec.decode_event(codec.parse_payload(codec.serialize(payload)).element[2])
    assert (decoded.signals[0].name, decoded.signals[0].type) == (name, kind)


def test_signal_type_must_match_signal_name():
    with pytest.raises(ValueError, match="not allowed"):
        EventSignal(SignalName.SIMPLE, "price", "s", (Interval(timedelta(minutes=5), 1),))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="SIMPLE signal levels"):
        EventSignal(SignalName.SIMPLE, "level", "s", (Interval(timedelta(minutes=5), 7),))  # type: ignore[arg-type]


def test_event_round_trip_keeps_the_vocabulary():
    event = make_event(target=TARGET)
    payload = codec.serialize(codec.envelope(codec.distribute_event("r", "VTN", [(event, EventStatus.FAR)])))
    msg = codec.parse_payload(payload)
    decoded = codec.decode_event(msg.element.find("oadr:oadrEvent", codec.NS))
    assert decoded == event


def test_report_round_trip_and_price_item():
    price = ItemBase("oadr:currencyPerKWh", "currencyPerKWh", "USD", "none")
    meta = Report(
        "spec-p",
        ReportName.METADATA_TELEMETRY_USAGE,
        T0,
        descriptions=(ReportDescription("p", ReportType.PRICE, ReadingType.CONTRACT, item=price),),
    )
    for report in (METADATA, DATA, meta):
        payload = codec.serialize(codec.envelope(codec.update_report("r", [report], "ven-a")))
        node = codec.parse_payload(payload).element.find("oadr:oadrReport", codec.NS)
        assert codec.decode_report(node) == report


def test_opt_and_request_round_trip():
    for o in (OPT_SCHEDULE, OPT_EVENT):
        assert codec.decode_opt(codec.create_opt(o, "r")) == o
    node = codec.registered_report(200, "OK", "r", [REQUEST], None).find("oadr:oadrReportRequest", codec.NS)
    assert codec.decode_report_request(node) == REQUEST


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("PT1H30M", timedelta(minutes=90)),
        ("P1D", timedelta(days=1)),
        ("-PT5M", -timedelta(minutes=5)),
        ("PT0S", timedelta(0)),
        ("P1W", timedelta(weeks=1)),
    ],
)
def test_durations(text, value):
    assert parse_duration(text) == value
    assert parse_duration(fmt_duration(value)) == value


def test_duration_seconds_are_whole():
    """RFC 5545 durations carry whole seconds: we read fractions leniently, write whole seconds."""
    assert parse_duration("PT10.5S") == timedelta(seconds=10.5)
    assert fmt_duration(timedelta(seconds=10.4)) == "PT10S"


@pytest.mark.parametrize(
    "data",
    [
        b"not xml",
        b"<a/>",
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "boom">]><x>&e;</x>',
        b'<oadr:oadrPayload xmlns:oadr="http://openadr.org/oadr-2.0b/2012/07"/>',
    ],
)
def test_malformed_payloads_are_refused(data):
    with pytest.raises(MalformedMessage):
        codec.parse_payload(data)
