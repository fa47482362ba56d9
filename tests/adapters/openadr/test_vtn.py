"""The 2.0b VTN over bytes: registration, pull delivery, opts, reports, and refusals."""

from __future__ import annotations

from datetime import timedelta

import pytest

from derms.adapters.openadr.oadr20b import codec
from derms.adapters.openadr.oadr20b.model import (
    POWER_REAL_KW,
    Availability,
    EventResponse,
    Opt,
    Registration,
    Report,
    ReportDescription,
    ReportValue,
    Target,
)
from derms.adapters.openadr.oadr20b.pki import LabCa
from derms.adapters.openadr.oadr20b.signature import Signer, Verifier
from derms.adapters.openadr.oadr20b.vocabulary import (
    EventStatus,
    OptReason,
    OptType,
    ReadingType,
    ReportName,
    ReportType,
    Status,
)
from derms.adapters.openadr.oadr20b.vtn import VenProfile, Vtn
from tests.adapters.openadr.openadr_samples import T0, make_event


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    async def ven_registered(self, ven):
        self.calls.append(("registered", ven.ven_id))

    async def ven_cancelled(self, ven):
        self.calls.append(("cancelled", ven.ven_id))

    async def event_response(self, ven, event, opt_type):
        self.calls.append(("opt", event.event_id, opt_type))

    async def report_values(self, ven, points):
        self.calls.append(("report", [(d.r_id, v.value) for d, v in points]))


@pytest.fixture
def vtn(clock, validator):
    return Vtn("DERMS_VTN", clock, validator=validator, listener=Recorder())


async def call(vtn: Vtn, service: str, msg, validator) -> codec.Incoming:
    reply = await vtn.handle(service, codec.serialize(codec.envelope(msg)))
    parsed = codec.parse_payload(reply)
    assert validator.errors(parsed.root) == [], "the VTN must only send schema-valid payloads"
    return parsed


async def register(vtn, validator, name="ven-a") -> str:
    reg = Registration(name, "2.0b", "simpleHttp", False, False, True)
    reply = await call(vtn, "EiRegisterParty", codec.create_party_registration("r1", reg), validator)
    assert codec.decode_response(reply.element)[0] == 200
    return reply.element.findtext("ei:venID", namespaces=codec.NS)


def state(vtn: Vtn):
    return (set(vtn.vens), dict(vtn.events), {k: list(v) for k, v in vtn.opt_history.items()}, dict(vtn.opts))


async def test_registration_poll_event_and_ack(vtn, validator, clock):
    reply = await call(vtn, "EiRegisterParty", codec.query_registration("q1"), validator)
    assert reply.name == "oadrCreatedPartyRegistration"
    assert reply.element.findtext("ei:vtnID", namespaces=codec.NS) == "DERMS_VTN"
    ven_id = await register(vtn, validator)
    poll = await call(vtn, "OadrPoll", codec.poll(ven_id), validator)
    assert poll.name == "oadrResponse"
    vtn.create_event(make_event("ev-1"))
    poll = await call(vtn, "OadrPoll", codec.poll(ven_id), validator)
    assert poll.name == "oadrDistributeEvent"
    event = codec.decode_event(poll.element.find("oadr:oadrEvent", codec.NS))
    assert event.event_id == "ev-1" and event.status is EventStatus.FAR
    assert (await call(vtn, "OadrPoll", codec.poll(ven_id), validator)).name == "oadrResponse"
    ack = codec.created_event(200, "OK", "r", [EventResponse("ev-1", 0, OptType.OPT_IN)], ven_id)
    assert codec.decode_response((await call(vtn, "EiEvent", ack, validator)).element)[0] == 200
    assert vtn.opt_state("ev-1", ven_id).opt_type is OptType.OPT_IN
    # modification: number grows, VEN gets the new version; an ack of the old version is out of sequence
    vtn.modify_event(make_event("ev-1"))
    poll = await call(vtn, "OadrPoll", codec.poll(ven_id), validator)
    assert codec.decode_event(poll.element.find("oadr:oadrEvent", codec.NS)).modification_number == 1
    stale = await call(vtn, "EiEvent", ack, validator)
    assert codec.decode_response(stale.element)[0] == Status.OUT_OF_SEQUENCE
    # cancellation reaches the VEN with status cancelled
    vtn.cancel_event("ev-1")
    poll = await call(vtn, "OadrPoll", codec.poll(ven_id), validator)
    cancelled = codec.decode_event(poll.element.find("oadr:oadrEvent", codec.NS))
    assert cancelled.status is EventStatus.CANCELLED and cancelled.modification_number == 2
    clock.advance(3 * 3600)
    assert (await call(vtn, "EiEvent", codec.request_event("r", ven_id), validator)).element.find(
        "oadr:oadrEvent", codec.NS
    ) is None


