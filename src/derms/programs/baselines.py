"""Demand-response customer baselines of the ISO/RTO "like day" family, as array functions.

A baseline estimates what a resource would have consumed on an event day had it not
responded. All three ISO methods here share one shape — pick recent eligible *like days*
(weekday vs weekend/holiday), optionally keep the highest-usage ones, average them
interval by interval, then adjust the average to the event day's own load shortly before
the event. They differ only in the parameters, which :class:`LikeDayRule` holds, so each
program can configure its own.

Where each preset's numbers come from. The manuals themselves could not be read clause by
clause while writing: for NYISO Manual 7 (EDRP, version 7.2, June 2016) and PJM's manuals
only front matter was reachable, and no CAISO business practice manual text was. The
section numbers cited before (CAISO Metering BPM §12 and Tariff §4.13.4, NYISO ICAP Manual
§4.12, PJM Manual 11 §10) are recollection, not checked. A number is marked *source* where
a public text reachable then states it, and *unverified* where no reachable text confirmed
it; docs/forecasting.md has the same table.

``CAISO_10_IN_10``
    - 10 like days averaged, same-day adjustment capped at ±20 %: *source* — California
      ISO, "Draft California ISO Baseline Accuracy Work Group Proposal", 4 April 2017,
      §1: proxy demand resources and RDRR "use a 10 of 10 baseline with a 20% same day
      adjustment".
    - 45-day look-back, at least 5 like days, weekends and holidays 4 in 4, the adjustment
      window hours −4 … −2 (the 3 hours ending one hour before the event), multiplicative:
      *unverified*. The residential "5 of 10" and ±40 % variants asked about in CAISO's
      ESDER baseline work were not found in any reachable text and are not presets.
``NYISO_CBL``
    - weekends: the 3 most recent *like* weekend days — Saturdays for a Saturday, Sundays
      for a Sunday — with "no exclusions for Holidays or event days": *source*, secondary —
      a CBL window clause in Law Insider's "Establish the CBL Window" contract samples
      (it does not name NYISO; its wording is that of the New York average-day CBL).
      Hence ``saturday_separate`` and ``weekend_screened=False``.
    - weekend selection 2 highest of 3; weekdays 10 like days in a 30-day look-back,
      low-usage days (< 25 % of the window mean) dropped, 5 highest averaged; in-day
      adjustment multiplicative over the 2 hours starting 4 hours before the event,
      within [0.8, 1.2]: *unverified*.
``PJM_HIGH_4_OF_5``
    - the adjustment window, 3 hours after skipping the hour before the event (hours
      −4 … −2): consistent with *source* — RTO Insider, "Improved DR Baseline Processes
      OKd", 25 February 2025, on the Same Day (3 + 2) CBL added to Manual 11 (event hours
      ending 13–17 → hours ending 9–11 before it); that article concerns a different CBL.
    - weekdays 5 most recent in 45 days without events, holidays and low-usage days
      (< 25 %), 4 highest averaged; Saturdays, and Sundays with holidays, separately 2 of
      the 3 most recent; symmetric additive adjustment, uncapped: *unverified*.

Every number is a field of :class:`LikeDayRule`, so a program whose tariff says otherwise
overrides it (:func:`with_overrides`) rather than the code. Check the current manual before
settling money on a preset.

Missing data are never zero: a candidate day with any NaN in the event period or the
adjustment window is ineligible (and reported); a NaN in the event day's own adjustment
window leaves the baseline unadjusted and says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date
from enum import StrEnum

import numpy as np


class Adjustment(StrEnum):
    NONE = "none"
    MULTIPLICATIVE = "multiplicative"
    """Scale the baseline by actual / baseline over the adjustment window (CAISO, NYISO)."""
    ADDITIVE = "additive"
    """Shift the baseline by actual − baseline over the adjustment window (PJM SAA)."""


@dataclass(frozen=True, slots=True)
class DayRule:
    """How many like days to look at and keep."""

    n_window: int
    """Most recent eligible like days forming the window."""
    n_select: int
    """Days averaged: the ``n_select`` highest by event-period usage (all when equal to ``n_window``)."""
    min_days: int = 1
    """Fewer eligible days than this and no baseline is given."""

    def __post_init__(self) -> None:
        if not 1 <= self.min_days <= self.n_select <= self.n_window:
            raise ValueError("need 1 <= min_days <= n_select <= n_window")


@dataclass(frozen=True, slots=True)
class LikeDayRule:
    """Parameters of a like-day baseline; see the module docstring for the presets' sources."""

    name: str
    weekday: DayRule
    weekend: DayRule
    lookback_days: int
    """Calendar days before the event day searched for like days."""
    low_usage_fraction: float | None = None
    """Drop window days whose event-period mean is below this fraction of the window mean."""
    saturday_separate: bool = False
    """Saturdays are like only to Saturdays, Sundays and holidays to each other (PJM, NYISO)."""
    weekend_screened: bool = True
    """For a weekend or holiday event, drop earlier event days (``excluded``) and holidays from
    the like days; ``False`` keeps them and matches weekend days by weekday alone (NYISO)."""
    adjustment: Adjustment = Adjustment.NONE
    adjustment_start_h: float = 4.0
    """The adjustment window starts this many hours before the event start."""
    adjustment_hours: float = 3.0
    """Length of the adjustment window [h]."""
    adjustment_cap: float | None = None
    """Multiplicative: factor kept within ``[1 - cap, 1 + cap]``; additive: |shift| ≤ cap × window baseline."""


