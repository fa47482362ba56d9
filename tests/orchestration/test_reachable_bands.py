"""Energy bands no trajectory can enter are clipped to what the device can reach."""

import numpy as np

from derms.orchestration.aggregate import reachable_bands


def test_an_unreachable_band_becomes_the_nearest_reachable_point() -> None:
    # One device, 4 steps of 1 h, lossless: it can take in at most 1 kWh and give up 2 kWh per step.
    # Its band asks for +5 kWh by step 2 (an EV need its charger cannot meet), then anything.
    lo = np.array([[-np.inf, 5000.0, 5000.0, -np.inf]])
    hi = np.array([[np.inf, np.inf, np.inf, np.inf]])
    e_lo, e_hi = reachable_bands(
        lo, hi, np.ones(1), np.full((1, 4), 2000.0), np.full((1, 4), 1000.0), dt_h=1.0
    )
    # by step 1 it can hold at most +2 kWh, by step 2 +3 kWh: the band is pinned there
    np.testing.assert_allclose(e_lo[0], [-2000.0, 2000.0, 3000.0, 1000.0])
    np.testing.assert_allclose(e_hi[0], [1000.0, 2000.0, 3000.0, 4000.0])


def test_reachable_bands_leave_a_reachable_band_alone() -> None:
    lo = np.array([[-500.0, -500.0]])
    hi = np.array([[500.0, 800.0]])
    e_lo, e_hi = reachable_bands(lo, hi, np.ones(1), np.full((1, 2), 1e3), np.full((1, 2), 1e3), 1.0)
    np.testing.assert_allclose(e_lo, lo)
    np.testing.assert_allclose(e_hi, hi)
