"""FleetSimulator: stepping, controls within device limits, telemetry, availability, generation."""

from __future__ import annotations

import collections
import math
from datetime import timedelta

import numpy as np
import pytest

from derms.core.controls import (
    ActivePowerLimit,
    ChargeDischarge,
    ChargingLimit,
    Connect,
    CurvePoint,
    FixedPowerFactor,
    FixedReactivePower,
    LoadShed,
    PriceSignal,
    VoltVarCurve,
    VoltWattCurve,
)
from derms.core.der import Der, DerKind
from derms.core.errors import LimitViolation, NotFound, ValidationFailed
from derms.core.site import Site
from derms.core.telemetry import OperationalStatus
from derms.sim.fleet import FleetSimulator, generate_fleet
from derms.sim.physics import BatteryBank
from derms.sim.weather import Weather

from .conftest import BUSES, FEEDERS, MIDNIGHT_LOCAL, NOON_LOCAL


def first(fleet: FleetSimulator, kind: DerKind) -> str:
    return next(i for i in fleet.der_ids if fleet.der(i).kind is kind)


def run(fleet: FleetSimulator, seconds: float, step_s: float = 5.0) -> None:
    t = fleet.now
    for _ in range(int(seconds / step_s)):
        t += timedelta(seconds=step_s)
        fleet.step(t)


def test_generate_fleet_is_reproducible_and_mixed() -> None:
    a = generate_fleet(500, BUSES, seed=5, tenant_ids=["t1", "t2"], feeder_ids=[FEEDERS[0]] * len(BUSES))
    b = generate_fleet(500, BUSES, seed=5, tenant_ids=["t1", "t2"], feeder_ids=[FEEDERS[0]] * len(BUSES))
    assert a == b
    ders, sites, customers = a
    assert len(ders) == 500
    assert len({d.id for d in ders}) == 500
    kinds = collections.Counter(d.kind for d in ders)
    assert set(kinds) == set(DerKind)
    assert kinds[DerKind.UTILITY_PV] == kinds[DerKind.UTILITY_BATTERY] == 1
    assert kinds[DerKind.THERMOSTAT] > kinds[DerKind.CI_LOAD]
    site_ids = {s.id for s in sites}
    assert all(d.site_id in site_ids for d in ders)
    assert {s.bus for s in sites} <= set(BUSES)
    assert {s.feeder_id for s in sites} == {FEEDERS[0]}
    assert {s.tenant_id for s in sites} == {"t1", "t2"}
    assert {c.id for c in customers} == {s.customer_id for s in sites}
    for d in ders:
        caps = d.capabilities
        assert caps.controls, d.id
        if d.kind.is_storage:
            assert caps.wh_max > 0 and caps.w_max > 0 and caps.w_max_consume > 0
        if d.kind.is_generation:
            assert caps.w_max > 0 and caps.var_max_inject > 0
        if d.kind.is_load:
            assert caps.w_max_consume > 0 and caps.w_max == 0
    assert generate_fleet(500, BUSES, seed=6, tenant_ids=["t1"])[0] != ders


def test_generate_fleet_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="feeder_ids"):
        generate_fleet(10, BUSES, seed=1, tenant_ids=["t"], feeder_ids=["f"])
    with pytest.raises(ValueError, match="bus"):
        generate_fleet(10, [], seed=1, tenant_ids=["t"])


def test_pv_produces_at_noon_not_at_midnight(
    small_fleet_parts: tuple[list[Der], list[Site]], weather: Weather
) -> None:
    ders, sites = small_fleet_parts
    for start, producing in ((NOON_LOCAL, True), (MIDNIGHT_LOCAL, False)):
        fleet = FleetSimulator(ders, sites, start=start, seed=1, weather=weather)
        run(fleet, 60)
        pv = fleet.power()[fleet.select([DerKind.PV_INVERTER, DerKind.UTILITY_PV])]
        assert bool(pv.sum() > 0) is producing
        assert np.all(pv >= 0)


def test_step_is_noop_backwards_and_substeps(fleet: FleetSimulator) -> None:
    before = fleet.now
    fleet.step(before - timedelta(seconds=10))
    assert fleet.now == before
    fleet.step(before + timedelta(minutes=30))  # 30 substeps of 60 s
    assert fleet.now == before + timedelta(minutes=30)