CAISO_10_IN_10 = LikeDayRule(
    name="CAISO 10-in-10",
    weekday=DayRule(n_window=10, n_select=10, min_days=5),
    weekend=DayRule(n_window=4, n_select=4, min_days=4),
    lookback_days=45,
    adjustment=Adjustment.MULTIPLICATIVE,
    adjustment_start_h=4.0,
    adjustment_hours=3.0,
    adjustment_cap=0.20,
)
NYISO_CBL = LikeDayRule(
    name="NYISO Average Day CBL",
    weekday=DayRule(n_window=10, n_select=5, min_days=5),
    weekend=DayRule(n_window=3, n_select=2, min_days=2),
    lookback_days=30,
    low_usage_fraction=0.25,
    saturday_separate=True,
    weekend_screened=False,
    adjustment=Adjustment.MULTIPLICATIVE,
    adjustment_start_h=4.0,
    adjustment_hours=2.0,
    adjustment_cap=0.20,
)
PJM_HIGH_4_OF_5 = LikeDayRule(
    name="PJM High 4 of 5 with SAA",
    weekday=DayRule(n_window=5, n_select=4, min_days=4),
    weekend=DayRule(n_window=3, n_select=2, min_days=2),
    lookback_days=45,
    low_usage_fraction=0.25,
    saturday_separate=True,
    adjustment=Adjustment.ADDITIVE,
    adjustment_start_h=4.0,
    adjustment_hours=3.0,
    adjustment_cap=None,
)
PRESETS = {r.name: r for r in (CAISO_10_IN_10, NYISO_CBL, PJM_HIGH_4_OF_5)}


@dataclass(frozen=True, slots=True)
class BaselineResult:
    """A baseline for one event day.

    ``unadjusted`` and ``adjusted`` are ``(K,)`` per-interval demand [W] for the whole event
    day (NaN where no baseline could be formed); ``selected_days`` are the like days averaged.
    """

    rule: str
    unadjusted: np.ndarray
    adjusted: np.ndarray
    selected_days: tuple[date, ...]
    window_days: tuple[date, ...]
    adjustment: float
    """The factor (multiplicative) or shift [W] (additive) applied; 1.0/0.0 when none."""
    adjustment_capped: bool
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return bool(np.isfinite(self.adjusted).all())


def _day_class(d: date, holidays: frozenset[date], saturday_separate: bool) -> str:
    if d in holidays or d.weekday() == 6:
        return "sunday_holiday" if saturday_separate else "weekend"
    if d.weekday() == 5:
        return "saturday" if saturday_separate else "weekend"
    return "weekday"


