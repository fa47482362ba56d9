"""Flexibility forecast: device capacity by hand, reliability weighting, safe offers."""

import numpy as np
import pytest

from derms.core.der import DerKind
from derms.forecast.flexibility import KINDS, FlexFleet, device_capacity, forecast_flexibility

BAT, PV, EV, TSTAT = (
    KINDS.index(k)
    for k in (DerKind.HOME_BATTERY, DerKind.PV_INVERTER, DerKind.EV_CHARGER, DerKind.THERMOSTAT)
)


def fleet(**over) -> FlexFleet:
    base = dict(
        kind=np.array([BAT, PV, EV, TSTAT]),
        feeder=np.array([0, 0, 1, -1]),
        w_max=np.array([5000.0, 6000.0, 0.0, 0.0]),
        w_max_consume=np.array([5000.0, 0.0, 7200.0, 3000.0]),
        wh_max=np.array([13500.0, 0.0, 0.0, 0.0]),
        soc=np.array([0.5, np.nan, np.nan, np.nan]),
        enrolled=np.ones(4, bool),
        available=np.ones(4, bool),
        baseline_w=np.array([[0.0, 0.0], [4000.0, 1000.0], [-7200.0, 0.0], [-2000.0, -2500.0]]),
        events_called=np.array([8, 0, 10, 3]),
        events_delivered=np.array([8, 0, 5, 0]),
    )
    base.update(over)
    return FlexFleet(**base)


def test_device_models_by_hand():
    up, down = device_capacity(fleet(), duration_h=2.0)
    eta = np.sqrt(0.9)
    # battery at 50 %: (0.5 - 0.1) * 13.5 kWh * sqrt(0.9) / 2 h = 2561 W up; (0.95 - 0.5) * 13.5 / sqrt(0.9) / 2 = 3202 W down
    assert up[0] == pytest.approx([0.4 * 13500 * eta / 2] * 2)
    assert down[0] == pytest.approx([0.45 * 13500 / eta / 2] * 2)
    assert up[1] == pytest.approx([0, 0]) and down[1] == pytest.approx(
        [4000, 1000]
    )  # PV curtails its forecast
    assert up[2] == pytest.approx([7200, 0]) and down[2] == pytest.approx(
        [0, 7200]
    )  # EV pauses or starts charging
    assert up[3] == pytest.approx([2000, 2500]) and down[3] == pytest.approx([1000, 500])


def test_reliability_weighted_roll_up_per_feeder():
    f = fleet()
    r = f.reliability()
    assert r == pytest.approx([9 / 10, 1 / 2, 6 / 12, 1 / 5])  # (delivered + 1) / (called + 2)
    fc = forecast_flexibility(f, n_feeders=2, duration_h=2.0)
    up, down = device_capacity(f, 2.0)
    assert fc.up_mean_w.shape == (3, 2)
    assert fc.up_mean_w[0] == pytest.approx(r[0] * up[0] + r[1] * up[1])
    assert fc.down_var_w2[1] == pytest.approx(r[2] * (1 - r[2]) * down[2] ** 2)
    assert fc.up_mean_w[2] == pytest.approx(r[3] * up[3])  # unmapped thermostat in the last row
    assert fc.fleet().up_mean_w[0] == pytest.approx(fc.up_mean_w.sum(axis=0))
    unavailable = forecast_flexibility(
        fleet(available=np.array([True, True, False, True])), 2, duration_h=2.0
    )
    assert unavailable.up_mean_w[1] == pytest.approx([0, 0])


def test_offer_at_confidence_matches_monte_carlo_for_a_large_fleet():
    rng = np.random.default_rng(7)
    n = 2000
    kind = np.full(n, TSTAT)
    shed = rng.uniform(500, 3000, n)
    f = FlexFleet(
        kind=kind,
        feeder=np.zeros(n, int),
        w_max=np.zeros(n),
        w_max_consume=np.full(n, 3500.0),
        wh_max=np.zeros(n),
        soc=np.full(n, np.nan),
        enrolled=np.ones(n, bool),
        available=np.ones(n, bool),
        baseline_w=-shed[:, None],
        events_called=np.full(n, 10),
        events_delivered=rng.integers(5, 11, n),
    )
    fc = forecast_flexibility(f, n_feeders=1).fleet()
    offer = fc.offer(0.95)[0, 0]
    draws = (rng.random((2000, n)) < f.reliability()) @ shed
    assert np.mean(draws >= offer) == pytest.approx(0.95, abs=0.02)
    assert offer < fc.up_mean_w[0, 0] < fc.up_max_w[0, 0]
    # newsvendor: price 20, penalty 100 -> 20 % shortfall risk accepted -> the 0.8-confidence offer
    assert fc.penalty_optimal_offer(20.0, 100.0) == pytest.approx(fc.offer(0.8))
    assert fc.penalty_optimal_offer(100.0, 50.0) == pytest.approx(fc.up_max_w)


def test_bad_input_lists_every_problem():
    with pytest.raises(ValueError, match=r"feeder has shape.*exceeds"):
        fleet(feeder=np.zeros(3, int), events_delivered=np.array([9, 0, 5, 0]))
    with pytest.raises(ValueError, match="confidence"):
        forecast_flexibility(fleet(), 2).offer(1.0)