def test_battery_charge_discharge_within_limits(fleet: FleetSimulator) -> None:
    der_id = first(fleet, DerKind.HOME_BATTERY)
    caps = fleet.der(der_id).capabilities
    fleet.apply(der_id, ChargeDischarge(w=-3_000.0))
    run(fleet, 60)
    row = fleet.row(der_id)
    assert fleet.power()[row] == pytest.approx(-3_000.0)
    sample = next(s for s in fleet.samples() if s.der_id == der_id)
    assert sample.p_w == pytest.approx(-3_000.0)
    assert sample.soc is not None and 0 < sample.soc <= 1
    assert sample.status is OperationalStatus.ON
    fleet.apply(der_id, ChargeDischarge(w=1e9))  # a device clips to its rating
    run(fleet, 60)
    assert fleet.power()[row] == pytest.approx(caps.w_max)


def test_ramp_rate_limits_battery_response(fleet: FleetSimulator) -> None:
    der_id = first(fleet, DerKind.HOME_BATTERY)
    fleet.apply(der_id, ChargeDischarge(w=0.0))
    run(fleet, 10)
    fleet.apply(der_id, ChargeDischarge(w=5_000.0))
    run(fleet, 2, step_s=2)  # 1,000 W/s ramp
    assert fleet.power()[fleet.row(der_id)] == pytest.approx(2_000.0)


def test_active_power_limit_caps_pv_and_expires(fleet: FleetSimulator) -> None:
    der_id = first(fleet, DerKind.PV_INVERTER)
    row = fleet.row(der_id)
    run(fleet, 10)
    free = fleet.power()[row]
    assert free > 0
    fleet.apply(der_id, ActivePowerLimit(pct=10.0), until=fleet.now + timedelta(seconds=30))
    run(fleet, 10)
    assert fleet.power()[row] == pytest.approx(
        min(free, 0.1 * fleet.der(der_id).capabilities.w_max), rel=0.05
    )
    run(fleet, 60)
    assert fleet.power()[row] > 0.1 * fleet.der(der_id).capabilities.w_max


def test_reactive_power_modes(fleet: FleetSimulator) -> None:
    der_id = first(fleet, DerKind.PV_INVERTER)
    caps = fleet.der(der_id).capabilities
    row = fleet.row(der_id)
    fleet.apply(der_id, FixedReactivePower(var=-500.0))
    run(fleet, 10)
    assert fleet.columns().q_var[row] == pytest.approx(-500.0)
    fleet.apply(der_id, FixedPowerFactor(pf=0.9, absorbing=True))
    run(fleet, 10)
    p, q = fleet.power()[row], fleet.columns().q_var[row]
    assert q < 0
    assert p / math.hypot(p, q) == pytest.approx(0.9) or -q == pytest.approx(caps.var_max_absorb)
    curve = VoltVarCurve(
        points=(CurvePoint(0.92, 0.44), CurvePoint(0.98, 0.0), CurvePoint(1.02, 0.0), CurvePoint(1.08, -0.44))
    )
    fleet.apply(der_id, curve)
    fleet.set_voltage_pu(np.full(len(fleet), 1.05))
    run(fleet, 10)
    expected = -0.22 * caps.var_max_absorb  # halfway down the absorbing slope
    assert fleet.columns().q_var[row] == pytest.approx(expected)
    assert fleet.columns().v_v[row] == pytest.approx(1.05 * caps.v_nom)
    with pytest.raises(ValueError, match="finite and >= 0"):
        fleet.set_voltage_pu(np.full(len(fleet), -1.0))


def test_volt_watt_curtails_pv(fleet: FleetSimulator) -> None:
    der_id = first(fleet, DerKind.PV_INVERTER)
    caps = fleet.der(der_id).capabilities
    fleet.apply(der_id, VoltWattCurve(points=(CurvePoint(1.06, 1.0), CurvePoint(1.10, 0.0))))
    fleet.set_voltage_pu(np.full(len(fleet), 1.09))
    run(fleet, 10)
    assert fleet.power()[fleet.row(der_id)] <= 0.25 * caps.w_max + 1e-9


def test_thermostat_shed_reduces_consumption(
    small_fleet_parts: tuple[list[Der], list[Site]], weather: Weather
) -> None:
    ders, sites = small_fleet_parts
    base = FleetSimulator(ders, sites, start=NOON_LOCAL, seed=2, weather=weather)
    shed = FleetSimulator(ders, sites, start=NOON_LOCAL, seed=2, weather=weather)
    mask = shed.select([DerKind.THERMOSTAT])
    for der_id in np.array(shed.der_ids)[mask]:
        shed.apply(str(der_id), LoadShed(level=2))
    energy = {"base": 0.0, "shed": 0.0}
    for _ in range(60):
        for name, sim in (("base", base), ("shed", shed)):
            sim.step(sim.now + timedelta(minutes=1))
            energy[name] += sim.power()[mask].sum() * 60
    assert energy["base"] < 0
    assert energy["shed"] > energy["base"] * 0.5  # consumption is negative: much less of it


