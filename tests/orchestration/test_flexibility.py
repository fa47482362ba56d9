"""Device flexibility: opt-out windows, SoC limits, warranty limits, EV departure, comfort."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from derms.core.der import DerKind
from derms.orchestration import live
from derms.orchestration.flexibility import Binding, flexibility
from derms.orchestration.inputs import FleetInput, Preferences, kind_code
from derms.orchestration.optimizer import solve
from derms.orchestration.preferences import opt_out_mask
from derms.orchestration.problem import Problem, Target

BAT = kind_code(DerKind.HOME_BATTERY)
EV = kind_code(DerKind.EV_CHARGER)
TH = kind_code(DerKind.THERMOSTAT)
WH = kind_code(DerKind.WATER_HEATER)
T0 = datetime(2026, 7, 1, 17, 0, tzinfo=UTC)


def batteries(n: int, soc: float = 0.5, **kw: object) -> FleetInput:
    """Powerwall-like home batteries: 5 kW, 13.5 kWh, 90 % round trip."""
    return FleetInput.build(
        [f"b{i}" for i in range(n)],
        kind=BAT,
        feeder=0,
        bus=0,
        soc=soc,
        w_max=5000.0,
        w_max_consume=5000.0,
        wh_max=13500.0,
        eta_charge=0.95,
        eta_discharge=0.95,
        **kw,
    )


def dispatch(
    fleet: FleetInput, prefs: Preferences, target_w: float, steps: int = 1
) -> tuple[Problem, object]:
    f = flexibility(fleet, prefs, dt_s=900.0, steps=steps)
    problem = Problem.of(
        fleet,
        prefs,
        f,
        targets=(Target("cap", np.ones(fleet.n, bool), np.full(steps, target_w)),),
    )
    return problem, solve(problem)


def test_opt_out_window_holds_baseline_and_is_explained() -> None:
    fleet = batteries(4)
    mask = opt_out_mask(
        fleet.der_ids,
        {"b1": [(T0 - timedelta(hours=1), T0 + timedelta(minutes=20))]},
        start=T0,
        dt_s=900,
        steps=4,
    )
    assert mask[1].tolist() == [True, True, False, False]
    assert not mask[0].any()
    prefs = Preferences.build(4, 4, opt_out=mask)
    _, sol = dispatch(fleet, prefs, 20_000.0, steps=4)
    assert sol.p_w[1, 0] == pytest.approx(0.0) and sol.p_w[1, 1] == pytest.approx(0.0)
    assert sol.why.binding(1) == "customer:opt_out"
    assert sol.p_w[0, 0] == pytest.approx(5000.0)
    assert sol.shortfall_w["cap"][0] == pytest.approx(5000.0)  # three batteries left for 20 kW
    assert sol.shortfall_w["cap"][2] == pytest.approx(0.0, abs=1e-3)


def test_opt_out_window_for_unknown_der_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown DER"):
        opt_out_mask(["a"], {"zz": [(T0, T0 + timedelta(hours=1))]}, start=T0, dt_s=900, steps=1)


def test_soc_reserve_limits_discharge() -> None:
    # 13.5 kWh at 22 % with a 20 % reserve: 0.27 kWh usable; over 15 min at 95 % discharge efficiency
    # that is 0.27 * 0.95 / 0.25 h = 1026 W.
    fleet = batteries(1, soc=0.22)
    prefs = Preferences.build(1, soc_min=0.2)
    f = flexibility(fleet, prefs)
    assert f.p_hi[0, 0] == pytest.approx(0.02 * 13500 * 0.95 / 0.25)
    assert f.hi_binding[0, 0] == Binding.SOC
    _, sol = dispatch(fleet, prefs, 5000.0)
    assert sol.p_w[0, 0] == pytest.approx(1026.0)
    assert sol.why.binding(0) == "soc_limit"


def test_soc_ceiling_limits_charge() -> None:
    fleet = batteries(1, soc=0.79)
    prefs = Preferences.build(1, soc_max=0.8)
    f = flexibility(fleet, prefs)
    assert f.p_lo[0, 0] == pytest.approx(-0.01 * 13500 / 0.95 / 0.25)
    assert f.lo_binding[0, 0] == Binding.SOC


def test_soc_stays_within_limits_over_horizon() -> None:
    fleet = batteries(2, soc=0.6)
    prefs = Preferences.build(2, 8, soc_min=0.3)
    _, sol = dispatch(fleet, prefs, 10_000.0, steps=8)
    energy = 0.6 * 13500 - np.cumsum(sol.p_w.clip(min=0) / 0.95 * 0.25, axis=1)
    assert energy.min() >= 0.3 * 13500 - 1e-3
    # 2 x 4050 Wh usable x 0.95 = 7.7 kWh: 10 kW for the first three steps, then what is left.
    delivered = sol.p_w.sum(axis=0) * 0.25
    assert delivered.sum() == pytest.approx(2 * 0.3 * 13500 * 0.95, rel=1e-6)


def test_warranty_daily_cycles_exhausted_blocks_discharge() -> None:
    fleet = batteries(2, soc=0.9)
    prefs = Preferences.build(2, max_daily_cycles=1.0, cycles_today=np.array([1.0, 0.9]))
    f = flexibility(fleet, prefs)
    assert f.p_hi[0, 0] == pytest.approx(0.0)
    assert f.hi_binding[0, 0] == Binding.WARRANTY
    # 0.1 cycle left = 1350 Wh of stored energy, delivered at 95 %: 5130 W over 15 min > 5 kW rating.
    assert f.p_hi[1, 0] == pytest.approx(5000.0)
    _, sol = dispatch(fleet, prefs, 10_000.0)
    assert sol.p_w[0, 0] == pytest.approx(0.0)
    assert sol.why.binding(0) == "warranty:daily_cycles"


def test_warranty_throughput_over_horizon() -> None:
    fleet = batteries(1, soc=0.9)
    prefs = Preferences.build(1, 8, max_daily_cycles=1.0, cycles_today=0.9)
    _, sol = dispatch(fleet, prefs, 5000.0, steps=8)
    discharged_from_storage = (sol.p_w.clip(min=0) / 0.95 * 0.25).sum()
    assert discharged_from_storage == pytest.approx(1350.0, rel=1e-6)


def test_ev_departure_need_is_met() -> None:
    # 20 kWh by a departure in 3 h at 7.2 kW: the car may wait, but not too long.
    fleet = FleetInput.build(
        ["ev"],
        kind=EV,
        feeder=0,
        bus=0,
        w_max_consume=7200.0,
        ev_energy_needed_wh=20_000.0,
        ev_departure_s=3 * 3600.0,
    )
    prefs = Preferences.build(1, 12)
    f = flexibility(fleet, prefs, steps=12)
    assert f.base[0, 0] == pytest.approx(-7200.0)  # uncontrolled: full power from plug-in
    # A large up target (stop charging) for every step: the EV still gets its 20 kWh.
    _, sol = dispatch(fleet, prefs, 1e6, steps=12)
    assert (-sol.p_w[0] * 0.25).sum() == pytest.approx(20_000.0, rel=1e-6)
    # Single interval with 45 min left: 20 kWh - 0.5 h x 7.2 kW must be charged now.
    short = FleetInput.build(
        ["ev"],
        kind=EV,
        feeder=0,
        bus=0,
        w_max_consume=7200.0,
        ev_energy_needed_wh=5000.0,
        ev_departure_s=2700.0,
    )
    f1 = flexibility(short, Preferences.build(1))
    assert f1.p_hi[0, 0] == pytest.approx(-(5000.0 - 0.5 * 7200.0) / 0.25)
    assert f1.hi_binding[0, 0] == Binding.EV_DEPARTURE


def test_ev_after_departure_is_idle() -> None:
    fleet = FleetInput.build(
        ["ev"],
        kind=EV,
        feeder=0,
        bus=0,
        w_max_consume=7200.0,
        ev_energy_needed_wh=1000.0,
        ev_departure_s=900.0,
    )
    f = flexibility(fleet, Preferences.build(1, 4), steps=4)
    assert np.all(f.p_lo[0, 1:] == 0.0) and np.all(f.p_hi[0, 1:] == 0.0)


def test_thermostat_comfort_band_1r1c() -> None:
    # At the top of the band on a hot day, the unit must keep cooling: no room to switch off.
    fleet = FleetInput.build(
        ["t"],
        kind=TH,
        feeder=0,
        bus=0,
        p_w=-2000.0,
        w_max_consume=3500.0,
        temp_c=25.0,
        temp_out_c=35.0,
        r_k_per_w=0.002,
        c_j_per_k=1e7,
        cop=3.0,
    )
    f = flexibility(fleet, Preferences.build(1, comfort_min_c=21.0, comfort_max_c=25.0))
    assert f.p_hi[0, 0] < -1000.0
    assert f.hi_binding[0, 0] == Binding.COMFORT
    # In the middle of the band it may switch off for a step.
    mid = FleetInput.build(
        ["t"],
        kind=TH,
        feeder=0,
        bus=0,
        p_w=-2000.0,
        w_max_consume=3500.0,
        temp_c=23.0,
        temp_out_c=35.0,
        r_k_per_w=0.002,
        c_j_per_k=1e7,
        cop=3.0,
    )
    assert flexibility(mid, Preferences.build(1, comfort_min_c=21.0, comfort_max_c=25.0)).p_hi[0, 0] == 0.0


def test_water_heater_tank_empty_must_heat() -> None:
    fleet = FleetInput.build(
        ["w"],
        kind=WH,
        feeder=0,
        bus=0,
        p_w=-4500.0,
        w_max_consume=4500.0,
        tank_wh=50.0,
        tank_max_wh=10_000.0,
        draw_w=1000.0,
    )
    f = flexibility(fleet, Preferences.build(1))
    assert f.p_hi[0, 0] == pytest.approx(-(250.0 - 50.0) / 0.25)
    assert f.hi_binding[0, 0] == Binding.TANK


def test_invalid_fleet_reports_every_problem() -> None:
    with pytest.raises(ValueError) as err:
        FleetInput.build(["a", "b"], kind=BAT, soc=np.array([1.5, np.nan]), wh_max=-1.0)
    text = str(err.value)
    assert "wh_max must be >= 0" in text and "soc must be in [0, 1]" in text and "storage needs soc" in text


def test_fleet_input_from_fleet_state() -> None:
    from derms.fleet.state import FleetState
    from derms.orchestration.inputs import from_fleet_state
    from derms.sim.generate import generate_fleet

    ders, sites, _ = generate_fleet(40, ["b0", "b1"], seed=2, tenant_ids=["u"], feeder_ids=["f1", "f2"])
    site_of = {s.id: s for s in sites}
    state = FleetState(capacity=64)
    state.register((i, d, site_of[d.site_id]) for i, d in enumerate(ders))
    for d in ders:
        state.set_online(d.id, True)
    storage = np.array([d.kind.is_storage for d in ders] + [False] * (len(state) - len(ders)))
    state.soc[storage] = 0.5
    state.available[: len(ders)] = True
    rows = len(state)
    fleet = from_fleet_state(
        state,
        bus=np.zeros(rows, np.int32),
        # Kind-specific state the fleet state does not hold (from the simulator or the site model).
        temp_c=np.full(rows, 23.0),
        temp_out_c=np.full(rows, 30.0),
        r_k_per_w=np.full(rows, 0.002),
        c_j_per_k=np.full(rows, 1e7),
        tank_wh=np.full(rows, 5000.0),
        tank_max_wh=np.full(rows, 10000.0),
        ev_energy_needed_wh=np.full(rows, 10000.0),
        ev_departure_s=np.full(rows, 4 * 3600.0),
    )
    assert fleet.der_ids == tuple(d.id for d in ders)
    assert set(fleet.feeder.tolist()) == {0, 1}
    f = flexibility(fleet, Preferences.build(fleet.n))
    assert f.up.sum() > 0


def test_storage_baseline_stops_at_its_reserve() -> None:
    # 10 kWh at 30 % with a 10 % reserve discharging 4 kW on its own: 2 kWh left above the
    # reserve carries 30 minutes of its 4 kW, then it stops (lossless for the arithmetic).
    fleet = FleetInput.build(
        ["b"],
        kind=kind_code(DerKind.HOME_BATTERY),
        soc=0.3,
        p_w=4000.0,
        w_max=5000.0,
        w_max_consume=5000.0,
        wh_max=10_000.0,
    )
    prefs = Preferences.build(1, 4, soc_min=0.1)
    f = flexibility(fleet, prefs, dt_s=900.0, steps=4)
    assert f.base[0] == pytest.approx([4000.0, 4000.0, 0.0, 0.0])
    assert f.energy_violation(f.base).max() == pytest.approx(0.0, abs=1e-9)
    # Its baseline's own SoC (had we not charged it) may be lower than the reported one.
    earlier = replace(fleet, baseline_soc=np.array([0.15]))
    assert flexibility(earlier, prefs, dt_s=900.0, steps=4).base[0] == pytest.approx([2000.0, 0.0, 0.0, 0.0])
    # Charging stops when full.
    full = replace(fleet, p_w=np.array([-4000.0]), soc=np.array([0.9]))
    assert flexibility(full, Preferences.build(1, 2, soc_min=0.1), dt_s=900.0, steps=2).base[
        0
    ] == pytest.approx([-4000.0, 0.0])


def test_thermostat_baseline_holds_its_temperature() -> None:
    # (T_out - T) / R of heat gain removed at COP: 10 K / 0.002 K/W / 2.5 = 2 kW, within rating.
    got = live.thermostat_holding_w(
        np.array([24.0, 24.0, 30.0]),
        np.array([34.0, 44.0, 25.0]),
        np.full(3, 0.002),
        np.full(3, 2.5),
        np.full(3, 3000.0),
    )
    assert got == pytest.approx([2000.0, 3000.0, 0.0])
