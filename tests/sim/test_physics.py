"""Device physics against hand-checked values and analytic solutions."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from derms.sim.physics import BatteryBank, EvChargers, Hvac, WaterHeaters, first_order_step
from derms.sim.physics.water_heater import CP_WATER, DRAW_FLOW_LPS


def battery(soc: float = 0.5, rte: float = 0.81) -> BatteryBank:
    return BatteryBank(
        wh_max=np.array([10_000.0]),
        w_charge_max=np.array([5_000.0]),
        w_discharge_max=np.array([4_000.0]),
        round_trip_efficiency=np.array([rte]),
        soc=np.array([soc]),
        soc_min=np.array([0.1]),
        soc_max=np.array([0.9]),
    )


def test_battery_charge_stores_sqrt_of_round_trip_efficiency() -> None:
    bank = battery(soc=0.5, rte=0.81)  # eta_c = eta_d = 0.9
    p = bank.step(np.array([-2_000.0]), 3600.0)
    assert p[0] == -2_000.0
    # 2 kWh from the grid stores 1.8 kWh: SoC 0.5 -> 0.68.
    assert bank.soc[0] == pytest.approx(0.68)


def test_battery_discharge_draws_more_than_delivered() -> None:
    bank = battery(soc=0.5, rte=0.81)
    bank.step(np.array([1_800.0]), 3600.0)
    # 1.8 kWh delivered takes 2 kWh from the cells: SoC 0.5 -> 0.3.
    assert bank.soc[0] == pytest.approx(0.3)


def test_battery_round_trip_returns_rte_of_energy() -> None:
    bank = battery(soc=0.1, rte=0.81)
    charged_wh = 0.0
    for _ in range(200):
        charged_wh += -bank.step(np.array([-5_000.0]), 60.0)[0] * 60.0 / 3600.0
    assert bank.soc[0] == pytest.approx(0.9)
    delivered_wh = 0.0
    for _ in range(400):
        delivered_wh += bank.step(np.array([4_000.0]), 60.0)[0] * 60.0 / 3600.0
    assert bank.soc[0] == pytest.approx(0.1)
    assert delivered_wh / charged_wh == pytest.approx(0.81)


@pytest.mark.parametrize("request_w", [-1e9, 1e9])
def test_battery_never_leaves_soc_band_or_ratings(request_w: float) -> None:
    bank = battery(soc=0.5)
    for _ in range(100):
        p = bank.step(np.array([request_w]), 300.0)
        assert -5_000.0 <= p[0] <= 4_000.0
        assert 0.1 - 1e-12 <= bank.soc[0] <= 0.9 + 1e-12
    assert bank.soc[0] == pytest.approx(0.1 if request_w > 0 else 0.9)


def test_battery_stops_exactly_at_bound() -> None:
    bank = battery(soc=0.85, rte=1.0)
    # 0.05 * 10 kWh = 500 Wh of room: at most 500 W for an hour.
    assert bank.step(np.array([-5_000.0]), 3600.0)[0] == pytest.approx(-500.0)
    assert bank.soc[0] == pytest.approx(0.9)


def hvac(t_in: float, *, deadband: float = 1.0, on: bool = False) -> Hvac:
    one = np.ones(1)
    return Hvac(
        r_k_per_w=0.002 * one,
        c_j_per_k=3.6e7 * one,
        w_elec=3_000.0 * one,
        cop=3.0 * one,
        gain_w=500.0 * one,
        setpoint_c=24.0 * one,
        deadband_k=deadband * one,
        comfort_min_c=21.0 * one,
        comfort_max_c=27.0 * one,
        t_in_c=t_in * one,
        on=np.array([on]),
    )


def test_hvac_free_response_matches_analytic_solution() -> None:
    """Compressor held off: theta(t) = theta_a + R Q + (theta0 - theta_a - R Q) exp(-t / RC)."""
    house = hvac(24.0)
    blocked = np.zeros(1, dtype=bool)
    for _ in range(180):
        house.step(35.0, 60.0, np.zeros(1), blocked)
    tau = 0.002 * 3.6e7  # 72,000 s
    theta_inf = 35.0 + 0.002 * 500.0
    expected = theta_inf + (24.0 - theta_inf) * math.exp(-3 * 3600.0 / tau)
    assert house.t_in_c[0] == pytest.approx(expected, abs=1e-9)
    # Hand check: 36 - 12 * exp(-0.15) = 36 - 12 * 0.860708 = 25.6715
    assert house.t_in_c[0] == pytest.approx(25.67150, abs=1e-4)


def test_hvac_cooling_step_response_and_power() -> None:
    """Compressor on: steady state theta_a + R (Q_gain - COP P) = 35 + 0.002 * (500 - 9000) = 18 °C."""
    house = hvac(30.0, deadband=40.0, on=True)  # a wide band keeps the compressor on
    p = house.step(35.0, 3600.0, np.zeros(1), np.ones(1, dtype=bool))
    assert p[0] == -3_000.0
    assert house.t_in_c[0] == pytest.approx(18.0 + 12.0 * math.exp(-3600.0 / 72_000.0))


def test_hvac_thermostat_hysteresis_and_shed_offset() -> None:
    house = hvac(24.6)
    allowed = np.ones(1, dtype=bool)
    assert house.step(35.0, 1.0, np.zeros(1), allowed)[0] == -3_000.0  # above 24.5: on
    house.t_in_c[:] = 24.0
    assert house.step(35.0, 1.0, np.zeros(1), allowed)[0] == -3_000.0  # inside band: stays on
    house.t_in_c[:] = 23.4
    assert house.step(35.0, 1.0, np.zeros(1), allowed)[0] == 0.0  # below 23.5: off
    house.t_in_c[:] = 25.0
    assert house.step(35.0, 1.0, np.full(1, 2.2), allowed)[0] == 0.0  # shed: set point 26.2


def test_hvac_summer_night_does_not_heat() -> None:
    house = hvac(23.0)  # below the cooling band, outdoor above the balance point
    assert house.step(20.0, 60.0, np.zeros(1), np.ones(1, dtype=bool))[0] == 0.0
    winter = hvac(22.0)
    assert winter.step(0.0, 60.0, np.zeros(1), np.ones(1, dtype=bool))[0] == -3_000.0  # heat pump on


def test_hvac_setpoint_offset_stays_in_comfort_band() -> None:
    house = hvac(24.0)
    sp = house.effective_setpoint(np.ones(1, dtype=bool), np.full(1, 10.0))
    assert sp[0] == 27.0


def test_first_order_step_is_exact_for_any_step_length() -> None:
    theta = np.array([10.0])
    one_step = first_order_step(theta, np.array([20.0]), np.array([100.0]), 300.0)
    many = theta
    for _ in range(300):
        many = first_order_step(many, np.array([20.0]), np.array([100.0]), 1.0)
    assert one_step[0] == pytest.approx(many[0], rel=1e-12)


def tank(t: float = 50.0, *, ua: float = 1e-9) -> WaterHeaters:
    one = np.ones(1)
    return WaterHeaters(
        volume_l=200.0 * one,
        element_w=4_500.0 * one,
        ua_w_per_k=ua * one,
        setpoint_c=55.0 * one,
        deadband_k=5.0 * one,
        t_min_c=43.0 * one,
        t_max_c=65.0 * one,
        t_inlet_c=15.0 * one,
        t_ambient_c=20.0 * one,
        daily_draw_l=200.0 * one,
        t_tank_c=t * one,
        on=np.zeros(1, dtype=bool),
        draw_left_l=np.zeros(1),
    )


def test_water_heater_element_energy_balance() -> None:
    wh = tank(45.0)  # below 55 - 5: the element switches on
    p = wh.step(600.0, np.zeros(1), np.ones(1, dtype=bool))
    assert p[0] == -4_500.0
    # 4.5 kW for 10 min into 200 kg of water: dT = 2.7 MJ / (200 * 4184 J/K) = 3.2266 K.
    assert wh.t_tank_c[0] == pytest.approx(45.0 + 4_500.0 * 600.0 / (200.0 * CP_WATER), rel=1e-6)


def test_water_heater_draw_mixes_with_inlet_water() -> None:
    """A fully mixed tank losing V litres to inlet water: T - T_in = (T0 - T_in) exp(-V / V_tank)."""
    wh = tank(55.0)
    wh.draw_left_l[:] = 20.0
    for _ in range(4):
        wh.step(20.0 / DRAW_FLOW_LPS / 4, np.zeros(1), np.zeros(1, dtype=bool))
    assert wh.draw_left_l[0] == pytest.approx(0.0)
    assert wh.t_tank_c[0] == pytest.approx(15.0 + 40.0 * math.exp(-0.1), rel=1e-6)  # 51.1935 °C


def test_water_heater_standby_loss_and_thermostat() -> None:
    wh = tank(50.5, ua=2.0)
    allowed = np.ones(1, dtype=bool)
    assert wh.step(60.0, np.zeros(1), allowed)[0] == 0.0  # inside the deadband, element off
    tau = 200.0 * CP_WATER / 2.0
    assert wh.t_tank_c[0] == pytest.approx(20.0 + 30.5 * math.exp(-60.0 / tau))
    assert wh.step(60.0, np.full(1, 5.0), allowed)[0] == -4_500.0  # load up: set point 60, on below 55
    assert wh.step(60.0, np.full(1, -5.0), allowed)[0] == 0.0  # shed: set point 50, off


def test_ev_session_energy_and_limit() -> None:
    one = np.ones(1)
    ev = EvChargers(
        w_max=7_200.0 * one,
        efficiency=0.9 * one,
        vehicle_wh=60_000.0 * one,
        arrival_hour=18.0 * one,
        dwell_h=12.0 * one,
        need_wh_mean=10_000.0 * one,
        connected=np.zeros(1, dtype=bool),
        need_wh=np.zeros(1),
        next_arrival_s=np.full(1, np.inf),
        departure_s=np.zeros(1),
    )
    rng = np.random.default_rng(0)
    ev.plug_in(np.ones(1, dtype=bool), 0.0, np.full(1, 10_000.0), np.full(1, 8 * 3600.0))
    assert ev.vehicle_soc[0] == pytest.approx(1.0 - 10_000.0 / 60_000.0)
    limited = ev.step(60.0, 3600.0, np.full(1, 3_680.0), 0.0, rng)
    assert limited[0] == -3_680.0  # 16 A at 230 V
    grid_wh = 3_680.0
    t = 3660.0
    while ev.need_wh[0] > 0.0:
        grid_wh += -ev.step(t, 60.0, np.full(1, np.inf), 0.0, rng)[0] * 60.0 / 3600.0
        t += 60.0
    assert grid_wh == pytest.approx(10_000.0 / 0.9)
    assert ev.connected[0]
    ev.step(8 * 3600.0, 60.0, np.full(1, np.inf), 0.0, rng)
    assert not ev.connected[0]
    assert np.isfinite(ev.next_arrival_s[0])


@settings(max_examples=60, deadline=None)
@given(
    soc=st.floats(0.1, 0.9),
    rte=st.floats(0.5, 1.0),
    steps=st.lists(st.tuples(st.floats(-1e5, 1e5), st.floats(1.0, 3600.0)), min_size=1, max_size=30),
)
def test_battery_energy_balance_and_bounds_property(
    soc: float, rte: float, steps: list[tuple[float, float]]
) -> None:
    """Stored energy changes by exactly eta_c * charge - discharge / eta_d, inside the SoC band."""
    bank = battery(soc=soc, rte=rte)
    eta = math.sqrt(rte)
    expected_wh = soc * 10_000.0
    for request, dt in steps:
        p = bank.step(np.array([request]), dt)[0]
        assert -5_000.0 - 1e-9 <= p <= 4_000.0 + 1e-9
        expected_wh += (-p / eta if p > 0 else -p * eta) * dt / 3600.0
        assert 0.1 - 1e-9 <= bank.soc[0] <= 0.9 + 1e-9
        assert bank.soc[0] * 10_000.0 == pytest.approx(expected_wh, abs=1e-6)
