"""The single-device facade protocol simulators wrap."""

from __future__ import annotations

from datetime import timedelta

import pytest

from derms.core.clock import ManualClock
from derms.core.controls import ChargeDischarge
from derms.core.der import Der, DerKind
from derms.core.site import Site
from derms.core.telemetry import OperationalStatus
from derms.sim.device import SimulatedDevice
from derms.sim.weather import Weather

from .conftest import NOON_LOCAL


def test_single_battery_follows_control_on_its_clock(
    small_fleet_parts: tuple[list[Der], list[Site]], weather: Weather
) -> None:
    ders, sites = small_fleet_parts
    battery = next(d for d in ders if d.kind is DerKind.HOME_BATTERY)
    site = next(s for s in sites if s.id == battery.site_id)
    clock = ManualClock(NOON_LOCAL)
    device = SimulatedDevice(battery, clock, site=site, weather=weather)
    device.apply(ChargeDischarge(w=2_000.0), until=NOON_LOCAL + timedelta(minutes=10))
    soc0 = device.telemetry()
    clock.advance(300.0)
    sample = device.telemetry()
    assert sample is not None and soc0 is not None
    assert sample.p_w == pytest.approx(2_000.0) == device.p_w
    assert sample.status is OperationalStatus.ON
    assert sample.soc is not None and soc0.soc is not None and sample.soc < soc0.soc
    device.set_online(False, "unplugged")
    assert device.telemetry() is None
