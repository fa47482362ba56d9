"""Customer preference helpers: opt-out windows as per-step masks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

import numpy as np

from derms.core.clock import utc


def opt_out_mask(
    der_ids: Sequence[str],
    windows: Mapping[str, Sequence[tuple[datetime, datetime]]],
    *,
    start: datetime,
    dt_s: float,
    steps: int,
) -> np.ndarray:
    """``(n, steps)`` True where a step overlaps one of the DER's opt-out windows ``[from, to)``."""
    start = utc(start)
    t0 = np.array([(start + timedelta(seconds=dt_s * k)).timestamp() for k in range(steps)])
    t1 = t0 + dt_s
    index = {d: i for i, d in enumerate(der_ids)}
    mask = np.zeros((len(der_ids), steps), bool)
    for der_id, spans in windows.items():
        if der_id not in index:
            raise ValueError(f"opt-out window for unknown DER {der_id!r}")
        for a, b in spans:
            lo, hi = utc(a).timestamp(), utc(b).timestamp()
            if hi <= lo:
                raise ValueError(f"opt-out window of {der_id!r} ends before it starts")
            mask[index[der_id]] |= (t0 < hi) & (t1 > lo)
    return mask
