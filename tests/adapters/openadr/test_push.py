"""2.0b push model over real HTTP: the VTN POSTs to the VEN, retries with back-off, falls back to poll.

openleadr's VEN (0.5.36) is pull-only (it sends an oadrTransportAddress but never listens), so
the VEN here is derms's own ``VenClient`` in push mode, plus a bare receiver for failures.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from derms.adapters.base import AdapterContext
from derms.adapters.openadr.adapter import create_adapter
from derms.adapters.openadr.oadr20b import codec
from derms.adapters.openadr.oadr20b.model import EventResponse, Registration
from derms.adapters.openadr.oadr20b.pki import LabCa
from derms.adapters.openadr.oadr20b.push import Backoff, PushDelivery, endpoint
from derms.adapters.openadr.oadr20b.server import PATH, HttpServer, TlsFiles, make_app
from derms.adapters.openadr.oadr20b.ven import VenClient
from derms.adapters.openadr.oadr20b.vocabulary import EventStatus, OptType, Status
from derms.adapters.openadr.oadr20b.vtn import Vtn
from derms.adapters.openadr.settings import OpenAdrSettings, VenProvision
from derms.bridge.openadr import OpenAdrTranslator
from derms.bus import MemoryBus
from derms.core.clock import ManualClock
from derms.core.controls import LoadShed
from derms.core.der import Capabilities, Der, DerKind
from derms.core.dispatch import Setpoint
from tests.adapters.openadr.openadr_samples import T0, make_event

FAST = Backoff(first=0.02, factor=2.0, cap=0.1, attempts=3)


class RecordingVen(VenClient):
    """Our push VEN, keeping every message pushed to it and every reply it gave."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.exchanges: list[tuple[str, bytes, bytes]] = []

    async def handle_push(self, service: str, data: bytes) -> bytes:
        reply = await super().handle_push(service, data)
        self.exchanges.append((service, data, reply))
        return reply


async def test_events_are_pushed_to_our_push_ven(clock, validator):
    vtn = Vtn("VTN", clock, validator=validator)
    vtn_server = HttpServer(make_app(vtn))
    await vtn_server.start()
    pusher = PushDelivery(vtn, backoff=FAST)
    decisions: list[tuple[str, int]] = []
    cancelled: list[str] = []

    async def on_event(event):
        decisions.append((event.event_id, event.modification_number))
        return OptType.OPT_IN

    async def on_cancel(event):
        cancelled.append(event.event_id)

    ven = RecordingVen(
        f"{vtn_server.url}{PATH}",
        "push-ven",
        clock,
        on_event=on_event,
        on_cancel=on_cancel,
        validator=validator,
    )
    ven_server = HttpServer(ven.push_app())
    await ven_server.start()
    ven.transport_address = ven_server.url
    try:
        await ven.register()
        (record,) = vtn.vens.values()
        assert record.push and record.registration.transport_address == ven_server.url
        vtn.create_event(make_event("ev-1"))
        await pusher.idle()
        assert decisions == [("ev-1", 0)]
        assert vtn.opt_state("ev-1", ven.ven_id).opt_type is OptType.OPT_IN  # the reply was the ack
        vtn.modify_event(make_event("ev-1"))
        await pusher.idle()
        assert vtn.opt_state("ev-1", ven.ven_id).modification_number == 1
        vtn.cancel_event("ev-1")
        await pusher.idle()
        assert cancelled == ["ev-1"] and vtn.opt_state("ev-1", ven.ven_id).modification_number == 2
        assert (pusher.delivered, pusher.failures) == (3, 0)
        assert await ven.poll() == "oadrResponse"  # delivered by push, nothing left for a poll
        for service, pushed, reply in ven.exchanges:
            assert service == "EiEvent"
            assert codec.parse_payload(pushed).name == "oadrDistributeEvent"
            assert codec.parse_payload(reply).name == "oadrCreatedEvent"
            assert validator.errors(codec.parse_payload(pushed).root) == []
            assert validator.errors(codec.parse_payload(reply).root) == []
    finally:
        await pusher.stop()
        await ven_server.stop()
        await vtn_server.stop()
        await ven.close()