async def test_targets_select_vens(vtn, validator):
    a = await register(vtn, validator, "ven-a")
    b = await register(vtn, validator, "ven-b")
    vtn.create_event(make_event("only-a", target=Target(ven_ids=(a,))))
    got_a = await call(vtn, "EiEvent", codec.request_event("r", a), validator)
    got_b = await call(vtn, "EiEvent", codec.request_event("r", b), validator)
    assert len(got_a.element.findall("oadr:oadrEvent", codec.NS)) == 1
    assert got_b.element.findall("oadr:oadrEvent", codec.NS) == []
    # targeting by venName before the venID is known: the VEN receives its venID on the wire
    vtn.create_event(make_event("by-name", target=Target(ven_ids=("ven-b",))))
    got_b = await call(vtn, "EiEvent", codec.request_event("r", b), validator)
    (event,) = [codec.decode_event(n) for n in got_b.element.findall("oadr:oadrEvent", codec.NS)]
    assert event.event_id == "by-name" and event.target.ven_ids == (b,)


async def test_unregistered_ven_gets_nothing(vtn, validator):
    vtn.create_event(make_event())
    before = state(vtn)
    for service, msg in [
        ("OadrPoll", codec.poll("intruder")),
        ("EiEvent", codec.request_event("r", "intruder")),
        (
            "EiEvent",
            codec.created_event(200, "OK", "r", [EventResponse("ev-1", 0, OptType.OPT_IN)], "intruder"),
        ),
        ("EiReport", codec.register_report("r", [], "intruder")),
    ]:
        reply = await call(vtn, service, msg, validator)
        assert reply.name == "oadrResponse"
        assert codec.decode_response(reply.element)[0] == Status.NOT_REGISTERED_OR_AUTHORIZED
        assert reply.element.find(".//oadr:oadrEvent", codec.NS) is None
    assert state(vtn) == before


@pytest.mark.parametrize(
    "data",
    [
        b"<<<",
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "boom">]><x>&e;</x>',
        # schema-invalid: oadrPoll without venID
        b'<oadr:oadrPayload xmlns:oadr="http://openadr.org/oadr-2.0b/2012/07"><oadr:oadrSignedObject>'
        b"<oadr:oadrPoll/></oadr:oadrSignedObject></oadr:oadrPayload>",
    ],
)
async def test_malformed_xml_gets_454_and_changes_nothing(vtn, validator, data):
    await register(vtn, validator)
    before = state(vtn)
    reply = codec.parse_payload(await vtn.handle("OadrPoll", data))
    assert validator.errors(reply.root) == []
    assert codec.decode_response(reply.element)[0] == Status.INVALID_DATA
    assert state(vtn) == before


