"""The UCM against the simulated water heater SGD: every DR command, commodity read and the
tank's physical response."""

from __future__ import annotations

import asyncio
import os

import pytest
from cta2045.app import BasicDR
from cta2045.codec import DurationType
from cta2045.enums import AdvancedLoadUpUnits, CommodityCode, OperationalState

from derms.adapters.cta2045.link import open_serial
from derms.adapters.cta2045.ucm import ApplicationNak, Ucm
from derms.sim.protocols.cta2045 import WaterHeaterSgd

pytestmark = pytest.mark.timeout(30)


async def settle(seconds: float = 0.3) -> None:
    await asyncio.sleep(seconds)  # lets the SGD's physics loop run (60 simulated s per 0.05 s)


async def test_commodity_read_reports_power_energy_and_storage(ucm: Ucm, sgd: WaterHeaterSgd) -> None:
    reports = {r.code: r for r in await ucm.commodity_read()}
    tank = sgd.heater
    assert reports[CommodityCode.Electricity_Consumed].instantaneous == round(-tank.p_w)
    total = reports[CommodityCode.Total_Energy_Storage].cumulative
    assert total == round(190 * 4184 * (65 - 40) / 3600)  # above the 40 degC minimum delivery temperature
    assert 0 < reports[CommodityCode.Present_Energy_Storage].cumulative < total


async def test_load_up_heats_the_tank_and_shed_stops_the_element(ucm: Ucm, sgd: WaterHeaterSgd) -> None:
    assert await ucm.operational_state() is OperationalState.Idle_Normal
    t0 = sgd.heater.temperature_c
    duration = await ucm.load_up(3600)
    assert duration is not None and duration.type is DurationType.Seconds and duration.seconds == 3528
    await settle()
    assert await ucm.operational_state() is OperationalState.Running_Heightened
    assert sgd.heater.p_w == -4500.0
    assert sgd.heater.temperature_c > t0
    (consumed,) = [r for r in await ucm.commodity_read() if r.code is CommodityCode.Electricity_Consumed]
    assert consumed.instantaneous == 4500 and consumed.cumulative > 0

    await ucm.shed(600)
    await settle(0.1)
    assert await ucm.operational_state() is OperationalState.Idle_Curtailed
    assert sgd.heater.p_w == 0.0
    assert sgd.heater.remaining_s is not None and sgd.heater.remaining_s <= 578

    await ucm.end_shed()
    assert sgd.heater.mode == "normal"


async def test_critical_peak_grid_emergency_and_advanced_load_up(ucm: Ucm, sgd: WaterHeaterSgd) -> None:
    await ucm.critical_peak(1800)
    assert sgd.heater.mode == "critical_peak"
    await ucm.grid_emergency()
    assert sgd.heater.mode == "grid_emergency" and sgd.heater.remaining_s is None  # until End Shed
    await settle()
    assert sgd.heater.p_w == 0.0
    await ucm.advanced_load_up(30, 2, AdvancedLoadUpUnits.Wh_1000)
    assert sgd.heater.mode == "advanced_load_up"
    await settle()
    assert await ucm.operational_state() is OperationalState.Running_Heightened
    assert sgd.heater.energy_wh > 0


async def test_unsupported_command_is_an_application_nak(ucm: Ucm, sgd: WaterHeaterSgd) -> None:
    with pytest.raises(ApplicationNak, match="reason 1"):
        await ucm.power_level(50)
    assert await ucm.operational_state() is OperationalState.Idle_Normal  # the link still works


async def test_ucm_over_a_serial_line(sgd: WaterHeaterSgd) -> None:
    """The same link over a pty: the SGD holds the controlling end, the UCM opens the tty."""
    controller, device = os.openpty()
    try:
        await sgd.attach_serial(controller)
        serial_ucm = Ucm(await open_serial(os.ttyname(device), name="ucm-serial"))
        try:
            await serial_ucm.load_up(600)
            assert sgd.heater.mode == "load_up"
            assert await serial_ucm.operational_state() in (
                OperationalState.Running_Heightened,
                OperationalState.Idle_Heightened,
            )
            assert serial_ucm.link.stats.sent == 2 and serial_ucm.link.stats.received == 2
        finally:
            await serial_ucm.close()
    finally:
        os.close(controller)
        os.close(device)


async def test_customer_override_is_acknowledged_and_tracked(ucm: Ucm, sgd: WaterHeaterSgd) -> None:
    await ucm.operational_state()  # the link is up
    await sgd.customer_override(True)
    for _ in range(100):
        if ucm.customer_override and any(getattr(m, "opcode1", None) == 0x03 for m in sgd.received):
            break
        await asyncio.sleep(0.02)
    assert ucm.customer_override
    assert any(isinstance(m, BasicDR) and m.opcode2 == 0x11 for m in sgd.received)  # the UCM's app ACK
    await ucm.load_up(600)
    assert await ucm.operational_state() in (
        OperationalState.Idle_Opted_Out,
        OperationalState.Running_Opted_Out,
    )
