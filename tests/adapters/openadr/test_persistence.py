"""The 2.0b VTN's state survives a restart (SQLite and PostgreSQL through ``db_engine``)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine

from derms.adapters.base import AdapterContext
from derms.adapters.openadr.adapter import create_adapter
from derms.adapters.openadr.oadr20b import codec
from derms.adapters.openadr.oadr20b.model import (
    POWER_REAL_KW,
    Availability,
    EventResponse,
    Opt,
    Registration,
    Report,
    ReportDescription,
)
from derms.adapters.openadr.oadr20b.vocabulary import OptReason, OptType, ReadingType, ReportName, ReportType
from derms.adapters.openadr.settings import OpenAdrSettings
from derms.bus import MemoryBus
from derms.core.clock import ManualClock
from tests.adapters.openadr.openadr_samples import T0, make_event


async def send(adapter, service, msg) -> codec.Incoming:
    return codec.parse_payload(await adapter.vtn.handle(service, codec.serialize(codec.envelope(msg))))


async def test_vtn_state_survives_restart(db_engine: Engine) -> None:
    clock = ManualClock(T0)
    context = AdapterContext(MemoryBus(clock), clock, "openadr")
    first = create_adapter(context, OpenAdrSettings(port=0), db_engine)
    reply = await send(
        first,
        "EiRegisterParty",
        codec.create_party_registration("r", Registration("ven-a", "2.0b", "simpleHttp", False, False, True)),
    )
    ven_id = reply.element.findtext("ei:venID", namespaces=codec.NS)
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
    await send(first, "EiReport", codec.register_report("r", [meta], ven_id))
    first.vtn.create_event(make_event("ev-1"))
    first.vtn.cancel_event("ev-1")
    first.vtn.create_event(make_event("ev-2"))
    await send(
        first,
        "EiEvent",
        codec.created_event(200, "OK", "r", [EventResponse("ev-2", 0, OptType.OPT_IN)], ven_id),
    )
    schedule = Opt(
        "o1",
        OptType.OPT_OUT,
        OptReason.X_SCHEDULE,
        ven_id,
        T0,
        availability=(Availability(T0, timedelta(hours=2)),),
    )
    await send(first, "EiOpt", codec.create_opt(schedule, "r"))

    second = create_adapter(context, OpenAdrSettings(port=0), db_engine)
    vtn = second.vtn
    assert set(vtn.vens) == {ven_id}
    assert vtn.vens[ven_id].reports["spec"] == first.vtn.vens[ven_id].reports["spec"]
    assert set(vtn.vens[ven_id].report_requests) == set(first.vtn.vens[ven_id].report_requests)
    assert vtn.events == first.vtn.events
    assert vtn.events["ev-1"].modification_number == 1
    assert vtn.opt_state("ev-2", ven_id).opt_type is OptType.OPT_IN
    assert vtn.opts["o1"] == schedule
    # the VEN carries on without re-registering and gets its events again
    poll = await send(second, "OadrPoll", codec.poll(ven_id))
    assert poll.name == "oadrDistributeEvent"
    # a cancelled registration is gone after the next restart
    await send(
        second,
        "EiRegisterParty",
        codec.cancel_party_registration("r", vtn.vens[ven_id].registration_id, ven_id),
    )
    assert create_adapter(context, OpenAdrSettings(port=0), db_engine).vtn.vens == {}