async def test_opt_schedule_and_event_opt(vtn, validator):
    ven_id = await register(vtn, validator)
    vtn.create_event(make_event("ev-1"))
    schedule = Opt(
        "o1",
        OptType.OPT_OUT,
        OptReason.X_SCHEDULE,
        ven_id,
        T0,
        availability=(Availability(T0, timedelta(hours=4)),),
    )
    reply = await call(vtn, "EiOpt", codec.create_opt(schedule, "r"), validator)
    assert codec.decode_response(reply.element)[0] == 200
    event = vtn.events["ev-1"]
    assert vtn.schedule_opt_out(ven_id, event.start, event.end).opt_id == "o1"
    out = Opt("o2", OptType.OPT_OUT, OptReason.EMERGENCY, ven_id, T0, event_id="ev-1", modification_number=0)
    await call(vtn, "EiOpt", codec.create_opt(out, "r"), validator)
    assert vtn.opt_state("ev-1", ven_id).opt_type is OptType.OPT_OUT
    reply = await call(vtn, "EiOpt", codec.cancel_opt("r", "o2", ven_id), validator)
    assert reply.name == "oadrCanceledOpt" and codec.decode_response(reply.element)[0] == 200
    assert vtn.opt_state("ev-1", ven_id) is None
    bad = await call(vtn, "EiOpt", codec.cancel_opt("r", "nope", ven_id), validator)
    assert codec.decode_response(bad.element)[0] == Status.INVALID_ID


async def test_reports_register_request_update(vtn, validator):
    ven_id = await register(vtn, validator)
    meta = Report(
        "spec",
        ReportName.METADATA_TELEMETRY_USAGE,
        T0,
        descriptions=(
            ReportDescription(
                "p",
                ReportType.USAGE,
                ReadingType.DIRECT_READ,
                "load-1",
                POWER_REAL_KW,
                timedelta(seconds=5),
                timedelta(minutes=1),
            ),
        ),
    )
    reply = await call(vtn, "EiReport", codec.register_report("r", [meta], ven_id), validator)
    assert reply.name == "oadrRegisteredReport"
    request = codec.decode_report_request(reply.element.find("oadr:oadrReportRequest", codec.NS))
    assert request.report_specifier_id == "spec" and request.points == (("p", ReadingType.DIRECT_READ),)
    assert request.granularity == timedelta(seconds=10)
    await call(
        vtn, "EiReport", codec.created_report(200, "OK", "r", [request.report_request_id], ven_id), validator
    )
    data = Report(
        "spec",
        ReportName.TELEMETRY_USAGE,
        T0,
        request.report_request_id,
        "rep-1",
        values=(ReportValue("p", T0, 42.5),),
    )
    reply = await call(vtn, "EiReport", codec.update_report("r", [data], ven_id), validator)
    assert reply.name == "oadrUpdatedReport" and codec.decode_response(reply.element)[0] == 200
    assert ("report", [("p", 42.5)]) in vtn.listener.calls
    unknown = Report(
        "nope", ReportName.TELEMETRY_USAGE, T0, "x", "rep-2", values=(ReportValue("p", T0, 1.0),)
    )
    reply = await call(vtn, "EiReport", codec.update_report("r", [unknown], ven_id), validator)
    assert codec.decode_response(reply.element)[0] == Status.INVALID_ID


async def test_provisioned_fingerprint_is_enforced(clock, validator):
    vtn = Vtn(
        "VTN",
        clock,
        validator=validator,
        open_enrolment=False,
        profiles=[VenProfile("ven-a", fingerprint="AA:BB:CC:DD:EE:FF:00:11:22:33")],
    )
    reg = codec.create_party_registration(
        "r", Registration("ven-a", "2.0b", "simpleHttp", False, False, True)
    )
    data = codec.serialize(codec.envelope(reg))
    wrong = codec.parse_payload(await vtn.handle("EiRegisterParty", data, "00:00:00:00:00:00:00:00:00:00"))
    assert codec.decode_response(wrong.element)[0] == Status.NOT_REGISTERED_OR_AUTHORIZED
    right = codec.parse_payload(await vtn.handle("EiRegisterParty", data, "aa:bb:cc:dd:ee:ff:00:11:22:33"))
    assert codec.decode_response(right.element)[0] == 200
    other = codec.create_party_registration(
        "r", Registration("ven-x", "2.0b", "simpleHttp", False, False, True)
    )
    refused = codec.parse_payload(await vtn.handle("EiRegisterParty", codec.serialize(codec.envelope(other))))
    assert codec.decode_response(refused.element)[0] == Status.NOT_REGISTERED_OR_AUTHORIZED
    assert len(vtn.vens) == 1