async def test_failed_pushes_are_retried_then_left_for_the_poll(clock, validator):
    vtn = Vtn("VTN", clock, validator=validator)
    pusher = PushDelivery(vtn, backoff=FAST)
    received: list[bytes] = []
    answers = [Response(status_code=503), Response(b"<<<", media_type="application/xml")]

    async def receive(request: Request) -> Response:
        body = await request.body()
        received.append(body)
        if answers:
            return answers.pop(0)
        venid = vtn_ven_id[0]
        ok = codec.response(Status.OK, "OK", codec.parse_payload(body).request_id(), venid)
        return Response(codec.serialize(codec.envelope(ok)), media_type="application/xml")

    receiver = HttpServer(Starlette(routes=[Route(f"{PATH}/{{service}}", receive, methods=["POST"])]))
    await receiver.start()
    vtn_ven_id: list[str] = []
    try:
        reg = Registration("bare", "2.0b", "simpleHttp", False, False, False, transport_address=receiver.url)
        reply = codec.parse_payload(
            await vtn.handle(
                "EiRegisterParty", codec.serialize(codec.envelope(codec.create_party_registration("r", reg)))
            )
        )
        ven_id = reply.element.findtext("ei:venID", namespaces=codec.NS)
        vtn_ven_id.append(ven_id)
        vtn.create_event(make_event("ev-1"))
        await pusher.idle()
        # HTTP 503, then a reply that is not XML, then an oadrResponse: two failures, one delivery
        assert (len(received), pusher.failures, pusher.delivered) == (3, 2, 1)
        for body in received:
            pushed = codec.parse_payload(body)
            assert pushed.name == "oadrDistributeEvent" and validator.errors(pushed.root) == []
        # the oadrResponse only says "received"; the VEN's oadrCreatedEvent follows as its own request
        ack = codec.created_event(200, "OK", "r", [EventResponse("ev-1", 0, OptType.OPT_IN)], ven_id)
        answer = codec.parse_payload(await vtn.handle("EiEvent", codec.serialize(codec.envelope(ack))))
        assert codec.decode_response(answer.element)[0] == 200
        assert vtn.opt_state("ev-1", ven_id).opt_type is OptType.OPT_IN
        # the VEN's server goes away: the push is retried, then the change waits for its poll
        await receiver.stop()
        vtn.cancel_event("ev-1")
        await pusher.idle()
        assert pusher.failures == 2 + FAST.attempts and pusher.delivered == 1
        poll = codec.parse_payload(
            await vtn.handle("OadrPoll", codec.serialize(codec.envelope(codec.poll(ven_id))))
        )
        assert poll.name == "oadrDistributeEvent" and validator.errors(poll.root) == []
        event = codec.decode_event(poll.element.find("oadr:oadrEvent", codec.NS))
        assert event.status is EventStatus.CANCELLED and event.modification_number == 1
    finally:
        await pusher.stop()
        await receiver.stop()


def test_push_endpoint_and_backoff():
    assert (
        endpoint("https://ven.example:8443", "EiEvent")
        == "https://ven.example:8443/OpenADR2/Simple/2.0b/EiEvent"
    )
    assert endpoint("http://v/OpenADR2/Simple/2.0b/", "EiReport") == "http://v/OpenADR2/Simple/2.0b/EiReport"
    assert [Backoff(first=1, factor=2, cap=5).delay(n) for n in (1, 2, 3, 4)] == [1, 2, 4, 5]
    assert timedelta(seconds=Backoff().delay(100)) == timedelta(minutes=5)


