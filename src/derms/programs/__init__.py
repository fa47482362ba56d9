"""Demand-response programs: baselines (ISO like-day methods, CalTRACK regression) and M&V.

The CalTRACK regression baseline lives in :mod:`derms.programs.caltrack` and is not imported
here: ``opendsm`` JIT-compiles on first use and sets thread counts process-wide.
"""

from derms.programs.baselines import (
    CAISO_10_IN_10,
    NYISO_CBL,
    PJM_HIGH_4_OF_5,
    PRESETS,
    Adjustment,
    BaselineResult,
    DayRule,
    LikeDayRule,
    like_day_baseline,
    with_overrides,
)
from derms.programs.mv import MvRow, verify
from derms.programs.same_day import same_day_baseline

__all__ = [
    "CAISO_10_IN_10",
    "NYISO_CBL",
    "PJM_HIGH_4_OF_5",
    "PRESETS",
    "Adjustment",
    "BaselineResult",
    "DayRule",
    "LikeDayRule",
    "MvRow",
    "like_day_baseline",
    "same_day_baseline",
    "verify",
    "with_overrides",
]
