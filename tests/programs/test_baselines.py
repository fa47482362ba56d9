"""Like-day baselines on hand-checked examples.

The history is flat per day (every hour of a day has the same load) so each average can
be checked by hand. Calendar: summer 2026; 3 July 2026 (Friday) is the observed
Independence Day holiday; 8 July was an earlier event day; the event is Wednesday
15 July 2026, hours ending 15-18 (intervals 14..17), i.e. event_start=14, event_end=18.
"""

from datetime import date

import numpy as np
import pytest

from derms.programs.baselines import (
    CAISO_10_IN_10,
    NYISO_CBL,
    PJM_HIGH_4_OF_5,
    Adjustment,
    like_day_baseline,
    with_overrides,
)

FIRST = np.datetime64("2026-05-20")
EVENT = date(2026, 7, 15)
HOLIDAYS = {date(2026, 7, 3)}


def history(overrides: dict[date, float], event_pre: float, weekend: float = 400.0) -> tuple:
    days = np.arange(FIRST, np.datetime64(EVENT, "D") + np.timedelta64(1, "D"))
    load = np.empty((len(days), 24))
    for i, d in enumerate(days.astype(object)):
        load[i] = overrides.get(d, weekend if d.weekday() >= 5 else 1000.0)
    load[-1] = event_pre  # event day before and during the event
    excluded = days == np.datetime64("2026-07-08")
    return load, days, len(days) - 1, excluded


def test_caiso_10_in_10_averages_ten_like_days_and_caps_the_day_of_adjustment():
    load, days, ev, excluded = history(
        {date(2026, 7, 14): 2000.0, date(2026, 7, 8): 9999.0, date(2026, 7, 3): 5000.0}, event_pre=1650.0
    )
    r = like_day_baseline(load, days, ev, 14, 18, CAISO_10_IN_10, excluded=excluded, holidays=HOLIDAYS)
    # ten most recent weekdays, skipping the 8 July event and the 3 July holiday
    assert r.selected_days == tuple(
        date(2026, m, d)
        for m, d in [(7, 14), (7, 13), (7, 10), (7, 9), (7, 7), (7, 6), (7, 2), (7, 1), (6, 30), (6, 29)]
    )
    # (2000 + 9 * 1000) / 10 = 1100; hours 10-12 actual 1650 -> ratio 1.5 capped at 1.2
    assert r.unadjusted == pytest.approx(np.full(24, 1100.0))
    assert r.adjustment == pytest.approx(1.2) and r.adjustment_capped
    assert r.adjusted[14:18] == pytest.approx([1320.0] * 4)


def test_nyiso_cbl_drops_low_usage_days_keeps_five_highest_and_bounds_adjustment():
    load, days, ev, excluded = history(
        {date(2026, 7, 14): 2000.0, date(2026, 7, 13): 100.0}, event_pre=1080.0
    )
    r = like_day_baseline(load, days, ev, 14, 18, NYISO_CBL, excluded=excluded, holidays=HOLIDAYS)
    # window mean of the first ten like days is 1010; 13 July (100 W) is below 25 % of it
    assert date(2026, 7, 13) not in r.window_days
    assert len(r.window_days) == 10 and r.window_days[-1] == date(2026, 6, 26)
    assert r.selected_days == (
        date(2026, 7, 14),
        date(2026, 7, 10),
        date(2026, 7, 9),
        date(2026, 7, 7),
        date(2026, 7, 6),
    )
    assert r.unadjusted[0] == pytest.approx((2000 + 4 * 1000) / 5)  # 1200
    # hours 10-11 (2 h starting 4 h before): 1080 / 1200 = 0.9, inside [0.8, 1.2]
    assert r.adjustment == pytest.approx(0.9) and not r.adjustment_capped
    assert r.adjusted[14] == pytest.approx(1080.0)


def test_pjm_high_4_of_5_with_symmetric_additive_adjustment():
    load, days, ev, excluded = history(
        {date(2026, 7, 14): 2000.0, date(2026, 7, 13): 100.0}, event_pre=1050.0
    )
    profile = np.tile(
        np.linspace(0.5, 1.5, 24), (len(days) - 1, 1)
    )  # non-flat shape to see the shift is additive
    load[:-1] *= profile
    r = like_day_baseline(load, days, ev, 14, 18, PJM_HIGH_4_OF_5, excluded=excluded, holidays=HOLIDAYS)
    # five most recent weekdays without the event (8 July), the holiday and the low-usage 13 July
    assert r.window_days == (
        date(2026, 7, 14),
        date(2026, 7, 10),
        date(2026, 7, 9),
        date(2026, 7, 7),
        date(2026, 7, 6),
    )
    assert r.selected_days == (date(2026, 7, 14), date(2026, 7, 10), date(2026, 7, 9), date(2026, 7, 7))
    expected = (2000 + 3 * 1000) / 4 * np.linspace(0.5, 1.5, 24)  # 1250 x shape
    assert r.unadjusted == pytest.approx(expected)
    shift = 1050.0 - expected[10:13].mean()  # hours 10..12 = the 3 h ending 1 h before the event
    assert r.adjustment == pytest.approx(shift)
    assert r.adjusted == pytest.approx(expected + shift)


