"""Regression baseline by the CalTRACK daily methods, through ``opendsm`` (optional extra ``mv``).

CalTRACK 2.0 daily methods (CalTRACK Technical Working Group, "CalTRACK Methods",
sections 3.1-3.4): daily consumption is regressed on heating and cooling degree-days with
searched balance points, the best of intercept-only / HDD / CDD / HDD+CDD models chosen by
adjusted R²; ``opendsm`` (the Linux Foundation Energy successor of ``eemeter``) implements
them with data-sufficiency checks (section 3.1: at least 90 % of days in a 365-day baseline).
derms runs opendsm's ``model="legacy"`` settings, which are the CalTRACK 2.0 daily method
itself (one HDD/CDD model for all days). opendsm's newer default adds seasonal and
weekday/weekend splits screened by a Gaussian-ellipse test; with NumPy 2.5, whose
``linalg.eig`` always returns complex arrays, that screen fails inside opendsm 1.2.7
(``arctan2`` on complex input), so it is not offered.

``opendsm`` JIT-compiles on first fit (about 26 s) and sets OpenMP/MKL/OpenBLAS thread counts
to 1 for the whole process on import, so it is imported *inside* :func:`caltrack_daily_baseline`
only; keep calls out of the API process (run them in a worker).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True, slots=True)
class CaltrackResult:
    """Predicted counterfactual daily energy [Wh] per reporting day, and what the fit reported."""

    days: np.ndarray
    predicted_wh: np.ndarray
    model_type: str
    disqualification: tuple[str, ...]
    warnings: tuple[str, ...]


def _daily_series(days: np.ndarray, values: np.ndarray, timezone: str) -> pd.Series:
    index = pd.DatetimeIndex(np.asarray(days).astype("datetime64[D]")).tz_localize(timezone)
    return pd.Series(np.asarray(values, float), index=index)


def _hourly_temperature_f(times: np.ndarray, temperature_c: np.ndarray, timezone: str) -> pd.Series:
    index = (
        pd.DatetimeIndex(np.asarray(times).astype("datetime64[s]")).tz_localize("UTC").tz_convert(timezone)
    )
    return pd.Series(np.asarray(temperature_c, float) * 9.0 / 5.0 + 32.0, index=index)  # opendsm expects °F


def caltrack_daily_baseline(
    baseline_days: np.ndarray,
    baseline_wh: np.ndarray,
    reporting_days: np.ndarray,
    temperature_times: np.ndarray,
    temperature_c: np.ndarray,
    *,
    timezone: str = "UTC",
    allow_disqualified: bool = False,
) -> CaltrackResult:
    """Fit the CalTRACK daily model on a baseline year and predict the reporting days.

    ``baseline_wh`` is daily consumption [Wh] (NaN = not metered; CalTRACK drops, never
    zero-fills, such days); ``temperature_c`` [°C] is hourly on UTC ``temperature_times``
    covering both periods. Raises ``ValueError`` when opendsm disqualifies the baseline
    (insufficient data) unless ``allow_disqualified``.
    """
    try:
        from opendsm.eemeter import DailyBaselineData, DailyModel, DailyReportingData
    except ImportError as exc:  # pragma: no cover - depends on the optional extra
        raise RuntimeError("the CalTRACK baseline needs the 'mv' extra (opendsm)") from exc
    temperature = _hourly_temperature_f(temperature_times, temperature_c, timezone)
    meter = _daily_series(baseline_days, np.asarray(baseline_wh, float) / 1000.0, timezone)  # kWh
    data = DailyBaselineData.from_series(meter, temperature, is_electricity_data=True)
    disqualification = tuple(str(d.qualified_name) for d in data.disqualification)
    if disqualification and not allow_disqualified:
        raise ValueError(f"baseline disqualified by CalTRACK data sufficiency: {', '.join(disqualification)}")
    model = DailyModel(model="legacy").fit(data, ignore_disqualification=allow_disqualified)
    reporting = DailyReportingData.from_series(None, temperature, tzinfo=meter.index.tz)
    result = model.predict(reporting, ignore_disqualification=allow_disqualified)
    days = pd.DatetimeIndex(np.asarray(reporting_days).astype("datetime64[D]")).tz_localize(timezone)
    predicted = result["predicted"].reindex(days).to_numpy(dtype=float) * 1000.0
    types = sorted({str(t) for t in result["model_type"].dropna().unique()})
    return CaltrackResult(
        days=np.asarray(reporting_days).astype("datetime64[D]"),
        predicted_wh=predicted,
        model_type="/".join(types),
        disqualification=disqualification,
        warnings=tuple(str(w.qualified_name) for w in model.warnings),
    )
