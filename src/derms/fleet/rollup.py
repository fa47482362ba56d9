"""Vectorised roll-ups of the fleet state per feeder and for the whole fleet."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from derms.fleet.state import FleetState


@dataclass(frozen=True, slots=True)
class FeederRollup:
    """Per-feeder sums; position ``k`` is ``feeder_ids[k]``, and the last position collects
    DERs not mapped to any feeder (id ``None``)."""

    feeder_ids: list[str | None]
    ders: NDArray[np.int64]
    online: NDArray[np.int64]
    offline: NDArray[np.int64]
    p_w: NDArray[np.float64]
    q_var: NDArray[np.float64]
    flex_up_w: NDArray[np.float64]
    flex_down_w: NDArray[np.float64]

    def fleet(self) -> dict[str, float]:
        """Totals over every feeder."""
        return {
            "ders": int(self.ders.sum()),
            "online": int(self.online.sum()),
            "offline": int(self.offline.sum()),
            "p_w": float(self.p_w.sum()),
            "q_var": float(self.q_var.sum()),
            "flex_up_w": float(self.flex_up_w.sum()),
            "flex_down_w": float(self.flex_down_w.sum()),
        }

    def records(self) -> list[dict[str, Any]]:
        return [
            {
                "feeder_id": fid,
                "ders": int(self.ders[k]),
                "online": int(self.online[k]),
                "offline": int(self.offline[k]),
                "p_w": float(self.p_w[k]),
                "q_var": float(self.q_var[k]),
                "flex_up_w": float(self.flex_up_w[k]),
                "flex_down_w": float(self.flex_down_w[k]),
            }
            for k, fid in enumerate(self.feeder_ids)
            if self.ders[k] > 0 or fid is not None
        ]


def rollup(state: FleetState, mask: NDArray[np.bool_] | None = None) -> FeederRollup:
    """Roll the fleet up by feeder with ``np.bincount`` (O(N), no Python loop over DERs).

    ``mask`` restricts the roll-up (e.g. to one tenant's DERs).
    """
    members = state.registered & state.enabled
    if mask is not None:
        members &= mask
    n_feeders = len(state.feeder_ids)
    # Non-members go to a spill slot past the end, so no array is copied by fancy indexing.
    slot = np.where(state.feeder >= 0, state.feeder, n_feeders)
    slot[~members] = n_feeders + 1
    size = n_feeders + 2
    live = (state.online & members).astype(np.float64)
    up, down = state.flexibility()

    def total(values: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.bincount(slot, weights=values, minlength=size)[:-1]

    ders = np.bincount(slot, minlength=size)[:-1]
    n_online = total(live).astype(np.int64)
    return FeederRollup(
        feeder_ids=[*state.feeder_ids, None],
        ders=ders,
        online=n_online,
        offline=ders - n_online,
        p_w=total(np.nan_to_num(state.p_w) * live),
        q_var=total(np.nan_to_num(state.q_var) * live),
        flex_up_w=total(up),
        flex_down_w=total(down),
    )
