"""Bridge translation to 2.0b events, and the adapter's command states from opt to completion."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from derms.adapters.base import AdapterContext
from derms.adapters.openadr.adapter import create_adapter
from derms.adapters.openadr.oadr20b import codec
from derms.adapters.openadr.oadr20b.model import EventResponse, Registration
from derms.adapters.openadr.oadr20b.vocabulary import OptType, SignalName, SignalType
from derms.adapters.openadr.settings import OpenAdrSettings
from derms.bridge.openadr import OpenAdrTranslator
from derms.bus import MemoryBus
from derms.core.clock import ManualClock
from derms.core.controls import ActivePowerTarget, FixedPowerFactor, LoadLimit, LoadShed, PriceSignal
from derms.core.der import Capabilities, Der, DerKind
from derms.core.dispatch import Setpoint
from derms.core.errors import LimitViolation, NotFound
from tests.adapters.openadr.openadr_samples import T0

DER = Der(
    "cni-1", "site-1", DerKind.CI_LOAD, Capabilities(w_max_consume=300_000.0), "openadr", "ven-a/load-1", "t"
)


def setpoint(control) -> Setpoint:
    return Setpoint(DER.id, control, T0 + timedelta(hours=1), T0 + timedelta(hours=2))


@pytest.mark.parametrize(
    ("control", "name", "kind", "value"),
    [
        (LoadShed(level=2), SignalName.SIMPLE, SignalType.LEVEL, 2.0),
        (LoadLimit(w=123_456.0), SignalName.LOAD_DISPATCH, SignalType.SETPOINT, 123.456),
        (ActivePowerTarget(w=-80_000.0), SignalName.LOAD_DISPATCH, SignalType.SETPOINT, 80.0),
        (PriceSignal(price_per_kwh=0.42), SignalName.ELECTRICITY_PRICE, SignalType.PRICE, 0.42),
    ],
)
def test_translation(control, name, kind, value):
    command = OpenAdrTranslator("http://mc").translate(DER, setpoint(control), "cmd-1")
    event = command.payload
    (signal,) = event.signals
    assert (signal.name, signal.type) == (name, kind)
    assert signal.intervals[0].value == pytest.approx(value)
    assert event.event_id == "cmd-1" and event.duration == timedelta(hours=1)
    assert event.target.resource_ids == ("load-1",)
    assert command.losses == ()


def test_quantisation_is_recorded_and_unsupported_controls_refused():
    command = OpenAdrTranslator("http://mc", resolution_kw=1.0).translate(
        DER, setpoint(LoadLimit(w=123_456.0)), "c"
    )
    (loss,) = command.losses
    assert (loss.requested, loss.delivered, loss.unit) == (pytest.approx(123.456), 123.0, "kW")
    with pytest.raises(LimitViolation, match="no signal"):
        OpenAdrTranslator("http://mc").translate(DER, setpoint(FixedPowerFactor(pf=0.95)), "c")
    with pytest.raises(LimitViolation, match="inject"):
        OpenAdrTranslator("http://mc").translate(DER, setpoint(ActivePowerTarget(w=5_000.0)), "c")


async def test_command_states_follow_opts_and_clock():
    clock = ManualClock(T0)
    bus = MemoryBus(clock)
    await bus.start()
    states: list[tuple[str, str]] = []

    async def on_state(msg):
        states.append((msg.data["command_id"], msg.data["state"]))

    await bus.subscribe("command.state", on_state)
    adapter = create_adapter(
        AdapterContext(bus, clock, "openadr"), OpenAdrSettings(port=0, status_tick_s=0.01)
    )
    with pytest.raises(NotFound):
        await adapter.send(OpenAdrTranslator("http://mc").translate(DER, setpoint(LoadShed(level=1)), "x"))
    await adapter.register_device(DER)
    await adapter.start()
    try:
        reg = Registration("ven-a", "2.0b", "simpleHttp", False, False, True)
        reply = codec.parse_payload(
            await adapter.vtn.handle(
                "EiRegisterParty", codec.serialize(codec.envelope(codec.create_party_registration("r", reg)))
            )
        )
        ven_id = reply.element.findtext("ei:venID", namespaces=codec.NS)
        translator = OpenAdrTranslator("http://mc")
        for command_id in ("in", "out"):
            await adapter.send(translator.translate(DER, setpoint(LoadShed(level=1)), command_id))
        responses = [EventResponse("in", 0, OptType.OPT_IN), EventResponse("out", 0, OptType.OPT_OUT)]
        ack = codec.created_event(200, "OK", "r", responses, ven_id)
        await adapter.vtn.handle("EiEvent", codec.serialize(codec.envelope(ack)))
        clock.advance(3600 + 1)
        await asyncio.sleep(0.1)
        clock.advance(3600)
        await asyncio.sleep(0.1)
        await bus.drain()
        assert [s for c, s in states if c == "in"] == ["sent", "acknowledged", "active", "completed"]
        assert [s for c, s in states if c == "out"] == ["sent", "failed"]
    finally:
        await adapter.stop()
        await bus.close()
