"""Forecasts of load, PV and flexibility, and the weather sources behind them.

Everything is a function of arrays with SI units: power in W (PV as positive injection,
load as positive demand), times as UTC ``datetime64[s]`` interval starts. Quantile
forecasts are :class:`QuantileForecast` objects shaped ``(Q, T, N)``.
"""

from derms.forecast.api import HORIZONS, ForecastBundle, forecast_feeder_load, forecast_pv_feeders
from derms.forecast.backtest import BacktestRow, format_table, run_backtest
from derms.forecast.flexibility import FlexFleet, FlexibilityForecast, forecast_flexibility
from derms.forecast.load import LoadModel, fit_load_model, forecast_load
from derms.forecast.nws import NwsGridpointForecast
from derms.forecast.pv import PvSites, forecast_pv
from derms.forecast.quantiles import QuantileForecast
from derms.forecast.weather import TmyFileSource, WeatherFrame, WeatherSource, pvlib_data_file

__all__ = [
    "HORIZONS",
    "BacktestRow",
    "FlexFleet",
    "FlexibilityForecast",
    "ForecastBundle",
    "LoadModel",
    "NwsGridpointForecast",
    "PvSites",
    "QuantileForecast",
    "TmyFileSource",
    "WeatherFrame",
    "WeatherSource",
    "fit_load_model",
    "forecast_feeder_load",
    "forecast_flexibility",
    "forecast_load",
    "forecast_pv",
    "forecast_pv_feeders",
    "format_table",
    "pvlib_data_file",
    "run_backtest",
]