async def test_unacknowledged_event_is_sent_again(vtn, validator, clock):
    ven_id = await register(vtn, validator)
    vtn.create_event(make_event("ev-1"))
    assert (await call(vtn, "OadrPoll", codec.poll(ven_id), validator)).name == "oadrDistributeEvent"
    # the VEN's oadrCreatedEvent is lost; after three poll periods the VTN distributes again
    assert (await call(vtn, "OadrPoll", codec.poll(ven_id), validator)).name == "oadrResponse"
    clock.advance(3 * vtn.poll_freq.total_seconds())
    assert (await call(vtn, "OadrPoll", codec.poll(ven_id), validator)).name == "oadrDistributeEvent"
    ack = codec.created_event(200, "OK", "r", [EventResponse("ev-1", 0, OptType.OPT_IN)], ven_id)
    await call(vtn, "EiEvent", ack, validator)
    clock.advance(3 * vtn.poll_freq.total_seconds())
    assert (await call(vtn, "OadrPoll", codec.poll(ven_id), validator)).name == "oadrResponse"


async def test_distribution_is_serialized_once_per_event_set(vtn, validator):
    a = await register(vtn, validator, "ven-a")
    b = await register(vtn, validator, "ven-b")
    vtn.create_event(make_event("ev-1"))
    replies = {
        v: await vtn.handle("OadrPoll", codec.serialize(codec.envelope(codec.poll(v)))) for v in (a, b)
    }
    ids = {v: codec.parse_payload(r).request_id() for v, r in replies.items()}
    assert ids[a] != ids[b]
    # the same bytes as building the payload for this VEN from scratch; only the requestID differs
    fresh = codec.distribute_event(ids[a], vtn.vtn_id, [(vtn.events["ev-1"], EventStatus.FAR)])
    assert replies[a] == codec.serialize(codec.envelope(fresh))
    assert replies[a].replace(ids[a].encode(), b"") == replies[b].replace(ids[b].encode(), b"")
    assert validator.errors(codec.parse_payload(replies[b]).root) == []
    assert len(vtn._distributions) == 1
    # a new version is a new payload
    vtn.modify_event(make_event("ev-1"))
    poll = await call(vtn, "OadrPoll", codec.poll(a), validator)
    assert codec.decode_event(poll.element.find("oadr:oadrEvent", codec.NS)).modification_number == 1
    assert len(vtn._distributions) == 2


async def test_signed_replies_are_signed_per_message(clock, validator, tmp_path):
    lab = LabCa(tmp_path, clock.now())
    issued = lab.issue("vtn", server=True)
    signer = Signer.from_files(str(issued.certfile), str(issued.keyfile))
    vtn = Vtn("VTN", clock, validator=validator, signer=lambda p: signer.sign(p, clock.now()))
    a = await register(vtn, validator, "ven-a")
    b = await register(vtn, validator, "ven-b")
    vtn.create_event(make_event("ev-1"))
    verifier = Verifier()
    for v in (a, b):
        poll = await call(vtn, "OadrPoll", codec.poll(v), validator)
        assert poll.name == "oadrDistributeEvent"
        assert verifier.verify(poll.root, issued.fingerprint, clock.now()) == issued.fingerprint
    idle = await call(vtn, "OadrPoll", codec.poll(a), validator)
    assert idle.name == "oadrResponse" and verifier.verify(idle.root, issued.fingerprint, clock.now())
