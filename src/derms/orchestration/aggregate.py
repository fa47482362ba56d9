"""Groups of DERs that the dispatch LP treats as one column pair per step.

* **Summed groups** (:func:`summed`): members' power boxes add up (Minkowski sum of boxes).
  Exact for a single interval when members share location, costs and memberships (the total
  is then split in merit order). Over a horizon, summing energy bounds as well (Hao, Sanandaji,
  Poolla and Vincent, IEEE Trans. Power Systems 30(1), 2015) is an *outer* approximation
  whose plans may promise energy that heterogeneous members cannot deliver, so it is not used.
* **Fixed-share groups** (:func:`fixed_shares`), the horizon default: member ``i`` follows a
  fixed share ``s_i`` of its group's deviation, ``u_i = s_i U`` and ``v_i = s_i V``
  (``sum s_i = 1``). Members share ``alpha``, ``k_up`` and ``k_down``, so member ``i``'s energy is
  ``e_i(t) = E_i(t) + s_i G(t)`` with ``E_i`` its baseline trajectory and one virtual state
  ``G(t+1) = alpha G(t) - dt (k_up U(t) - k_down V(t))``, ``G(0) = 0``. Every member's limits
  become bounds on ``U``, ``V`` and ``G``::

      U <= min_i up_i / s_i,   V <= min_i down_i / s_i,
      max_i (e_lo_i - E_i) / s_i <= G <= min_i (e_hi_i - E_i) / s_i

  The group LP is the per-DER LP restricted to this policy: an *inner* approximation (cf. the
  homothetic inner approximations of Zhao, Hao and Zhang, "A geometric approach to aggregate
  flexibility modeling of thermostatically controlled loads", IEEE Trans. Power Systems 32(6),
  2017), so every plan is deliverable device by device and its cost (``sum_i s_i c_i`` per
  unit) is what the members cost. Singleton groups make it the per-DER model itself.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.cluster.vq import kmeans2

from derms.orchestration.problem import Problem

_TOL = 1e-6


@dataclass(frozen=True, slots=True, eq=False)
class EnergyGroups:
    """Energy state of the groups ``rows`` (arrays per such group, ``(m,)`` or ``(m, steps)``)."""

    rows: np.ndarray
    e0: np.ndarray
    e_lo: np.ndarray
    e_hi: np.ndarray
    w: np.ndarray
    alpha: np.ndarray
    k_up: np.ndarray
    k_down: np.ndarray
    budget: np.ndarray
    """Discharge-side throughput limit over the horizon [Wh] (inf: none)."""


@dataclass(frozen=True, slots=True, eq=False)
class Groups:
    """DER-to-group map and each group's boxes ``(g, steps)``, costs and energy state."""

    group: np.ndarray
    first: np.ndarray
    """A representative member of each group."""
    share: np.ndarray | None
    """Fixed share of its group's deviation per DER, or None (split in merit order)."""
    up: np.ndarray
    down: np.ndarray
    cost_up: np.ndarray
    cost_down: np.ndarray
    energy: EnergyGroups | None

    @property
    def g(self) -> int:
        return len(self.first)


