"""Same-day CBL: the event day's own load around the event (PJM "Same Day (3 + 2)").

Source: RTO Insider, "Improved DR Baseline Processes OKd", 25 February 2025, reporting the
method PJM documents in Manual 11: the CBL is "the average of three hours before event
(after skipping one hour) and two hours after event (after skipping one hour). For an event
occurring in hours ending 13-17, for example, PJM would average hours ending 9-11 and
19-20." The manual clause itself was not reachable; what the article leaves open is ours
and configurable: all intervals of the five hours weigh equally, and a missing interval in
them gives no baseline (reported), never a zero.
"""

from __future__ import annotations

import numpy as np

from derms.programs.baselines import BaselineResult

NAME = "PJM Same Day (3 + 2)"


def same_day_baseline(
    load_w: np.ndarray,
    event_start: int,
    event_end: int,
    *,
    intervals_per_hour: int = 1,
    before_h: int = 3,
    after_h: int = 2,
    skip_h: int = 1,
) -> BaselineResult:
    """Flat baseline over the event intervals ``[event_start, event_end)`` of ``load_w``.

    ``load_w`` is interval mean demand [W] on a contiguous series long enough to hold the
    windows (pass the neighbouring day too for events near midnight). The result's arrays
    cover the event intervals only (``event_end - event_start`` values).
    """
    load = np.asarray(load_w, float)
    k = intervals_per_hour
    if load.ndim != 1 or k < 1 or not 0 <= event_start < event_end <= len(load):
        raise ValueError("load_w must be 1-D and the event inside it")
    lo = event_start - (skip_h + before_h) * k
    hi = event_end + (skip_h + after_h) * k
    if lo < 0 or hi > len(load):
        raise ValueError(
            f"the windows need intervals {lo}..{hi - 1}; pass the neighbouring day with the event day"
        )
    window = np.r_[np.arange(lo, lo + before_h * k), np.arange(hi - after_h * k, hi)]
    values = load[window]
    base = np.full(event_end - event_start, np.nan)
    notes: tuple[str, ...] = ()
    if np.isnan(values).any():
        notes = (f"{int(np.isnan(values).sum())} of {len(values)} window intervals missing; no baseline",)
    else:
        base[:] = values.mean()
    return BaselineResult(
        rule=NAME,
        unadjusted=base,
        adjusted=base.copy(),
        selected_days=(),
        window_days=(),
        adjustment=0.0,
        adjustment_capped=False,
        notes=notes,
    )
