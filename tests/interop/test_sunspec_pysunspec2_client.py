"""pysunspec2's own Modbus client (its own Modbus code, not pymodbus) reads our simulated devices."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sunspec2.modbus.client import SunSpecModbusClientDeviceTCP

from derms.core.clock import SystemClock
from derms.sim.protocols.sunspec import SunSpecDeviceServer, battery_inverter, pv_inverter

pytestmark = pytest.mark.interop


@pytest.fixture
async def battery() -> AsyncIterator[SunSpecDeviceServer]:
    device, models = battery_inverter("BAT-7", w_rated=5000, wh_rated=13_500)
    server = SunSpecDeviceServer(device, models, SystemClock())
    await server.start()
    yield server
    await server.stop()


def scan(port: int) -> SunSpecModbusClientDeviceTCP:
    client = SunSpecModbusClientDeviceTCP(slave_id=1, ipaddr="127.0.0.1", ipport=port, timeout=5)
    client.scan()
    return client


async def test_pysunspec2_scans_and_reads_simulated_battery(battery: SunSpecDeviceServer) -> None:
    client = await asyncio.to_thread(scan, battery.port)
    try:
        ids = sorted(k for k in client.models if isinstance(k, int))
        assert ids == [1, 103, 120, 121, 123, 124, 126, 701, 702, 704, 705, 713, 802]
        common = client.models[1][0]
        assert common.SN.cvalue == "BAT-7" and common.Mn.cvalue == "derms"
        assert client.models[702][0].WMaxRtg.cvalue == 5000
        assert client.models[802][0].SoC.cvalue == pytest.approx(50.0)
        assert client.models[705][0].Crv[0].Pt[3].Var.cvalue == pytest.approx(-44.0)
        assert client.models[126][0].curve[0].V1.cvalue == pytest.approx(92.0)
    finally:
        client.close()


async def test_pysunspec2_writes_and_our_device_applies(battery: SunSpecDeviceServer) -> None:
    """pysunspec2 sets a discharge of 40 % of WChaMax through model 124; the device follows."""

    def command(port: int) -> tuple[float, float]:
        client = scan(port)
        try:
            storage = client.models[124][0]
            storage.OutWRte.cvalue = 40.0
            storage.StorCtl_Mod.value = 0b10
            storage.write()
            measured = client.models[701][0]
            measured.read()
            battery_model = client.models[802][0]
            battery_model.read()
            return measured.W.cvalue, battery_model.W.cvalue
        finally:
            client.close()

    w701, w802 = await asyncio.to_thread(command, battery.port)
    assert w701 == pytest.approx(2000) and w802 == pytest.approx(2000)


async def test_pysunspec2_reads_pv_inverter_under_a_limit() -> None:
    device, models = pv_inverter("PV-1", w_rated=10_000, available_w=8_000)
    server = SunSpecDeviceServer(device, models, SystemClock())
    await server.start()
    try:

        def limit_and_read(port: int) -> float:
            client = scan(port)
            try:
                ctl = client.models[704][0]
                ctl.WMaxLimPct.cvalue = 50.0
                ctl.WMaxLimPctEna.value = 1
                ctl.write()
                measured = client.models[701][0]
                measured.read()
                return measured.W.cvalue
            finally:
                client.close()

        assert await asyncio.to_thread(limit_and_read, server.port) == pytest.approx(5000)
    finally:
        await server.stop()
