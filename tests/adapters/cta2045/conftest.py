"""Fixtures: a simulated water heater SGD on a loopback port and a UCM linked to it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from derms.adapters.cta2045.link import open_tcp
from derms.adapters.cta2045.ucm import Ucm
from derms.sim.protocols.cta2045 import SimulatedWaterHeater, WaterHeaterSgd


@pytest.fixture
async def sgd() -> AsyncIterator[WaterHeaterSgd]:
    # 48 °C with a 52 °C set point and 5 K dead band: the element is off until asked.
    server = WaterHeaterSgd(SimulatedWaterHeater(t_tank_c=48.0), step_s=0.05, time_scale=60.0)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def ucm(sgd: WaterHeaterSgd) -> AsyncIterator[Ucm]:
    link = await open_tcp("127.0.0.1", sgd.port, name="ucm")
    client = Ucm(link)
    try:
        yield client
    finally:
        await client.close()
