"""Fixtures: a simulated MESA-DER plant (dnp3py outstation) on a loopback port."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from derms.sim.protocols.dnp3 import PlantModel, SimulatedPlant


@pytest.fixture
async def plant() -> AsyncIterator[SimulatedPlant]:
    sim = SimulatedPlant(PlantModel(), port=0, address=10, master_address=1, step_s=0.05)
    await sim.start()
    try:
        yield sim
    finally:
        await sim.stop()