def like_day_baseline(
    load_w: np.ndarray,
    days: np.ndarray,
    event_day: int,
    event_start: int,
    event_end: int,
    rule: LikeDayRule,
    *,
    excluded: np.ndarray | None = None,
    holidays: frozenset[date] | set[date] = frozenset(),
) -> BaselineResult:
    """Baseline for the event in intervals ``[event_start, event_end)`` of day row ``event_day``.

    Parameters
    ----------
    load_w : (D, K) array
        Interval mean demand [W] for D consecutive local calendar days of K intervals each
        (K = 24 hourly, 96 for 15 minutes). NaN means not metered.
    days : (D,) array of ``datetime64[D]``
        The calendar day of each row; consecutive.
    event_day, event_start, event_end : int
        Row of the event day and its event intervals.
    rule : LikeDayRule
        A preset (``CAISO_10_IN_10``, ``NYISO_CBL``, ``PJM_HIGH_4_OF_5``) or a program's own.
    excluded : (D,) bool array, optional
        Days that may not be like days: earlier events, outages, days the program excludes.
    holidays : set of date
        Holidays, treated like Sundays.
    """
    load = np.asarray(load_w, float)
    n_days, k = load.shape
    days = np.asarray(days).astype("datetime64[D]")
    if len(days) != n_days or (n_days > 1 and np.any(np.diff(days).astype(int) != 1)):
        raise ValueError("days must be consecutive and match the rows of load_w")
    if not (0 <= event_day < n_days and 0 <= event_start < event_end <= k):
        raise ValueError("event_day / event interval out of range")
    if k % 24:
        raise ValueError("intervals per day must be a multiple of 24")
    per_h = k // 24
    excluded = np.zeros(n_days, bool) if excluded is None else np.asarray(excluded, bool)
    holidays = frozenset(holidays)
    dates = [d.astype(object) for d in days]
    cls = _day_class(dates[event_day], holidays, rule.saturday_separate)
    day_rule = rule.weekday if cls == "weekday" else rule.weekend
    flat = load.ravel()
    adj_start = event_start - round(rule.adjustment_start_h * per_h)
    adj = np.arange(adj_start, adj_start + round(rule.adjustment_hours * per_h))
    notes: list[str] = []

    screen = rule.weekend_screened or cls == "weekday"
    # Eligible like days, most recent first.
    candidates: list[int] = []
    for back in range(1, rule.lookback_days + 1):
        d = event_day - back
        if d < 0:
            notes.append(
                f"history starts {back - 1} days before the event; look-back is {rule.lookback_days}"
            )
            break
        if screen and excluded[d]:
            continue
        if _day_class(dates[d], holidays if screen else frozenset(), rule.saturday_separate) != cls:
            continue
        rows = d * k + np.r_[np.arange(event_start, event_end), adj]
        if (rows < 0).any() or np.isnan(flat[rows]).any():
            notes.append(f"{dates[d]} has missing data in the event or adjustment window; not used")
            continue
        candidates.append(d)
    usage = {d: float(load[d, event_start:event_end].mean()) for d in candidates}
    window = candidates[: day_rule.n_window]
    if rule.low_usage_fraction is not None and window:
        ref = np.mean([usage[d] for d in window])
        low = [d for d in candidates if usage[d] < rule.low_usage_fraction * ref]
        if low:
            notes.append("low-usage days dropped: " + ", ".join(str(dates[d]) for d in low))
        window = [d for d in candidates if d not in low][: day_rule.n_window]
    if len(window) < day_rule.min_days:
        notes.append(f"only {len(window)} eligible like days; {day_rule.min_days} required")
        nan = np.full(k, np.nan)
        return BaselineResult(
            rule.name, nan, nan.copy(), (), tuple(dates[d] for d in window), np.nan, False, tuple(notes)
        )
    selected = sorted(window, key=lambda d: usage[d], reverse=True)[: day_rule.n_select]
    selected.sort(reverse=True)
    base = np.mean([load[d] for d in selected], axis=0)
    base_adj = np.mean([flat[d * k + adj] for d in selected], axis=0)
    factor, capped = (0.0 if rule.adjustment is Adjustment.ADDITIVE else 1.0), False
    adjusted = base.copy()
    if rule.adjustment is not Adjustment.NONE:
        rows = event_day * k + adj
        actual = flat[rows] if (rows >= 0).all() else np.array([np.nan])
        if np.isnan(actual).any():
            notes.append("event-day adjustment window has missing data; baseline left unadjusted")
        elif rule.adjustment is Adjustment.MULTIPLICATIVE:
            raw = float(actual.mean() / base_adj.mean()) if base_adj.mean() > 0 else 1.0
            factor = raw
            if rule.adjustment_cap is not None:
                factor = float(np.clip(raw, 1.0 - rule.adjustment_cap, 1.0 + rule.adjustment_cap))
            capped = factor != raw
            adjusted = base * factor
        else:
            raw = float(actual.mean() - base_adj.mean())
            factor = raw
            if rule.adjustment_cap is not None:
                limit = rule.adjustment_cap * float(base_adj.mean())
                factor = float(np.clip(raw, -limit, limit))
            capped = factor != raw
            adjusted = base + factor
    return BaselineResult(
        rule=rule.name,
        unadjusted=base,
        adjusted=adjusted,
        selected_days=tuple(dates[d] for d in selected),
        window_days=tuple(dates[d] for d in window),
        adjustment=factor,
        adjustment_capped=capped,
        notes=tuple(notes),
    )


def with_overrides(rule: LikeDayRule, **changes: object) -> LikeDayRule:
    """A program's variant of a preset, e.g. ``with_overrides(CAISO_10_IN_10, adjustment_cap=0.4)``."""
    return replace(rule, **changes)  # type: ignore[arg-type]
