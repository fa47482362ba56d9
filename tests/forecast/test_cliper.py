"""CLIPER clear-sky-index forecasts on hand-worked series."""

import numpy as np
import pytest

from derms.forecast.cliper import climatology_term, cliper, fit_weight, persistence_term

NAN = np.nan


def test_persistence_is_the_index_now_intraday_and_the_day_mean_day_ahead():
    """Four values a day; night is NaN.

    issue 5, 1 step ahead: kt[5] = 0.6. issue 4 (sun down), 1 step: mean of kt[1..4] over the
    finite values = (0.2 + 0.4) / 2 = 0.3. issue 6, a day ahead: mean of kt[3..6] = (0.6 + 0.8) / 2 = 0.7.
    """
    kt = np.array([NAN, 0.2, 0.4, NAN, NAN, 0.6, 0.8, NAN])
    assert persistence_term(kt, np.array([5, 4]), 1, 4) == pytest.approx([0.6, 0.3])
    assert persistence_term(kt, np.array([6]), 4, 4) == pytest.approx([0.7])
    with pytest.raises(ValueError, match="earlier values"):
        persistence_term(kt, np.array([2]), 1, 4)


def test_climatology_is_the_median_at_the_same_hour_on_earlier_days():
    """Two values a day: days (0.1, 0.5), (0.3, 0.7), (0.9, 0.2).

    Targets on day 2: phase 0 median(0.1, 0.3) = 0.2, phase 1 median(0.5, 0.7) = 0.6; with a
    one-day look-back only day 1 counts: 0.3, 0.7. Day 0 has no earlier day: NaN.
    """
    kt = np.array([0.1, 0.5, 0.3, 0.7, 0.9, 0.2])
    assert climatology_term(kt, np.array([4, 5]), 2) == pytest.approx([0.2, 0.6])
    assert climatology_term(kt, np.array([4, 5]), 2, max_days=1) == pytest.approx([0.3, 0.7])
    assert np.isnan(climatology_term(kt, np.array([0, 1]), 2)).all()


def test_fitted_weight_recovers_the_blend_that_made_the_target():
    rng = np.random.default_rng(0)
    p, c = rng.uniform(0, 1, 400), rng.uniform(0, 1, 400)
    assert fit_weight(0.25 * p + 0.75 * c, p, c) == pytest.approx(0.25)
    assert fit_weight(p, p, c) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="at least 50"):
        fit_weight(p[:10], p[:10], c[:10])


def test_cliper_blends_and_falls_back_to_the_term_it_has():
    """0.2 x 0.5 + 0.8 x 1.0 = 0.9; a missing term leaves the other; both missing stays NaN."""
    out = cliper(np.array([0.5, NAN, 0.4, NAN]), np.array([1.0, 0.7, NAN, NAN]), 0.2)
    assert out[:3] == pytest.approx([0.9, 0.7, 0.4]) and np.isnan(out[3])
    with pytest.raises(ValueError, match="weight"):
        cliper(np.array([0.5]), np.array([0.5]), 1.5)
