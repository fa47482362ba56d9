"""Measurement and verification roll-ups, with missing data kept explicit."""

import numpy as np
import pytest

from derms.programs.mv import verify


def report(actual: np.ndarray):
    # three devices on two sites; 15-minute intervals; event 0 = intervals 1-4, event 1 = 6-7
    baseline = np.array([[2000.0] * 8, [1000.0] * 8, [4000.0] * 8])
    events = np.array([-1, 0, 0, 0, 0, -1, 1, 1])
    return verify(
        baseline,
        actual,
        interval_s=900,
        event_of_interval=events,
        device_ids=["tstat-1", "wh-1", "ci-1"],
        site_of_device=np.array([0, 0, 1]),
        site_ids=["home", "shop"],
        committed_w_by_site=np.array([1500.0, 2000.0]),
    )


def rows_by(rows, level, key, event):
    (r,) = [r for r in rows if r.level == level and r.key == key and r.event == event]
    return r


def test_delivered_energy_per_device_site_event_and_program():
    actual = np.array([[2000.0] * 8, [1000.0] * 8, [4000.0] * 8])
    actual[0, 1:5] = 500.0  # thermostat sheds 1500 W for 1 h -> 1500 Wh
    actual[2, 1:5] = 2500.0  # C&I sheds 1500 W for 1 h
    actual[2, 6:8] = 1000.0  # and 3000 W for 30 min in event 1 -> 1500 Wh
    rows = report(actual)
    assert rows_by(rows, "device", "tstat-1", 0).delivered_wh == pytest.approx(1500.0)
    home = rows_by(rows, "site", "home", 0)
    assert home.delivered_wh == pytest.approx(1500.0) and home.baseline_wh == pytest.approx(3000.0)
    assert home.performance == pytest.approx(1.0)  # 1500 W delivered on 1500 W committed
    shop = rows_by(rows, "site", "shop", 1)
    assert shop.delivered_wh == pytest.approx(1500.0) and shop.performance == pytest.approx(1.5)
    assert rows_by(rows, "event", "event 0", 0).delivered_wh == pytest.approx(3000.0)
    program = rows_by(rows, "program", "program", None)
    assert program.delivered_wh == pytest.approx(4500.0) and program.complete


def test_missing_intervals_are_reported_not_zero():
    actual = np.array([[500.0] * 8, [1000.0] * 8, [4000.0] * 8])
    actual[0, 2] = np.nan  # one thermostat reading lost in event 0
    rows = report(actual)
    tstat = rows_by(rows, "device", "tstat-1", 0)
    assert tstat.intervals_expected == 4 and tstat.intervals_measured == 3
    assert tstat.coverage == pytest.approx(0.75) and not tstat.complete
    # 3 measured intervals x 1500 W x 0.25 h; a zero reading would have added -125 Wh instead
    assert tstat.delivered_wh == pytest.approx(1125.0)
    assert rows_by(rows, "site", "home", 0).coverage == pytest.approx(7 / 8)


def test_shape_errors():
    with pytest.raises(ValueError, match="N_devices"):
        verify(
            np.zeros((2, 3)),
            np.zeros((3, 2)),
            interval_s=900,
            event_of_interval=np.zeros(3),
            device_ids=["a", "b"],
            site_of_device=np.zeros(2, int),
            site_ids=["s"],
        )


def test_baseline_to_settlement_end_to_end():
    """CAISO 10-in-10 baselines per device feed M&V for a 4-hour event (hand-checkable)."""
    from derms.programs.baselines import CAISO_10_IN_10, like_day_baseline

    days = np.arange(np.datetime64("2026-06-01"), np.datetime64("2026-07-16"))
    ev = len(days) - 1  # Wednesday 15 July 2026, event hours 14-17
    flat = {"pool-pump": 1200.0, "ac": 3000.0}
    baselines, actuals = [], []
    for load_w in flat.values():
        history = np.full((len(days), 24), load_w)
        history[ev, 14:18] = load_w / 4  # both devices shed three quarters of their load
        r = like_day_baseline(history, days, ev, 14, 18, CAISO_10_IN_10)
        assert r.ok and r.adjustment == pytest.approx(1.0)
        baselines.append(r.adjusted)
        actuals.append(history[ev])
    events = np.where((np.arange(24) >= 14) & (np.arange(24) < 18), 0, -1)
    rows = verify(
        np.array(baselines),
        np.array(actuals),
        interval_s=3600,
        event_of_interval=events,
        device_ids=list(flat),
        site_of_device=np.array([0, 0]),
        site_ids=["home"],
        committed_w_by_site=np.array([3000.0]),
    )
    (site,) = [r for r in rows if r.level == "site"]
    assert site.delivered_wh == pytest.approx(0.75 * (1200 + 3000) * 4)  # 12.6 kWh
    assert site.performance == pytest.approx(0.75 * 4200 / 3000)
