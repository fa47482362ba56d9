"""Our 2.0b VEN client against our VTN over HTTP, and the event → objective mapping."""

from __future__ import annotations

from datetime import timedelta

import pytest

from derms.adapters.openadr.oadr20b.model import (
    POWER_REAL_KW,
    Event,
    EventSignal,
    Interval,
    ItemBase,
    Report,
    ReportDescription,
)
from derms.adapters.openadr.oadr20b.server import HttpServer, make_app
from derms.adapters.openadr.oadr20b.ven import VenClient
from derms.adapters.openadr.oadr20b.vocabulary import (
    EventStatus,
    OptType,
    ReadingType,
    ReportName,
    ReportType,
    SignalName,
    SignalType,
)
from derms.adapters.openadr.oadr20b.vtn import Vtn
from derms.adapters.openadr.objectives import objectives_for
from derms.core.objectives import ObjectiveKind
from tests.adapters.openadr.openadr_samples import T0, make_event


class Listener:
    def __init__(self) -> None:
        self.values: list[float] = []

    async def ven_registered(self, ven):
        pass

    async def ven_cancelled(self, ven):
        pass

    async def event_response(self, ven, event, opt_type):
        pass

    async def report_values(self, ven, points):
        self.values += [v.value for _, v in points]


async def test_ven_client_round_trip(clock, validator):
    listener = Listener()
    vtn = Vtn("VTN", clock, validator=validator, listener=listener, report_granularity=timedelta(seconds=30))
    server = HttpServer(make_app(vtn))
    await server.start()
    decisions: list[str] = []
    cancelled: list[str] = []

    async def on_event(event):
        decisions.append(event.event_id)
        return OptType.OPT_OUT if event.event_id.startswith("out") else OptType.OPT_IN

    async def on_cancel(event):
        cancelled.append(event.event_id)

    async def read_point(specifier, r_id, now):
        return 61.5

    meta = Report(
        "agg",
        ReportName.METADATA_TELEMETRY_USAGE,
        T0,
        descriptions=(
            ReportDescription(
                "load",
                ReportType.USAGE,
                ReadingType.SUMMED,
                "agg",
                POWER_REAL_KW,
                timedelta(seconds=10),
                timedelta(minutes=5),
            ),
        ),
    )
    ven = VenClient(
        f"{server.url}/OpenADR2/Simple/2.0b",
        "agg-ven",
        clock,
        on_event=on_event,
        on_cancel=on_cancel,
        reports=[meta],
        read_point=read_point,
        validator=validator,
    )
    try:
        vtn.create_event(make_event("in-1"))
        vtn.create_event(make_event("out-1"))
        await ven.register()
        await ven.register_reports()
        assert len(ven.state.report_requests) == 1
        await ven.request_events()
        assert sorted(decisions) == ["in-1", "out-1"]
        assert vtn.opt_state("in-1", ven.ven_id).opt_type is OptType.OPT_IN
        assert vtn.opt_state("out-1", ven.ven_id).opt_type is OptType.OPT_OUT
        assert await ven.poll() == "oadrResponse"  # nothing new
        await ven.opt("in-1", OptType.OPT_OUT, "emergency")
        assert vtn.opt_state("in-1", ven.ven_id).opt_type is OptType.OPT_OUT
        vtn.cancel_event("out-1")
        assert await ven.poll() == "oadrDistributeEvent"
        assert cancelled == ["out-1"]
        assert await ven.send_due_reports() == 1
        assert listener.values == [61.5]
        assert await ven.send_due_reports() == 0  # granularity not yet elapsed
        clock.advance(30)
        assert await ven.send_due_reports() == 1
        vtn.request_reregistration(ven.ven_id)
        assert await ven.poll() == "oadrRequestReregistration"
        await ven.cancel_registration()
        assert vtn.vens == {}
    finally:
        await ven.close()
        await server.stop()


def _event(*signals: EventSignal, priority: int = 2) -> Event:
    base = make_event()
    return Event(
        base.event_id,
        3,
        base.market_context,
        T0,
        EventStatus.FAR,
        T0 + timedelta(hours=1),
        timedelta(minutes=30),
        signals,
        priority=priority,
    )


@pytest.mark.parametrize(
    ("signal", "expected"),
    [
        (
            EventSignal(
                SignalName.LOAD_DISPATCH,
                SignalType.SETPOINT,
                "s",
                (Interval(timedelta(minutes=30), 250.0),),
                item=POWER_REAL_KW,
            ),
            [(ObjectiveKind.PEAK_REDUCTION, 250_000.0)],
        ),
        (
            EventSignal(
                SignalName.LOAD_DISPATCH, SignalType.DELTA, "s", (Interval(timedelta(minutes=30), -40.0),)
            ),
            [(ObjectiveKind.CAPACITY_TARGET, 40_000.0)],
        ),
        (
            EventSignal(
                SignalName.LOAD_CONTROL,
                SignalType.X_LOAD_CONTROL_CAPACITY,
                "s",
                (Interval(timedelta(minutes=30), 2.0),),
                item=ItemBase("power:powerReal", "RealPower", "W", "M"),
            ),
            [(ObjectiveKind.PEAK_REDUCTION, 2_000_000.0)],
        ),
        (
            EventSignal(
                SignalName.SIMPLE,
                SignalType.LEVEL,
                "s",
                (Interval(timedelta(minutes=15), 0.0), Interval(timedelta(minutes=15), 3.0, 1)),
            ),
            [(ObjectiveKind.CAPACITY_TARGET, 300.0)],
        ),
        (
            EventSignal(
                SignalName.LOAD_DISPATCH, SignalType.DELTA, "s", (Interval(timedelta(minutes=30), 40.0),)
            ),
            [],
        ),
    ],
)
def test_objectives_for_signals(signal, expected):
    objectives = objectives_for(_event(signal), {1: 100.0, 2: 200.0, 3: 300.0}, tenant_id="t1")
    assert [(o.kind, o.target_w) for o in objectives] == expected
    for o in objectives:
        assert o.source == "openadr:ev-1" and o.priority == 2 and o.tenant_id == "t1"
    if signal.name is SignalName.SIMPLE:
        assert objectives[0].start == T0 + timedelta(hours=1, minutes=15)


def test_price_signal_becomes_arbitrage():
    price = EventSignal(
        SignalName.ELECTRICITY_PRICE,
        SignalType.PRICE,
        "p",
        (Interval(timedelta(minutes=15), 0.31), Interval(timedelta(minutes=15), 0.45, 1)),
    )
    (objective,) = objectives_for(_event(price, priority=0), {})
    assert objective.kind is ObjectiveKind.ARBITRAGE and objective.prices == (0.31, 0.45)
    assert objective.priority == 100
