"""The PV backtest on pvlib's real TMY weather: ours beats persistence intraday."""

from derms.forecast.backtest import backtest_pv, format_table


def test_pv_backtest_beats_persistence_on_real_weather():
    rows = backtest_pv()
    ours = {r.horizon: r for r in rows if r.model == "clear-sky-index PVWatts"}
    assert set(ours) == {"1 h", "4 h", "day-ahead"}
    assert ours["1 h"].beats_persistence and ours["4 h"].beats_persistence
    assert all(0.5 < r.coverage_p10_p90 < 0.95 for r in ours.values())
    assert "persistence" in format_table(rows)
