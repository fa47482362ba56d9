"""Deliverable per-device schedules from a summed (outer) horizon aggregate.

Summed energy bounds let heterogeneous members share energy they do not have, so a group's
planned trajectory may not split into feasible device schedules. Each device's *feasible tube*
(its energy band shrunk backwards in time by what its power box can still correct: the
backward reachable set of a scalar linear system, e.g. Bertsekas, "Infinite-time reachability
of state-space regions by using feedback control", IEEE Trans. Automatic Control 17(5), 1972)
keeps every later step feasible whatever is done now, as long as the device stays inside it.
Walking forward in time, each group's planned net deviation is split over its members within
the room their tubes leave: in merit order (cheapest, then most reliable) in the first step,
the one that is sent, and pro rata to room afterwards so that members' states stay balanced.
What the members cannot deliver is dropped, and the plan's cost is evaluated device by device.
"""

from __future__ import annotations

import numpy as np

from derms.orchestration.flexibility import Flexibility


def tube(f: Flexibility) -> tuple[np.ndarray, np.ndarray]:
    """Energy bounds after each step from which every later bound stays reachable ``(n, steps)``."""
    dt_h = f.dt_s / 3600.0
    up, down = np.maximum(f.up, 0.0), np.maximum(f.down, 0.0)
    lo, hi = f.e_lo.copy(), f.e_hi.copy()
    for t in range(f.steps - 2, -1, -1):
        with np.errstate(invalid="ignore"):
            need_lo = (lo[:, t + 1] - f.w[:, t + 1] - dt_h * f.k_down * down[:, t + 1]) / f.alpha
            need_hi = (hi[:, t + 1] - f.w[:, t + 1] + dt_h * f.k_up * up[:, t + 1]) / f.alpha
        lo[:, t] = np.fmax(lo[:, t], need_lo)
        hi[:, t] = np.fmin(hi[:, t], need_hi)
    # A device that cannot stay in its band keeps as close to it as it can.
    hi = np.maximum(hi, lo)
    return lo, hi


def _split(group: np.ndarray, order: np.ndarray, room: np.ndarray, total: np.ndarray) -> np.ndarray:
    """Fill ``total`` per group from its members' ``room`` in ``order`` (merit order)."""
    out = np.zeros_like(room)
    gs = group[order]
    c = room[order]
    cum_excl = np.cumsum(c) - c
    starts = np.flatnonzero(np.r_[True, gs[1:] != gs[:-1]])
    base = np.repeat(cum_excl[starts], np.diff(np.r_[starts, len(gs)]))
    out[order] = np.clip(total[gs] - (cum_excl - base), 0.0, c)
    return out


def _pro_rata(group: np.ndarray, room: np.ndarray, total: np.ndarray, g: int) -> np.ndarray:
    cap = np.bincount(group, weights=room, minlength=g)
    share = np.where(cap > 0, np.clip(total / np.where(cap > 0, cap, 1.0), 0.0, 1.0), 0.0)
    return room * share[group]


def schedules(
    f: Flexibility,
    group: np.ndarray,
    net: np.ndarray,
    rows: np.ndarray,
    order: tuple[np.ndarray, np.ndarray],
) -> np.ndarray:
    """Deviation from the baseline ``(len(rows), steps)`` for the energy devices ``rows`` whose
    groups (``group[rows]``) planned the net deviation ``net`` ``(g, steps)``; ``order`` ranks
    positions into ``rows`` by group, then merit order up and down."""
    dt_h = f.dt_s / 3600.0
    lo, hi = tube(f)
    sub = group[rows]
    codes, gi = np.unique(sub, return_inverse=True)
    g = len(codes)
    alpha, k_up, k_down = f.alpha[rows], f.k_up[rows], f.k_down[rows]
    up, down = np.maximum(f.up[rows], 0.0), np.maximum(f.down[rows], 0.0)
    e = f.e0[rows].copy()
    out = np.zeros((len(rows), f.steps))
    for t in range(f.steps):
        free = alpha * e + f.w[rows, t]
        d_max = np.minimum(up[:, t], (free - lo[rows, t]) / (dt_h * k_up))
        d_max = np.where(free < lo[rows, t], (free - lo[rows, t]) / (dt_h * k_down), d_max)
        d_min = -np.minimum(down[:, t], (hi[rows, t] - free) / (dt_h * k_down))
        d_min = np.where(free > hi[rows, t], (free - hi[rows, t]) / (dt_h * k_up), d_min)
        d_max = np.clip(d_max, -down[:, t], up[:, t])
        d_min = np.clip(d_min, -down[:, t], d_max)
        forced = np.clip(0.0, d_min, d_max)
        rest = net[codes, t] - np.bincount(gi, weights=forced, minlength=g)
        room_up, room_down = d_max - forced, forced - d_min
        if t == 0:
            more = _split(gi, order[0], room_up, np.maximum(rest, 0.0))
            less = _split(gi, order[1], room_down, np.maximum(-rest, 0.0))
        else:
            more = _pro_rata(gi, room_up, np.maximum(rest, 0.0), g)
            less = _pro_rata(gi, room_down, np.maximum(-rest, 0.0), g)
        d = forced + more - less
        out[:, t] = d
        e = free - dt_h * (k_up * np.maximum(d, 0.0) - k_down * np.maximum(-d, 0.0))
    return out
