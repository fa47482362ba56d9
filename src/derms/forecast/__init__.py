"""Forecasts of load, PV and flexibility, and the weather sources behind them.

Everything is a function of arrays with SI units: power in W (PV as positive injection,
load as positive demand), times as UTC ``datetime64[s]`` interval starts. Quantile
forecasts are :class:`QuantileForecast` objects shaped ``(Q, T, N)``.
"""

from derms.forecast.nws import NwsGridpointForecast
from derms.forecast.pv import PvSites, forecast_pv
from derms.forecast.quantiles import QuantileForecast
from derms.forecast.weather import TmyFileSource, WeatherFrame, WeatherSource, pvlib_data_file

__all__ = [
    "NwsGridpointForecast",
    "PvSites",
    "QuantileForecast",
    "TmyFileSource",
    "WeatherFrame",
    "WeatherSource",
    "forecast_pv",
    "pvlib_data_file",
]
