"""SunSpec adapter + bridge against our simulated devices over real Modbus TCP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from derms.adapters.base import AdapterContext
from derms.adapters.sunspec import SunSpecAdapter, SunSpecSettings, SunSpecWrite
from derms.bridge.sunspec import SunSpecTranslator
from derms.bus import MemoryBus
from derms.bus.base import Message
from derms.core.clock import SystemClock
from derms.core.controls import (
    ActivePowerLimit,
    ChargeDischarge,
    CurvePoint,
    FixedPowerFactor,
    GenerationLimit,
    LoadShed,
    VoltVarCurve,
)
from derms.core.der import Capabilities, Der, DerKind
from derms.core.dispatch import Setpoint
from derms.core.errors import LimitViolation
from derms.sim.protocols.sunspec import SunSpecDeviceServer, battery_inverter, pv_inverter


class Collected:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def __call__(self, message: Message) -> None:
        self.messages.append(message)

    def of(self, subject: str) -> list[dict]:  # type: ignore[type-arg]
        return [m.data for m in self.messages if m.subject == subject]


@pytest.fixture
async def rig() -> AsyncIterator[tuple[SunSpecAdapter, MemoryBus, Collected, dict[str, SunSpecDeviceServer]]]:
    clock = SystemClock()
    bus = MemoryBus()
    seen = Collected()
    await bus.subscribe(">", seen)
    servers = {
        "pv": SunSpecDeviceServer(*pv_inverter("PV-1", 10_000, 8_000), clock),
        "bat": SunSpecDeviceServer(*battery_inverter("BAT-1", 5_000, 13_500), clock),
    }
    for server in servers.values():
        await server.start()
    adapter = SunSpecAdapter(
        AdapterContext(bus=bus, clock=clock, protocol="sunspec"),
        SunSpecSettings(timeout_s=1, backoff_initial_s=0.1),
    )
    for name, server in servers.items():
        kind = DerKind.PV_INVERTER if name == "pv" else DerKind.HOME_BATTERY
        caps = Capabilities(
            w_max=10_000 if name == "pv" else 5_000, w_max_consume=0 if name == "pv" else 5_000
        )
        await adapter.register_device(
            Der(
                id=name,
                site_id="s",
                kind=kind,
                capabilities=caps,
                protocol="sunspec",
                address=f"127.0.0.1:{server.port}/1",
                tenant_id="t",
            )
        )
    yield adapter, bus, seen, servers
    await adapter.stop()
    for server in servers.values():
        await server.stop()
    await bus.close()


def setpoint(der_id: str, control: object) -> Setpoint:
    start = datetime.now(UTC)
    return Setpoint(der_id=der_id, control=control, start=start, end=start + timedelta(hours=1))  # type: ignore[arg-type]


async def test_poll_publishes_telemetry(rig) -> None:  # type: ignore[no-untyped-def]
    adapter, bus, seen, _ = rig
    pv = await adapter.poll_once("pv")
    bat = await adapter.poll_once("bat")
    assert pv is not None and pv.p_w == pytest.approx(8000) and pv.f_hz == pytest.approx(60.0)
    assert bat is not None and bat.soc == pytest.approx(0.5) and bat.p_w == 0
    await bus.drain()
    assert [t["der_id"] for t in seen.of("telemetry.sunspec")] == [["pv"], ["bat"]]
    assert {s["der_id"] for s in seen.of("der.status.sunspec") if s["online"]} == {"pv", "bat"}


async def test_limit_quantised_written_verified_and_applied(rig) -> None:  # type: ignore[no-untyped-def]
    adapter, bus, seen, _ = rig
    await adapter.poll_once("pv")
    translator = SunSpecTranslator(adapter.device_map)
    der = adapter.sessions["pv"].der
    command = translator.translate(der, setpoint("pv", ActivePowerLimit(pct=33.333)), "c1")
    assert isinstance(command.payload, SunSpecWrite)
    assert [(w.model_id, w.path) for w in command.payload.writes] == [
        (704, "WMaxLimPct"),
        (704, "WMaxLimPctEna"),
    ]
    (loss,) = command.losses  # WMaxLimPct_SF = -2: 33.333 % is carried as 33.33 %
    assert loss.delivered == pytest.approx(33.33) and loss.requested == 33.333
    await adapter.send(command)
    await bus.drain()
    assert [s["state"] for s in seen.of("command.state")] == ["sent", "acknowledged"]
    sample = await adapter.poll_once("pv")
    assert sample is not None and sample.p_w == pytest.approx(3333)

    generation = translator.translate(der, setpoint("pv", GenerationLimit(w=2500)), "c2")
    await adapter.send(generation)
    assert (await adapter.poll_once("pv")).p_w == pytest.approx(2500)  # type: ignore[union-attr]


async def test_power_factor_and_volt_var(rig) -> None:  # type: ignore[no-untyped-def]
    adapter, bus, seen, _servers = rig
    await adapter.poll_once("pv")
    translator = SunSpecTranslator(adapter.device_map)
    der = adapter.sessions["pv"].der
    await adapter.send(
        translator.translate(der, setpoint("pv", FixedPowerFactor(pf=0.9, absorbing=True)), "pf")
    )
    sample = await adapter.poll_once("pv")
    assert sample is not None and sample.q_var == pytest.approx(-8000 * 0.4843, rel=1e-2)
    curve = VoltVarCurve(points=(CurvePoint(0.93, 0.3), CurvePoint(0.97, 0.0), CurvePoint(1.03, 0.0),
                                 CurvePoint(1.07, -0.3)))  # fmt: skip
    await adapter.send(translator.translate(der, setpoint("pv", curve), "vv"))
    await bus.drain()
    assert [s["state"] for s in seen.of("command.state") if s["command_id"] == "vv"][-1] == "acknowledged"
    vv = adapter.device_map("pv")[705][0]
    assert vv.value("Crv[1].Pt[0].V") == pytest.approx(93.0) and vv.value(
        "Crv[1].Pt[3].Var"
    ) == pytest.approx(-30.0)
    assert vv.value("Ena") == 1 and vv.value("AdptCrvReq") == 2
    too_long = VoltVarCurve(points=tuple(CurvePoint(0.9 + i / 100, 0.0) for i in range(5)))
    with pytest.raises(LimitViolation, match="holds 4"):
        translator.translate(der, setpoint("pv", too_long), "vv2")


async def test_storage_charge_discharge_and_limits(rig) -> None:  # type: ignore[no-untyped-def]
    adapter, _bus, _seen, _ = rig
    await adapter.poll_once("bat")
    translator = SunSpecTranslator(adapter.device_map)
    der = adapter.sessions["bat"].der
    await adapter.send(translator.translate(der, setpoint("bat", ChargeDischarge(w=-2500)), "charge"))
    assert (await adapter.poll_once("bat")).p_w == pytest.approx(-2500)  # type: ignore[union-attr]
    discharge = translator.translate(der, setpoint("bat", ChargeDischarge(w=1234)), "discharge")
    (loss,) = discharge.losses  # InOutWRte_SF = -1: 24.68 % of WChaMax is carried as 24.7 %
    assert loss.field == "124.OutWRte" and loss.delivered == pytest.approx(24.7)
    await adapter.send(discharge)
    assert (await adapter.poll_once("bat")).p_w == pytest.approx(1235)  # type: ignore[union-attr]
    with pytest.raises(LimitViolation, match="exceeds WChaMax"):
        translator.translate(der, setpoint("bat", ChargeDischarge(w=6000)), "x")
    with pytest.raises(LimitViolation, match="not supported"):
        translator.translate(der, setpoint("bat", LoadShed(level=1)), "x")
    with pytest.raises(LimitViolation, match="not discovered"):
        SunSpecTranslator(lambda _: {}).translate(der, setpoint("bat", ChargeDischarge(w=0)), "x")


async def test_device_refusal_is_reported_failed(rig) -> None:  # type: ignore[no-untyped-def]
    adapter, bus, seen, _ = rig
    await adapter.poll_once("pv")
    from derms.adapters.base import NativeCommand
    from derms.adapters.sunspec import PointWrite

    now = datetime.now(UTC)
    bad = NativeCommand(
        "bad", "pv", "sunspec", SunSpecWrite((PointWrite(704, "WMaxLimPct", 150.0),)), now, now
    )
    await adapter.send(bad)
    read_only = NativeCommand("ro", "pv", "sunspec", SunSpecWrite((PointWrite(701, "W", 1.0),)), now, now)
    await adapter.send(read_only)
    await bus.drain()
    failed = {s["command_id"]: s["detail"] for s in seen.of("command.state") if s["state"] == "failed"}
    assert set(failed) == {"bad", "ro"} and "refused" in failed["bad"]


async def test_poll_loop_reconnects_after_device_restart(rig) -> None:  # type: ignore[no-untyped-def]
    adapter, bus, seen, servers = rig
    await adapter.start()
    port = servers["pv"].port

    async def until(predicate) -> None:  # type: ignore[no-untyped-def]
        async with asyncio.timeout(30):
            while not predicate():
                await asyncio.sleep(0.05)
                await bus.drain()

    await until(lambda: any(s["online"] for s in seen.of("der.status.sunspec") if s["der_id"] == "pv"))
    await servers["pv"].stop()
    await until(lambda: any(not s["online"] for s in seen.of("der.status.sunspec") if s["der_id"] == "pv"))
    device, models = pv_inverter("PV-1", 10_000, 8_000)
    servers["pv"] = SunSpecDeviceServer(device, models, SystemClock(), port=port)
    await servers["pv"].start()
    await until(lambda: [s["online"] for s in seen.of("der.status.sunspec") if s["der_id"] == "pv"][-1])
    assert adapter.sessions["pv"].online


async def test_physics_backed_battery_follows_a_charge_command() -> None:
    """The same server over derms.sim battery physics (SimulatedDevice) obeys a bridged set point."""
    from derms.sim.protocols.sunspec import fleet_device

    clock = SystemClock()
    der = Der(id="fb", site_id="s", kind=DerKind.HOME_BATTERY, protocol="sunspec", address="127.0.0.1:1",
              tenant_id="t", capabilities=Capabilities(w_max=5000, w_max_consume=5000, va_max=5000,
                                                       var_max_inject=2000, var_max_absorb=2000, wh_max=13_500))  # fmt: skip
    server = SunSpecDeviceServer(*fleet_device(der, clock), clock)
    await server.start()
    bus = MemoryBus()
    adapter = SunSpecAdapter(AdapterContext(bus=bus, clock=clock, protocol="sunspec"), SunSpecSettings())
    try:
        registered = Der(
            **{**{f: getattr(der, f) for f in der.__slots__}, "address": f"127.0.0.1:{server.port}"}
        )  # type: ignore[attr-defined]
        await adapter.register_device(registered)
        first = await adapter.poll_once("fb")
        assert first is not None and first.soc is not None
        command = SunSpecTranslator(adapter.device_map).translate(
            registered, setpoint("fb", ChargeDischarge(w=-2000)), "fc"
        )
        await adapter.send(command)
        sample = await adapter.poll_once("fb")
        assert sample is not None and sample.p_w == pytest.approx(-2000, rel=0.02)
    finally:
        await adapter.stop()
        await server.stop()
        await bus.close()
