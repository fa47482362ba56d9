"""Scenario files (good and bad) and the runner on a fast clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from derms.core.clock import ManualClock, ScaledClock
from derms.core.der import Der, DerKind
from derms.core.errors import ValidationFailed
from derms.core.site import Site
from derms.sim.fleet import FleetSimulator, generate_fleet
from derms.sim.runner import ClockMode, ScenarioRunner, scenario_clock
from derms.sim.scenario import (
    DeviceDrop,
    HeatWave,
    builtin_scenario,
    builtin_scenarios,
    load_scenario,
    parse_scenario,
)
from derms.sim.weather import Weather

from .conftest import BUSES, FEEDERS

GOOD = """
name: test
start: 2026-07-15T05:00:00Z
duration: PT6H
step_s: 30
events:
  - {type: heat_wave, at: PT1H, duration: PT2H, delta_c: 4, feeders: [feeder-1]}
  - {type: cloud_cover, at: 3600, duration: PT30M, irradiance_factor: 0.2}
  - {type: device_drop, at: PT2H, fraction: 0.5, kinds: [pv_inverter], recover_after: PT1H}
  - {type: device_failure, at: PT4H, der_id: sim-der-000010}
  - {type: ev_arrival_surge, at: PT5H, count: 3}
"""


def test_builtin_scenarios_parse() -> None:
    assert {"summer_day", "heat_event_drop"} <= set(builtin_scenarios())
    heat = builtin_scenario("heat_event_drop")
    drop = next(e for e in heat.events if isinstance(e, DeviceDrop))
    assert drop.count == 200 and drop.recover_after == timedelta(minutes=90)
    assert any(isinstance(e, HeatWave) and e.at <= drop.at < e.at + e.duration for e in heat.events)
    assert builtin_scenario("summer_day").duration == timedelta(hours=24)


def test_good_file_parses(tmp_path: Path) -> None:
    path = tmp_path / "good.yaml"
    path.write_text(GOOD)
    scenario = load_scenario(path)
    assert [e.type for e in scenario.events] == [
        "heat_wave",
        "cloud_cover",
        "device_drop",
        "device_failure",
        "ev_arrival_surge",
    ]
    assert scenario.events[1].at == timedelta(hours=1)
    assert scenario.start == datetime(2026, 7, 15, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: x\nstart: [\n", "not valid YAML"),
        ("- just a list\n", "a scenario is a YAML mapping"),
        ("name: x\nstart: 2026-07-15T05:00:00\nduration: PT1H\n", "start: Input should have timezone info"),
        (
            "name: x\nstart: 2026-07-15T05:00:00Z\nduration: PT1H\nspeed: -1\n",
            "speed: Input should be greater than 0",
        ),
        (
            "name: x\nstart: 2026-07-15T05:00:00Z\nduration: PT1H\ncolour: red\n",
            "colour: Extra inputs are not permitted",
        ),
        (
            "name: x\nstart: 2026-07-15T05:00:00Z\nduration: PT1H\nevents: [{type: meteor, at: PT1M}]\n",
            "events.0: Input tag 'meteor' found using 'type' does not match",
        ),
        (
            "name: x\nstart: 2026-07-15T05:00:00Z\nduration: PT1H\nevents: [{type: device_drop, at: PT1M}]\n",
            "give exactly one of count or fraction",
        ),
        (
            "name: x\nstart: 2026-07-15T05:00:00Z\nduration: PT1H\n"
            "events: [{type: device_drop, at: PT1M, count: 2, fraction: 0.5}]\n",
            "give exactly one of count or fraction",
        ),
        (
            "name: x\nstart: 2026-07-15T05:00:00Z\nduration: PT1H\n"
            "events: [{type: cloud_cover, at: PT1M, duration: PT5M, irradiance_factor: 1.5}]\n",
            "events.0.cloud_cover.irradiance_factor: Input should be less than or equal to 1",
        ),
        (
            "name: x\nstart: 2026-07-15T05:00:00Z\nduration: PT1H\n"
            "events: [{type: heat_wave, at: PT2H, duration: PT5M, delta_c: 3}]\n",
            "events.0: starts at 2:00:00 but the scenario lasts 1:00:00",
        ),
        (
            "name: x\nstart: 2026-07-15T05:00:00Z\nduration: PT1H\n"
            "events: [{type: device_drop, at: PT1M, count: 5, kinds: [toaster]}]\n",
            "events.0.device_drop.kinds.0: Input should be",
        ),
    ],
)
def test_bad_files_name_the_problem(text: str, message: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        parse_scenario(text, "bad.yaml")
    assert any(message in e and e.startswith("bad.yaml") for e in info.value.errors), info.value.errors


def test_missing_file_and_unknown_builtin(tmp_path: Path) -> None:
    with pytest.raises(ValidationFailed, match="cannot read scenario"):
        load_scenario(tmp_path / "absent.yaml")
    with pytest.raises(ValidationFailed, match="no built-in scenario"):
        builtin_scenario("absent")


@pytest.fixture
def fleet_parts() -> tuple[list[Der], list[Site]]:
    ders, sites, _ = generate_fleet(
        300, BUSES, seed=4, tenant_ids=["utility"], feeder_ids=[FEEDERS[int(b) % 2] for b in BUSES]
    )
    return ders, sites


def test_runner_rejects_what_the_fleet_cannot_do(
    fleet_parts: tuple[list[Der], list[Site]], weather: Weather
) -> None:
    ders, sites = fleet_parts
    fleet = FleetSimulator(ders[:100], sites, start=datetime(2026, 7, 15, 5, tzinfo=UTC), weather=weather)
    scenario = builtin_scenario("heat_event_drop")  # drops 200 of 100 devices
    with pytest.raises(ValidationFailed, match="count 200 exceeds the 100 matching devices"):
        ScenarioRunner(fleet, scenario)
    bad = parse_scenario(GOOD.replace("sim-der-000010", "nobody").replace("feeder-1", "feeder-9"))
    with pytest.raises(ValidationFailed, match="no simulated DER 'nobody'"):
        ScenarioRunner(fleet, bad)


async def test_heat_event_drop_plays_on_a_fast_clock(
    fleet_parts: tuple[list[Der], list[Site]], weather: Weather
) -> None:
    ders, sites = fleet_parts
    scenario = builtin_scenario("heat_event_drop")
    fleet = FleetSimulator(ders, sites, start=scenario.start, seed=1, weather=weather)
    baseline = FleetSimulator(ders, sites, start=scenario.start, seed=1, weather=weather)
    runner = ScenarioRunner(fleet, scenario)
    clock = scenario_clock(scenario, ClockMode.FAST)
    assert isinstance(clock, ManualClock)
    online: dict[datetime, int] = {}
    hvac = fleet.select([DerKind.THERMOSTAT])
    energy = {"heat": 0.0, "baseline": 0.0}

    def record(sim: FleetSimulator) -> None:
        online[sim.now] = len(sim.columns())
        baseline.step(sim.now)
        if scenario.start + timedelta(hours=12) <= sim.now < scenario.start + timedelta(hours=15):
            energy["heat"] += -sim.power()[hvac].sum()
            energy["baseline"] += -baseline.power()[hvac].sum()

    await runner.run(clock, on_step=record)
    start = scenario.start
    assert clock.now() == runner.end
    assert online[start + timedelta(hours=14, minutes=59)] == 300
    assert online[start + timedelta(hours=15, minutes=1)] == 100
    assert online[start + timedelta(hours=16, minutes=29)] == 100
    assert online[start + timedelta(hours=16, minutes=31)] == 300
    changes = fleet.drain_status_changes()
    assert sum(not c.online for c in changes) == 200 and sum(c.online for c in changes) == 200
    assert [a.at - start for a in runner.applied] == [
        timedelta(hours=11),
        timedelta(hours=15),
        timedelta(hours=16, minutes=30),
        timedelta(hours=20),
    ]
    assert runner.applied[1].outcome == "200 devices"
    assert energy["heat"] > 1.05 * energy["baseline"] > 0  # +5 K outdoors: more cooling energy
    assert runner.pending == 0


async def test_runner_events_apply_at_their_own_time(
    fleet_parts: tuple[list[Der], list[Site]], weather: Weather
) -> None:
    """One big step still applies each event at its scheduled time, in order."""
    ders, sites = fleet_parts
    scenario = parse_scenario(GOOD)
    fleet = FleetSimulator(ders, sites, start=scenario.start, seed=1, weather=weather)
    runner = ScenarioRunner(fleet, scenario)
    applied = runner.advance(scenario.start + timedelta(hours=6))
    hours = [(a.at - scenario.start) / timedelta(hours=1) for a in applied]
    assert hours == [1.0, 1.0, 1.5, 2.0, 3.0, 3.0, 4.0, 5.0]
    assert [a.description.split()[0] for a in applied] == [
        "events.0", "events.1", "events.1", "events.2", "events.0", "events.2", "events.3", "events.4"
    ]  # fmt: skip
    assert not fleet.is_online("sim-der-000010")
    assert applied[-1].outcome.endswith("vehicles arrived")
    pv = fleet.select([DerKind.PV_INVERTER])
    assert int((pv & fleet.select(online=True)).sum()) == int(pv.sum())  # recovered after the drop


async def test_accelerated_clock_runs_in_wall_time(
    fleet_parts: tuple[list[Der], list[Site]], weather: Weather
) -> None:
    ders, sites = fleet_parts
    scenario = parse_scenario(GOOD)
    fleet = FleetSimulator(ders, sites, start=scenario.start, seed=1, weather=weather)
    clock = scenario_clock(scenario, ClockMode.ACCELERATED, speed=36_000.0)  # 10 h per second
    assert isinstance(clock, ScaledClock)
    steps: list[datetime] = []
    runner = ScenarioRunner(fleet, scenario)
    await runner.run(
        clock, on_step=lambda sim: steps.append(sim.now), until=scenario.start + timedelta(hours=1)
    )
    assert steps[-1] == scenario.start + timedelta(hours=1)
    assert len(steps) > 3
    assert np.all(np.diff([s.timestamp() for s in steps]) > 0)
