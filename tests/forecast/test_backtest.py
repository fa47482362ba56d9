"""The PV backtest on pvlib's real TMY weather: ours beats persistence at every horizon."""

from derms.forecast.backtest import backtest_pv, format_table


def test_pv_backtest_beats_persistence_and_seasonal_naive_on_real_weather():
    rows = backtest_pv()
    ours = {r.horizon: r for r in rows if r.model == "CLIPER clear-sky PVWatts"}
    naive = {r.horizon: r for r in rows if r.model == "seasonal naive"}
    assert set(ours) == {"1 h", "4 h", "day-ahead"}
    assert all(r.beats_persistence for r in ours.values())
    # day-ahead without a weather forecast: CLIPER is ahead of seasonal naive on MAE and pinball
    assert ours["day-ahead"].mae_w < naive["day-ahead"].mae_w
    assert ours["day-ahead"].pinball_w < naive["day-ahead"].pinball_w
    assert all(0.7 < r.coverage_p10_p90 < 0.95 for r in ours.values())
    assert "persistence" in format_table(rows)