async def test_adapter_pushes_over_mutual_tls_to_a_pinned_ven(tmp_path, validator):
    """The platform path: a bridge command becomes an event pushed over mutual TLS; the VEN's
    reply counts only because its server certificate has the provisioned fingerprint."""
    clock = ManualClock(T0)
    bus = MemoryBus(clock)
    await bus.start()
    states: list[str] = []

    async def on_state(msg):
        states.append(msg.data["state"])

    await bus.subscribe("command.state", on_state)
    ca = LabCa(tmp_path, datetime.now(UTC))  # TLS checks validity against the real time
    vtn_cert = ca.issue("vtn", server=True, client=True)
    ven_cert = ca.issue("ven-a", server=True, client=True)  # serves pushes, calls the VTN
    settings = OpenAdrSettings(
        port=0,
        tls_certfile=str(vtn_cert.certfile),
        tls_keyfile=str(vtn_cert.keyfile),
        tls_ca_certs=str(ca.certfile),
        open_enrolment=False,
        vens=[VenProvision(ven_name="ven-a", fingerprint=ven_cert.fingerprint, resource_ids=["load-1"])],
    )
    adapter = create_adapter(AdapterContext(bus, clock, "openadr"), settings)
    der = Der("cni-1", "s", DerKind.CI_LOAD, Capabilities(w_max_consume=3e5), "openadr", "ven-a/load-1", "t")
    await adapter.register_device(der)
    await adapter.start()
    context = ssl.create_default_context(cafile=str(ca.certfile))
    context.load_cert_chain(str(ven_cert.certfile), str(ven_cert.keyfile))

    async def opt_in(event):
        return OptType.OPT_IN

    ven = RecordingVen(
        adapter.url,
        "ven-a",
        clock,
        on_event=opt_in,
        validator=validator,
        http=httpx.AsyncClient(verify=context),
    )
    ven_server = HttpServer(
        ven.push_app(), tls=TlsFiles(str(ven_cert.certfile), str(ven_cert.keyfile), str(ca.certfile))
    )
    await ven_server.start()
    ven.transport_address = ven_server.url
    try:
        await ven.register()
        sp = Setpoint(der.id, LoadShed(level=1), T0 + timedelta(hours=1), T0 + timedelta(hours=2))
        await adapter.send(OpenAdrTranslator("http://mc").translate(der, sp, "cmd-1"))
        await adapter.pusher.idle()
        await bus.drain()
        assert states == ["sent", "acknowledged"]
        ((service, pushed, reply),) = ven.exchanges
        assert service == "EiEvent" and validator.errors(codec.parse_payload(pushed).root) == []
        assert codec.parse_payload(reply).name == "oadrCreatedEvent"
        # pinned to another certificate, the same VEN's push replies are refused and retried
        (record,) = adapter.vtn.vens.values()
        record.profile = replace(record.profile, fingerprint="00:11:22:33:44:55:66:77:88:99")
        adapter.pusher.backoff = FAST
        adapter.vtn.modify_event(adapter.vtn.events["cmd-1"])
        await adapter.pusher.idle()
        assert adapter.pusher.failures == FAST.attempts
        assert adapter.vtn.opt_state("cmd-1", record.ven_id).modification_number == 0
    finally:
        await ven.http.aclose()  # no idle TLS connections left for the servers to wait on
        await adapter.stop()
        await ven_server.stop()
        await bus.close()


async def test_unacknowledged_push_is_sent_again_after_three_poll_periods(clock, validator):
    vtn = Vtn("VTN", clock, validator=validator)
    pusher = PushDelivery(vtn, backoff=FAST, sweep_s=0.01)
    received: list[codec.Incoming] = []

    async def receive(request: Request) -> Response:
        received.append(codec.parse_payload(await request.body()))
        ok = codec.response(Status.OK, "OK", received[-1].request_id(), None)  # and no oadrCreatedEvent
        return Response(codec.serialize(codec.envelope(ok)), media_type="application/xml")

    receiver = HttpServer(Starlette(routes=[Route(f"{PATH}/{{service}}", receive, methods=["POST"])]))
    await receiver.start()
    pusher.start()
    try:
        reg = Registration("quiet", "2.0b", "simpleHttp", False, False, False, transport_address=receiver.url)
        data = codec.serialize(codec.envelope(codec.create_party_registration("r", reg)))
        ven_id = codec.parse_payload(await vtn.handle("EiRegisterParty", data)).element.findtext(
            "ei:venID", namespaces=codec.NS
        )
        vtn.create_event(make_event("ev-1"))
        await asyncio.sleep(0.1)
        await pusher.idle()
        assert len(received) == 1
        clock.advance(3 * vtn.poll_freq.total_seconds())
        await asyncio.sleep(0.1)
        await pusher.idle()
        assert len(received) == 2 and validator.errors(received[1].root) == []
        ack = codec.created_event(200, "OK", "r", [EventResponse("ev-1", 0, OptType.OPT_IN)], ven_id)
        await vtn.handle("EiEvent", codec.serialize(codec.envelope(ack)))
        clock.advance(3 * vtn.poll_freq.total_seconds())
        await asyncio.sleep(0.1)
        await pusher.idle()
        assert len(received) == 2  # acknowledged: nothing more to push
    finally:
        await pusher.stop()
        await receiver.stop()