def factorize(*columns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Group index per row from several key columns, and the first row of each group."""
    code = np.zeros(len(columns[0]), np.int64)
    span = 1
    for col in columns:
        if col.dtype.kind in "iub" and (len(col) == 0 or col.min() >= 0):
            inv, radix = col.astype(np.int64), int(col.max()) + 1 if len(col) else 1
        else:
            inv, uniques = pd.factorize(col)  # hash based: O(n), no sort
            radix = max(len(uniques), 1)
        if span * radix >= 2**62:
            code, uniques = pd.factorize(code)
            span = max(len(uniques), 1)
        code = code * radix + inv
        span *= radix
    group = pd.factorize(code)[0].astype(np.int64)
    # factorize numbers groups in order of first appearance: a group starts where the running max grows.
    running = np.maximum.accumulate(group)
    first = np.flatnonzero(np.r_[True, running[1:] > running[:-1]]) if len(group) else group
    return group, first


def group_sum(group: np.ndarray, values: np.ndarray, g: int) -> np.ndarray:
    """Per-group sums of ``(n,)`` or ``(n, steps)`` values."""
    if values.ndim == 1:
        return np.bincount(group, weights=values, minlength=g)
    return np.stack(
        [np.bincount(group, weights=values[:, t], minlength=g) for t in range(values.shape[1])], 1
    )


def _group_reduce(ufunc: np.ufunc, group: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``ufunc.reduce`` over each group's rows (groups are ``0..g-1``, none empty)."""
    order = np.argsort(group, kind="stable")
    gs = group[order]
    starts = np.flatnonzero(np.r_[True, gs[1:] != gs[:-1]])
    return ufunc.reduceat(values[order], starts, axis=0)


def summed(problem: Problem, group: np.ndarray, first: np.ndarray) -> Groups:
    """Single-interval groups of interchangeable DERs: boxes add up, costs are the members'."""
    f, g = problem.flex, len(first)
    up = group_sum(group, np.maximum(f.up, 0.0), g)
    down = group_sum(group, np.maximum(f.down, 0.0), g)
    return Groups(group, first, None, up, down, problem.cost_up[first], problem.cost_down[first], None)


def baseline_energy(problem: Problem) -> np.ndarray:
    """Each device's energy after every step at its baseline, ``(n, steps)`` [Wh]."""
    f = problem.flex
    out = np.empty((f.steps, f.n))  # step-major: each step writes one contiguous row
    w = np.ascontiguousarray(f.w.T)
    e = f.e0
    for t in range(f.steps):
        e = np.multiply(f.alpha, e, out=out[t])
        e += w[t]
    return out.T


_CHECKPOINTS = 7
"""Steps (evenly spread over the horizon) at which :func:`state_features` samples trajectories."""


def state_features(problem: Problem, e_base: np.ndarray) -> np.ndarray:
    """What a member of a fixed-share group loses to the others, per DER ``(n, 3 k)``.

    A group's virtual state must respect every member's band, ``(e_lo_i - E_i) / s_i <= G <=
    (e_hi_i - E_i) / s_i`` with ``s_i`` proportional to the member's power range, so the group
    keeps only the *smallest* room below and above its members' baseline trajectories, counted
    in hours at their power range, and the smallest up and down shares of their range. These are
    the features, sampled at ``_CHECKPOINTS`` steps: members close in them lose little by
    following one share (for batteries the room is the state of charge; for a thermostat it
    follows its baseline drift, for an EV its need by departure). ``e_base`` is
    :func:`baseline_energy`.
    """
    f = problem.flex
    cps = np.unique(np.linspace(0, f.steps - 1, _CHECKPOINTS).astype(np.int64))
    up, down = np.maximum(f.up[:, cps], 0.0), np.maximum(f.down[:, cps], 0.0)
    size = (np.maximum(f.up, 0.0) + np.maximum(f.down, 0.0)).max(axis=1)
    size = np.where(size > _TOL, size, 1.0)[:, None]
    e_base = e_base[:, cps]
    lo, hi = f.e_lo[:, cps], f.e_hi[:, cps]
    room_lo = np.where(f.has_energy[:, None] & np.isfinite(lo), e_base - lo, 0.0) / size
    room_hi = np.where(f.has_energy[:, None] & np.isfinite(hi), hi - e_base, 0.0) / size
    return np.hstack([room_lo, room_hi, up / size, down / size])


def cluster_states(cell: np.ndarray, features: np.ndarray, budget: int) -> np.ndarray:
    """Split each key cell into state clusters: k-means (k-means++ seeding, Arthur and
    Vassilvitskii, SODA 2007; fixed seed, so plans are reproducible) on ``features``, with
    ``budget`` clusters shared out in proportion to each cell's size times the spread of its
    features (a cell of alike devices stays one group). Returns a cluster label per row."""
    order = np.argsort(cell, kind="stable")
    cells = np.split(order, np.flatnonzero(np.diff(cell[order])) + 1)
    weight = np.array([len(idx) * np.sqrt(features[idx].var(axis=0).sum()) for idx in cells])
    total = weight.sum()
    label = np.zeros(len(cell), np.int64)
    if total <= 0:
        return label
    for idx, w in zip(cells, weight, strict=True):
        k = round(float(budget * w / total))
        if k < 2:
            continue
        x = features[idx]
        k = min(k, len(np.unique(x, axis=0)))
        if k >= len(idx):
            label[idx] = np.unique(x, axis=0, return_inverse=True)[1].ravel()
        elif k >= 2:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # an empty cluster only means fewer groups
                label[idx] = kmeans2(x, k, iter=20, minit="++", rng=0)[1]
    return label


def share_keys(problem: Problem, membership: np.ndarray, state_groups: int) -> list[np.ndarray]:
    """Keys of fixed-share groups: memberships, costs, dynamics, the step from which a device is
    held (EV departure, opt-out), whether its baseline leaves its energy band, and a state
    cluster (:func:`cluster_states` on :func:`state_features`, about ``state_groups`` clusters in
    all). Location is no key: the share-weighted sensitivities keep grid rows exact for groups
    spanning feeders, and state buys far more than location (1k DERs x 96 steps: 6.7 % above the
    per-DER optimum with 16 bins of state and no location, 12.3 % with feeders and 4 bins).
    Clusters beat fixed bins of state of charge and upward share (10k DERs x 96 steps, 16 x 16
    bins: 1,158 groups, 25 % above the per-DER optimum; 800 clusters: 975 groups, 13 %, and a
    faster LP)."""
    f = problem.flex
    up, down = np.maximum(f.up, 0.0), np.maximum(f.down, 0.0)
    stuck = up + down <= _TOL
    held_from = np.where(stuck.any(axis=1), np.argmax(stuck, axis=1), f.steps)
    e_base = baseline_energy(problem)
    over = (e_base > f.e_hi + _TOL).any(axis=1)
    under = (e_base < f.e_lo - _TOL).any(axis=1)
    keys = [
        membership,
        np.round(problem.cost_up, 9),
        np.round(problem.cost_down, 9),
        f.has_energy,
        np.round(f.alpha, 9),
        np.round(f.k_up, 9),
        np.round(f.k_down, 9),
        np.isfinite(f.throughput_wh),
        held_from,
        over * 2 + under,
    ]
    cell, _ = factorize(*keys)
    return [cell, cluster_states(cell, state_features(problem, e_base), state_groups)]


def fixed_shares(problem: Problem, group: np.ndarray, first: np.ndarray) -> Groups:
    """Fixed-share groups (module docstring). A group whose members' energy bands leave no
    common room for ``G`` in some step is split into single devices (always feasible)."""
    e_base = baseline_energy(problem)
    out = _shares(problem, group, first, e_base)
    if out is not None:
        return out
    g = len(first)
    bad = _empty_bands(problem, group, g, e_base)
    group, first = factorize(np.where(bad[group], g + np.arange(problem.n), group))
    out = _shares(problem, group, first, e_base)
    if out is None:
        raise RuntimeError("a device's own energy band is empty")
    return out


def reachable_bands(
    lo: np.ndarray, hi: np.ndarray, alpha: np.ndarray, out_w: np.ndarray, in_w: np.ndarray, dt_h: float
) -> tuple[np.ndarray, np.ndarray]:
    """Energy bands (deviation from the baseline energy, groups x steps) clipped to what each
    group can reach from deviation 0 under ``G_t = alpha G_{t-1} + dt (in_t - out_t)`` (``out_w``: what the group can give up
    per hour, its upward deviation; ``in_w``: what it can take in).

    A band no trajectory can enter (a device already outside its band, an EV whose need by
    departure exceeds what its charger can add) becomes the reachable point nearest to it, so
    the plan asks that device for what it can do instead of making the whole LP infeasible.
    Every step's band is then reachable from the previous one, so a trajectory through all of
    them exists.
    """
    out_lo, out_hi = np.empty_like(lo), np.empty_like(hi)
    r_lo = np.zeros(len(lo))
    r_hi = np.zeros(len(lo))
    for t in range(lo.shape[1]):
        r_lo = alpha * r_lo - dt_h * out_w[:, t]
        r_hi = alpha * r_hi + dt_h * in_w[:, t]
        out_lo[:, t] = np.clip(lo[:, t], r_lo, r_hi)
        out_hi[:, t] = np.maximum(np.clip(hi[:, t], r_lo, r_hi), out_lo[:, t])
        r_lo, r_hi = out_lo[:, t], out_hi[:, t]
    return out_lo, out_hi


def _share(problem: Problem, group: np.ndarray, g: int) -> np.ndarray:
    f = problem.flex
    size = (np.maximum(f.up, 0.0) + np.maximum(f.down, 0.0)).max(axis=1)
    total = np.bincount(group, weights=size, minlength=g)
    return np.where(total[group] > 0, size / np.where(total[group] > 0, total[group], 1.0), 0.0)


def _per_share(values: np.ndarray, s: np.ndarray) -> np.ndarray:
    """``values / s`` per member, inf where the member has no share (it never moves)."""
    s2 = s[:, None] if values.ndim == 2 else s
    return np.where(s2 > 0, values / np.where(s2 > 0, s2, 1.0), np.inf)


def _bands(
    problem: Problem, group: np.ndarray, s: np.ndarray, e_base: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    f = problem.flex
    g_lo = -_group_reduce(np.minimum, group, _per_share(e_base - f.e_lo, s))
    g_hi = _group_reduce(np.minimum, group, _per_share(f.e_hi - e_base, s))
    return g_lo, g_hi


def _empty_bands(problem: Problem, group: np.ndarray, g: int, e_base: np.ndarray) -> np.ndarray:
    s = _share(problem, group, g)
    g_lo, g_hi = _bands(problem, group, s, e_base)
    return (g_lo > g_hi + _TOL).any(axis=1)


def _shares(problem: Problem, group: np.ndarray, first: np.ndarray, e_base: np.ndarray) -> Groups | None:
    f, g = problem.flex, len(first)
    s = _share(problem, group, g)
    up = _group_reduce(np.minimum, group, _per_share(np.maximum(f.up, 0.0), s))
    down = _group_reduce(np.minimum, group, _per_share(np.maximum(f.down, 0.0), s))
    moving = np.bincount(group, weights=s, minlength=g) > 0
    up = np.where(moving[:, None], up, 0.0)
    down = np.where(moving[:, None], down, 0.0)
    cu = np.bincount(group, weights=s * problem.cost_up, minlength=g)
    cd = np.bincount(group, weights=s * problem.cost_down, minlength=g)
    energy = None
    eg = np.flatnonzero(f.has_energy[first] & moving)
    if len(eg):
        g_lo, g_hi = _bands(problem, group, s, e_base)
        if np.any(g_lo[eg] > g_hi[eg] + _TOL):
            return None
        budget = _group_reduce(np.minimum, group, _per_share(f.throughput_wh, s))
        zeros = np.zeros((len(eg), f.steps))
        alpha, k_up, k_down = f.alpha[first][eg], f.k_up[first][eg], f.k_down[first][eg]
        e_lo, e_hi = reachable_bands(
            g_lo[eg],
            np.maximum(g_hi[eg], g_lo[eg]),
            alpha,
            k_up[:, None] * up[eg],
            k_down[:, None] * down[eg],
            f.dt_s / 3600.0,
        )
        energy = EnergyGroups(
            rows=eg,
            e0=np.zeros(len(eg)),
            e_lo=e_lo,
            e_hi=e_hi,
            w=zeros,
            alpha=f.alpha[first][eg],
            k_up=f.k_up[first][eg],
            k_down=f.k_down[first][eg],
            budget=budget[eg],
        )
    return Groups(group, first, s, up, down, cu, cd, energy)
