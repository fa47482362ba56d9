"""PJM Same Day (3 + 2) CBL on the example the source gives: event hours ending 13-17."""

import numpy as np
import pytest

from derms.programs.same_day import same_day_baseline


def day() -> np.ndarray:
    """Hourly demand; index i is hour ending i + 1. HE 9-11 = 100, 110, 120 W; HE 12 and
    HE 18 (the skipped hours) 999 W; the event HE 13-17 at 50 W; HE 19-20 = 130, 140 W."""
    load = np.full(24, 500.0)
    load[8:11] = [100.0, 110.0, 120.0]
    load[11] = load[17] = 999.0
    load[12:17] = 50.0
    load[18:20] = [130.0, 140.0]
    return load


def test_same_day_averages_three_hours_before_and_two_after_skipping_one():
    """(100 + 110 + 120 + 130 + 140) / 5 = 120 W over the five event hours HE 13-17."""
    r = same_day_baseline(day(), 12, 17)
    assert r.ok and r.adjusted == pytest.approx([120.0] * 5)
    quarter = same_day_baseline(np.repeat(day(), 4), 48, 68, intervals_per_hour=4)
    assert quarter.adjusted == pytest.approx([120.0] * 20)


def test_missing_window_data_gives_no_baseline_and_bad_windows_are_refused():
    load = day()
    load[9] = np.nan
    r = same_day_baseline(load, 12, 17)
    assert not r.ok and np.isnan(r.adjusted).all() and "missing" in r.notes[0]
    with pytest.raises(ValueError, match="neighbouring day"):
        same_day_baseline(day(), 2, 5)
    with pytest.raises(ValueError, match="inside"):
        same_day_baseline(day(), 17, 12)
