"""Fixtures for the simulator tests: one shared weather table and small fleets."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from derms.core.der import Der
from derms.core.site import Site
from derms.sim.fleet import FleetSimulator, generate_fleet
from derms.sim.weather import Weather

MIDNIGHT_LOCAL = datetime(2026, 7, 15, 5, 0, tzinfo=UTC)
"""00:00 local standard time (UTC-5) at the TMY station."""
NOON_LOCAL = datetime(2026, 7, 15, 17, 0, tzinfo=UTC)
FEEDERS = ["feeder-1", "feeder-2"]
BUSES = [str(b) for b in range(10)]


@pytest.fixture(scope="session")
def weather() -> Weather:
    return Weather()


@pytest.fixture(scope="session")
def small_fleet_parts() -> tuple[list[Der], list[Site]]:
    ders, sites, _ = generate_fleet(
        200, BUSES, seed=11, tenant_ids=["utility"], feeder_ids=[FEEDERS[int(b) % 2] for b in BUSES]
    )
    return ders, sites


@pytest.fixture
def fleet(small_fleet_parts: tuple[list[Der], list[Site]], weather: Weather) -> FleetSimulator:
    ders, sites = small_fleet_parts
    return FleetSimulator(ders, sites, start=NOON_LOCAL, seed=3, weather=weather)