def test_pjm_saturday_event_uses_two_highest_of_three_saturdays():
    days = np.arange(np.datetime64("2026-06-01"), np.datetime64("2026-07-19"))  # event Saturday 18 July
    load = np.full((len(days), 24), 1000.0)
    saturday_loads = {date(2026, 7, 11): 600.0, date(2026, 7, 4): 900.0, date(2026, 6, 27): 300.0}
    for i, d in enumerate(days.astype(object)):
        if d.weekday() == 6:
            load[i] = 50.0  # Sundays must not count as like days for a Saturday
        load[i] = saturday_loads.get(d, load[i, 0])
    load[-1] = 750.0
    rule = with_overrides(PJM_HIGH_4_OF_5, adjustment=Adjustment.NONE)
    r = like_day_baseline(load, days, len(days) - 1, 14, 18, rule)
    assert r.window_days == (date(2026, 7, 11), date(2026, 7, 4), date(2026, 6, 27))
    assert r.adjusted[15] == pytest.approx((900 + 600) / 2)


def test_missing_data_is_never_zero():
    load, days, ev, excluded = history({date(2026, 7, 14): 2000.0}, event_pre=1100.0)
    load[days == np.datetime64("2026-07-14"), 15] = np.nan
    r = like_day_baseline(load, days, ev, 14, 18, CAISO_10_IN_10, excluded=excluded, holidays=HOLIDAYS)
    assert date(2026, 7, 14) not in r.selected_days
    assert any("2026-07-14" in n for n in r.notes)
    assert r.unadjusted[14] == pytest.approx(1000.0)
    load[-1, 11] = np.nan  # event-day adjustment window
    r = like_day_baseline(load, days, ev, 14, 18, CAISO_10_IN_10, excluded=excluded, holidays=HOLIDAYS)
    assert r.adjustment == 1.0 and r.adjusted[14] == pytest.approx(1000.0)
    assert any("unadjusted" in n for n in r.notes)


def test_too_few_like_days_gives_no_baseline():
    days = np.arange(np.datetime64("2026-07-10"), np.datetime64("2026-07-16"))
    load = np.full((len(days), 24), 1000.0)
    r = like_day_baseline(load, days, len(days) - 1, 14, 18, CAISO_10_IN_10)
    assert not r.ok and np.isnan(r.adjusted).all()
    assert any("required" in n for n in r.notes)


def test_fifteen_minute_intervals_and_bad_input():
    load, days, ev, excluded = history({date(2026, 7, 14): 2000.0}, event_pre=1100.0)
    quarter = np.repeat(load, 4, axis=1)
    r = like_day_baseline(quarter, days, ev, 56, 72, CAISO_10_IN_10, excluded=excluded, holidays=HOLIDAYS)
    assert r.unadjusted[60] == pytest.approx(1100.0) and r.adjustment == pytest.approx(1.0)
    with pytest.raises(ValueError, match="consecutive"):
        like_day_baseline(load, days[::-1], ev, 14, 18, CAISO_10_IN_10)
    with pytest.raises(ValueError, match="out of range"):
        like_day_baseline(load, days, ev, 18, 14, CAISO_10_IN_10)


def test_nyiso_weekend_uses_like_saturdays_without_excluding_events_or_holidays():
    """NYISO weekend CBL window: the 3 most recent like (Saturday) days, no exclusion of
    holidays or event days; the 2 highest are averaged.

    Event Saturday 18 July 2026. Saturdays before it: 11 July (an earlier event, 600 W),
    4 July (Independence Day, 900 W), 27 June (300 W); Sundays are 50 W and must not count.
    Window (11 Jul, 4 Jul, 27 Jun); 2 highest: (900 + 600) / 2 = 750 W. The event day is
    750 W before the event, so the in-day factor is 750 / 750 = 1.
    PJM's screened rule on the same data skips 11 July (event) and 4 July (holiday, a Sunday
    class day) and takes 27 June, 20 June and 13 June: (1000 + 1000) / 2 = 1000 W unadjusted.
    """
    days = np.arange(np.datetime64("2026-06-01"), np.datetime64("2026-07-19"))
    load = np.full((len(days), 24), 1000.0)
    saturdays = {date(2026, 7, 11): 600.0, date(2026, 7, 4): 900.0, date(2026, 6, 27): 300.0}
    for i, d in enumerate(days.astype(object)):
        if d.weekday() == 6:
            load[i] = 50.0
        load[i] = saturdays.get(d, load[i, 0])
    load[-1] = 750.0
    excluded = days == np.datetime64("2026-07-11")
    holidays = {date(2026, 7, 4)}
    r = like_day_baseline(load, days, len(days) - 1, 14, 18, NYISO_CBL, excluded=excluded, holidays=holidays)
    assert r.window_days == (date(2026, 7, 11), date(2026, 7, 4), date(2026, 6, 27))
    assert r.selected_days == (date(2026, 7, 11), date(2026, 7, 4))
    assert r.adjustment == pytest.approx(1.0)
    assert r.adjusted[15] == pytest.approx(750.0)
    pjm = with_overrides(PJM_HIGH_4_OF_5, adjustment=Adjustment.NONE)
    r = like_day_baseline(load, days, len(days) - 1, 14, 18, pjm, excluded=excluded, holidays=holidays)
    assert r.window_days == (date(2026, 6, 27), date(2026, 6, 20), date(2026, 6, 13))
    assert r.adjusted[15] == pytest.approx(1000.0)
