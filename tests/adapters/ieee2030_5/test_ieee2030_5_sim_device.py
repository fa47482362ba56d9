"""The simulated 2030.5 battery: discovers, registers, obeys events then its default, reports back."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from derms.adapters.ieee2030_5.schema import (
    ActivePower,
    CurvePointXml,
    DERCapability,
    DERControlBase,
    DERCurveXml,
)
from derms.bridge.ieee2030_5 import Ieee2030_5Translator
from derms.core.controls import ChargeDischarge, GenerationLimit, VoltVarCurve
from derms.core.der import Capabilities, Der, DerKind
from derms.core.dispatch import Setpoint
from derms.core.events import decode_telemetry
from derms.sim.device import SimulatedDevice
from derms.sim.protocols.ieee2030_5 import Sep2Device, Sep2DeviceConfig, Sep2Fleet
from derms.sim.protocols.ieee2030_5.translate import controls_for
from tests.adapters.ieee2030_5.sep2_harness import Harness


def test_modes_translate_to_core_controls_with_multipliers_and_curves() -> None:
    curve = DERCurveXml(
        href="/c/1",
        mRID="AB" * 16,
        creationTime=0,
        CurveData=[CurvePointXml(xvalue=9200, yvalue=3000), CurvePointXml(xvalue=10800, yvalue=-3000)],
        curveType=11,
        xMultiplier=-2,
        yMultiplier=-2,
        yRefType=2,
    )
    base = DERControlBase(
        opModExpLimW=ActivePower(value=15, multiplier=2),
        opModTargetW=ActivePower(value=-2, multiplier=3),
        opModVoltVar={"href": "/c/1"},  # type: ignore[arg-type]
    )
    out = controls_for(base, {"/c/1": curve}, storage=True)
    assert out["opModExpLimW"] == GenerationLimit(1500.0)
    assert out["opModTargetW"] == ChargeDischarge(-2000.0)
    vv = out["opModVoltVar"]
    assert (
        isinstance(vv, VoltVarCurve)
        and vv.points[0].x == pytest.approx(0.92)
        and vv.points[0].y == pytest.approx(0.3)
    )


async def test_simulated_battery_follows_event_then_default_over_mtls(harness: Harness) -> None:
    lfdi = harness.lfdi("sim-1")
    der = Der(
        "bat-1",
        "site-1",
        DerKind.HOME_BATTERY,
        Capabilities(w_max=5000, w_max_consume=5000, wh_max=13500, va_max=5000),
        "ieee2030_5",
        lfdi,
        "default",
    )
    await harness.adapter.register_device(der)
    edev = harness.adapter.repo.end_device_by_der("bat-1")
    program_id = harness.adapter._dispatch_programs[edev.id]
    await harness.adapter.manager.set_default(
        program_id, DERControlBase(opModTargetW=ActivePower(value=-1000, multiplier=0))
    )
    now = harness.clock.now()
    setpoint = Setpoint("bat-1", ChargeDischarge(3000.0), now, now + timedelta(minutes=10))
    await harness.adapter.send(Ieee2030_5Translator().translate(der, setpoint, "cmd-sim"))

    cert, key, _ = harness.certs.device("sim-1")
    device = Sep2Device(
        Sep2DeviceConfig(harness.adapter.url, cert, key, harness.certs.ca, lfdi),
        SimulatedDevice(der, harness.clock, seed=1),
        harness.clock,
    )
    try:
        await device.start()
        assert device.applied["opModTargetW"] != "default"
        harness.clock.advance(60)
        await device.poll()
        assert device.device.p_w == pytest.approx(3000.0, rel=0.05)
        harness.clock.advance(600)
        await device.poll()
        assert device.applied["opModTargetW"] == "default"
        harness.clock.advance(60)
        await device.poll()
        assert device.device.p_w == pytest.approx(-1000.0, rel=0.05)
    finally:
        await device.close()
    assert isinstance(harness.adapter.repo.end_devices[edev.id].capability, DERCapability)
    states = [m["state"] for m in await harness.published("command.state") if m["command_id"] == "cmd-sim"]
    assert states == ["sent", "acknowledged", "active", "completed"]
    samples = [s for b in await harness.published("telemetry.ieee2030_5") for s in decode_telemetry(b)]
    powers = [s.p_w for s in samples if s.p_w is not None]
    assert any(p == pytest.approx(3000.0, rel=0.05) for p in powers)
    assert powers[-1] == pytest.approx(-1000.0, rel=0.05)
    assert any(s.soc is not None for s in samples)


async def test_fleet_of_pv_inverters_applies_default_volt_var_curve(harness: Harness, tmp_path: Path) -> None:
    """With no event active, each inverter obeys its program's DefaultDERControl and its curve."""
    fleet = Sep2Fleet(harness.certs.pki, tmp_path, harness.certs.ca, harness.adapter.url, harness.clock)
    manager = harness.adapter.manager
    program = manager.create_program("default", "volt-var for all", 5)  # every device of the tenant
    curve = await manager.create_curve(
        program.id,
        11,
        [(92, 30), (98, 0), (102, 0), (108, -30)],
        y_ref_type=2,
        x_multiplier=0,
        y_multiplier=0,
    )
    for i in range(2):
        der = Der(
            f"pv-{i}",
            "site",
            DerKind.PV_INVERTER,
            Capabilities(w_max=5000, va_max=5000, var_max_inject=2200, var_max_absorb=2200),
            "",
            "",
            "default",
        )
        await harness.adapter.register_device(fleet.enroll(der, seed=i))
    edev = harness.adapter.repo.end_device_by_der("pv-0")
    link = f"/edev/{edev.id}/derp/{program.id}/dc/{curve.id}"
    # one curve serves every device of the program; each reads the link under its own EndDevice
    await manager.set_default(program.id, DERControlBase(opModVoltVar={"href": link}))  # type: ignore[arg-type]
    try:
        await fleet.start(cycles=1)
        await asyncio.wait_for(fleet.wait(), 60)
    finally:
        await fleet.stop()
    for device in fleet.devices.values():
        assert device.applied.get("opModVoltVar") == "default"
    assert len(harness.adapter.repo.mups) == 2