def test_ev_charging_limit_in_amps(fleet: FleetSimulator) -> None:
    rows, _ = fleet.model(DerKind.EV_CHARGER)
    der_id = fleet.der_ids[int(rows[0])]
    fleet.ev_surge(fleet.select([DerKind.EV_CHARGER]), need_wh=30_000.0, dwell_s=8 * 3600)
    fleet.apply(der_id, ChargingLimit(limit=10.0, unit="A", phases=1))
    run(fleet, 10)
    assert fleet.power()[rows[0]] == pytest.approx(-10.0 * 230.0)


def test_unsupported_control_unknown_der_and_offline(fleet: FleetSimulator) -> None:
    pv = first(fleet, DerKind.PV_INVERTER)
    with pytest.raises(LimitViolation, match="does not support"):
        fleet.apply(pv, ChargeDischarge(w=100.0))
    with pytest.raises(LimitViolation, match="does not support"):
        fleet.apply(pv, PriceSignal(price_per_kwh=0.3))
    with pytest.raises(NotFound):
        fleet.apply("no-such-der", Connect(connected=False))
    fleet.set_online(fleet.select() & (np.array(fleet.der_ids) == pv), False, "test")
    with pytest.raises(LimitViolation, match="offline"):
        fleet.apply(pv, ActivePowerLimit(pct=50.0))


def test_offline_devices_stop_and_send_nothing(fleet: FleetSimulator) -> None:
    run(fleet, 10)
    mask = fleet.select([DerKind.PV_INVERTER], [FEEDERS[0]])
    dropped = fleet.set_online(mask, False, "dropped")
    assert len(dropped) == mask.sum() > 0
    assert [c.der_id for c in fleet.drain_status_changes()] == dropped
    assert fleet.drain_status_changes() == []
    run(fleet, 10)
    assert np.all(fleet.power()[mask] == 0.0)
    reported = {s.der_id for s in fleet.samples()}
    assert reported.isdisjoint(dropped)
    assert len(reported) == len(fleet) - len(dropped)
    fleet.set_online(mask, True, "back")
    assert all(c.online for c in fleet.drain_status_changes())


def test_disconnect_reports_off(fleet: FleetSimulator) -> None:
    der_id = first(fleet, DerKind.PV_INVERTER)
    fleet.apply(der_id, Connect(connected=False))
    run(fleet, 10)
    sample = next(s for s in fleet.samples() if s.der_id == der_id)
    assert sample.p_w == 0.0 and sample.status is OperationalStatus.OFF and not sample.available


def test_add_devices_keeps_state_and_refuses_duplicates(
    small_fleet_parts: tuple[list[Der], list[Site]], weather: Weather
) -> None:
    ders, sites = small_fleet_parts
    fleet = FleetSimulator(ders[:100], sites, start=NOON_LOCAL, seed=1, weather=weather)
    run(fleet, 60)
    rows, bank = fleet.model(DerKind.HOME_BATTERY)
    assert isinstance(bank, BatteryBank)
    soc_before = dict(zip(rows.tolist(), bank.soc.tolist(), strict=True))
    fleet.add(ders[100:])
    assert len(fleet) == len(ders)
    rows, bank = fleet.model(DerKind.HOME_BATTERY)
    assert isinstance(bank, BatteryBank)
    after = dict(zip(rows.tolist(), bank.soc.tolist(), strict=True))
    assert all(after[r] == soc for r, soc in soc_before.items())
    with pytest.raises(ValidationFailed, match="already simulated"):
        fleet.add(ders[:1])
    run(fleet, 60)
    assert len(fleet.samples()) == len(ders)


def test_columns_match_samples(fleet: FleetSimulator) -> None:
    run(fleet, 30)
    cols = fleet.columns()
    samples = fleet.samples()
    assert len(cols) == len(samples) == len(fleet)
    assert [s.der_id for s in samples] == cols.der_id.tolist()
    assert all(s.ts == fleet.now for s in samples)
    soc_rows = [s.soc is not None for s in samples]
    assert soc_rows == (~np.isnan(cols.soc)).tolist()


def test_columns_convert_to_core_telemetry_columns(fleet: FleetSimulator) -> None:
    run(fleet, 30)
    index = {der_id: 1000 + i for i, der_id in enumerate(fleet.der_ids)}
    cols = fleet.columns().to_telemetry_columns(index)
    assert len(cols) == len(fleet)
    assert cols.der_idx.tolist() == [index[i] for i in fleet.der_ids]
    assert np.array_equal(cols.p_w, fleet.power())
    assert set(cols.ts_ms.tolist()) == {round(fleet.now.timestamp() * 1000)}
    with pytest.raises(NotFound):
        fleet.columns().to_telemetry_columns({})
