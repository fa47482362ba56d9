"""The dispatch LP, built directly as sparse arrays and solved with HiGHS.

Structure exploited (see docs/orchestration.md):

* **Exact aggregation (single interval).** DERs that share a location (bus, or feeder when
  ``group_by="feeder"``), costs and objective memberships are interchangeable: their power boxes
  add up exactly (Minkowski sum of boxes), so the LP has one up and one down column per group,
  not per DER, and the group total is split in merit order (most reliable first).
* **Horizon aggregation** (:mod:`derms.orchestration.aggregate`). By default fixed-share groups:
  every member follows a fixed share of its group's deviation, so the group is one virtual
  battery whose bounds hold for every member; plans are deliverable device by device and the
  LP's cost is theirs (an inner approximation; ``aggregate="exact"`` gives the per-DER model).
  Summing members' energy bounds instead (an outer approximation) gave plans up to 38 % more
  valuable than the devices can deliver, so it is not offered.
* **Block structure.** Grid rows touch the buses of one feeder; with ``group_by="feeder"`` a
  group spanning several buses uses, per row and side, the extreme sensitivity among its buses,
  which is conservative for every split of the group's power.
* **Constraint screening.** Grid rows that cannot reach a limit within the flexibility box are
  dropped before solving.

Targets are soft (a penalised shortfall), so an unreachable target yields the best partial
plan and its shortfall instead of an infeasible model.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import highspy
import numpy as np
import scipy.sparse as sp

from derms.orchestration.aggregate import (
    EnergyGroups,
    Groups,
    factorize,
    fixed_shares,
    group_sum,
    share_keys,
    summed,
)
from derms.orchestration.flexibility import Binding
from derms.orchestration.greedy import merit_order
from derms.orchestration.grid import screen, split_signs
from derms.orchestration.highs import new_highs
from derms.orchestration.problem import Problem, Sense
from derms.orchestration.solution import Explanation, Solution, shortfalls

_TOL_W = 1e-3


def _membership_bits(problem: Problem) -> np.ndarray:
    bits = np.zeros(problem.n, np.int64)
    masks = [t.members for t in problem.targets]
    if problem.prices is not None:
        masks.append(problem.price_members if problem.price_members is not None else np.ones(problem.n, bool))
    for i, m in enumerate(masks):
        bits |= m.astype(np.int64) << i
    return bits


def _exact_keys(problem: Problem, loc: np.ndarray) -> list[np.ndarray]:
    """Keys of interchangeable DERs in one interval: location (bus or feeder, ``-1`` where no
    kept grid row sees the DER), objective memberships and costs."""
    return [
        loc + 1,
        _membership_bits(problem),
        np.round(problem.cost_up, 9),
        np.round(problem.cost_down, 9),
    ]


class _Builder:
    """Collects columns and COO triplets of the LP."""

    def __init__(self) -> None:
        self.cost: list[np.ndarray] = []
        self.lower: list[np.ndarray] = []
        self.upper: list[np.ndarray] = []
        self.n_col = 0
        self.rows_i: list[np.ndarray] = []
        self.cols_j: list[np.ndarray] = []
        self.vals: list[np.ndarray] = []
        self.row_lo: list[np.ndarray] = []
        self.row_hi: list[np.ndarray] = []
        self.row_label: list[str] = []
        self.n_row = 0
        self.state_cols: list[np.ndarray] = []
        self.state_rows: list[np.ndarray] = []
        self.block_cols: list[np.ndarray] = []
        self.block_col_keys: list[np.ndarray] = []
        self.block_rows: list[np.ndarray] = []
        self.block_row_keys: list[np.ndarray] = []

    def cols(self, cost: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
        k = len(cost)
        idx = np.arange(self.n_col, self.n_col + k)
        self.cost.append(np.asarray(cost, float))
        self.lower.append(np.asarray(lower, float))
        self.upper.append(np.asarray(upper, float))
        self.n_col += k
        return idx

    def rows(self, lo: np.ndarray, hi: np.ndarray, labels: list[str]) -> np.ndarray:
        k = len(lo)
        idx = np.arange(self.n_row, self.n_row + k)
        self.row_lo.append(np.asarray(lo, float))
        self.row_hi.append(np.asarray(hi, float))
        self.row_label.extend(labels)
        self.n_row += k
        return idx

    def entries(self, i: np.ndarray, j: np.ndarray, v: np.ndarray) -> None:
        self.rows_i.append(np.asarray(i, np.int64))
        self.cols_j.append(np.asarray(j, np.int64))
        self.vals.append(np.asarray(v, float))

    def block(self, cols: np.ndarray, col_keys: np.ndarray, rows: np.ndarray, row_keys: np.ndarray) -> None:
        """Mark columns and rows as belonging to blocks ``col_keys``/``row_keys`` (``>= 0``)."""
        self.block_cols.append(np.asarray(cols, np.int64))
        self.block_col_keys.append(np.asarray(col_keys, np.int64))
        self.block_rows.append(np.asarray(rows, np.int64))
        self.block_row_keys.append(np.asarray(row_keys, np.int64))

    def order(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Column and row order passed to the solver: unmarked columns and rows first, then
        block by block, each block's columns in the order they were added (for a horizon:
        step by step). None without blocks."""
        if not self.block_cols:
            return None
        col_key = np.full(self.n_col, -1, np.int64)
        col_key[np.concatenate(self.block_cols)] = np.concatenate(self.block_col_keys)
        row_key = np.full(self.n_row, -1, np.int64)
        row_key[np.concatenate(self.block_rows)] = np.concatenate(self.block_row_keys)
        col_rank = np.full(self.n_col, self.n_col, np.int64)
        marked = np.concatenate(self.block_cols)
        col_rank[marked] = np.arange(len(marked))
        col_rank[col_key < 0] = np.arange(int((col_key < 0).sum()))
        return np.lexsort((col_rank, col_key)), np.argsort(row_key, kind="stable")

    def matrix(self) -> sp.csc_matrix:
        def cat(xs, dt):
            return np.concatenate(xs) if xs else np.zeros(0, dt)

        return sp.csc_matrix(
            (cat(self.vals, float), (cat(self.rows_i, np.int64), cat(self.cols_j, np.int64))),
            shape=(self.n_row, self.n_col),
        )


_LOCAL = threading.local()

EXACT_HORIZON_MAX = 20_000
"""Device-steps up to which ``aggregate="auto"`` solves a horizon per DER (exact): e.g. 800 DERs
over 8 steps, or 200 DERs over 96."""


def _highs() -> highspy.Highs:
    """One HiGHS instance per thread, reused: creating one costs tens of milliseconds."""
    h = getattr(_LOCAL, "highs", None)
    if h is None:
        h = new_highs()
        _LOCAL.highs = h
    return h


def _state_basis(
    b: _Builder, cost: np.ndarray, upper: np.ndarray, keep: np.ndarray, cols: np.ndarray, rows: np.ndarray
) -> highspy.HighsBasis:
    """Starting basis for the horizon LP: each energy state column basic in its dynamics row
    (the state is then the trajectory of the deviations; the basis block is bidiagonal), the
    other rows' slacks basic, every other column at the bound its own cost prefers.

    HiGHS's default slack basis makes the dual simplex pivot every state column in one by one
    (10k DERs x 96 steps: 117k iterations, 46k from this basis, same optimum).

    ``keep`` marks the columns passed to HiGHS (a state column left out, its band pinned at
    zero, leaves its row's slack basic instead); ``cols`` and ``rows`` are the builder's columns
    and rows in the order passed."""
    st = highspy.HighsBasisStatus
    col = np.where((cost < 0) & np.isfinite(upper), 2, 1)
    state_cols, state_rows = np.concatenate(b.state_cols), np.concatenate(b.state_rows)
    col[state_cols] = 0
    row = np.zeros(b.n_row, np.int64)
    row[state_rows[keep[state_cols]]] = 1
    codes = np.array([st.kBasic, st.kLower, st.kUpper], dtype=object)
    basis = highspy.HighsBasis()
    basis.col_status = codes[col[cols]].tolist()
    basis.row_status = codes[row[rows]].tolist()
    basis.valid = True
    # Not alien: one basic variable per row and nonsingular (triangular), so HiGHS need not
    # factorize it on receipt to check it (10k x 96: setBasis 0.045 s -> 0.0002 s, same pivots).
    basis.alien = False
    return basis


def _solve_highs(
    b: _Builder, a: sp.csc_matrix, solver: str, time_limit: float
) -> tuple[str, np.ndarray, np.ndarray, float]:
    cost, lower, upper = np.concatenate(b.cost), np.concatenate(b.lower), np.concatenate(b.upper)
    row_lo = np.concatenate(b.row_lo) if b.row_lo else np.zeros(0)
    row_hi = np.concatenate(b.row_hi) if b.row_hi else np.zeros(0)
    # Columns fixed at zero (a group with no room in one direction in a step) carry nothing:
    # left out, the 10k x 96 horizon LP has 23 % fewer columns.
    keep = (lower != 0) | (upper != 0)
    order = b.order()
    rows = None
    if order is not None:
        # Block by block (a horizon: each group's columns and dynamics rows together, step by
        # step) instead of step by step: the same pivots, but the dual simplex touches memory
        # group by group (10k DERs x 96 steps: 1.33 s instead of 1.64 s, 34k iterations).
        cols, rows = order
        cols = cols[keep[cols]]
        a = a[:, cols]
        rank = np.empty(b.n_row, np.int64)
        rank[rows] = np.arange(b.n_row)
        a = sp.csc_matrix((a.data, rank[a.indices], a.indptr), shape=a.shape)
        a.sort_indices()
        row_lo, row_hi = row_lo[rows], row_hi[rows]
    else:
        cols = np.flatnonzero(keep)
        if len(cols) < b.n_col:
            a = a[:, cols]
    h = _highs()
    # The array form of passModel hands HiGHS the arrays' buffers (10k x 96: 0.02 s instead of
    # 0.13 s through a HighsLp, whose fields are converted element by element).
    passed = h.passModel(
        len(cols),
        b.n_row,
        a.nnz,
        int(highspy.MatrixFormat.kColwise),
        int(highspy.ObjSense.kMinimize),
        0.0,
        np.ascontiguousarray(cost[cols]),
        np.ascontiguousarray(lower[cols]),
        np.ascontiguousarray(upper[cols]),
        np.ascontiguousarray(row_lo, float),
        np.ascontiguousarray(row_hi, float),
        a.indptr.astype(np.int32),
        a.indices.astype(np.int32),
        np.ascontiguousarray(a.data, float),
        np.zeros(len(cols), np.int32),  # every column continuous
    )
    if passed == highspy.HighsStatus.kError:
        return "model rejected", np.zeros(0), np.zeros(0), np.nan
    h.setOptionValue("solver", solver)
    # Simplex runs without presolve: a single-interval model has few rows and boxed columns
    # (presolve costs more than it saves), a horizon starts from the state basis (presolve would
    # discard it).
    h.setOptionValue("presolve", "off" if solver == "simplex" else "on")
    # HiGHS's clock runs across the runs of one instance: the limit is relative to its run time.
    h.setOptionValue("time_limit", h.getRunTime() + float(time_limit))
    h.setOptionValue("threads", 1)
    if b.state_cols and solver == "simplex":
        h.setBasis(_state_basis(b, cost, upper, keep, cols, rows if rows is not None else np.arange(b.n_row)))
    h.run()
    status = h.modelStatusToString(h.getModelStatus())
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return status, np.zeros(0), np.zeros(0), np.nan
    sol = h.getSolution()
    x = np.zeros(b.n_col)
    x[cols] = sol.col_value
    duals = np.asarray(sol.row_dual)
    if rows is not None:
        duals = np.empty_like(duals)
        duals[rows] = sol.row_dual
    return status, x, duals, h.getInfo().objective_function_value


def solve(
    problem: Problem,
    *,
    group_by: str = "auto",
    solver: str = "auto",
    aggregate: str = "auto",
    state_groups: int = 800,
    time_limit_s: float = 5.0,
) -> Solution:
    """Solve the dispatch problem; fall back to the greedy merit order on solver failure.

    ``group_by`` (single interval) is ``"bus"`` (exact grid model), ``"feeder"`` (fewer
    columns, conservative) or ``"auto"`` (bus); fixed-share horizon groups span locations with
    exact share-weighted grid rows. ``solver`` is a HiGHS solver name
    (``"simplex"``, ``"ipm"``) or ``"auto"``. ``aggregate`` (see :mod:`aggregate`):

    * ``"auto"``: ``"exact"`` for a single interval and for a horizon of at most
      :data:`EXACT_HORIZON_MAX` device-steps (where the per-DER LP is cheap), ``"shares"`` above;
    * ``"exact"``: interchangeable groups for a single interval (the LP is exact); over a horizon
      every device is its own group (the per-DER model: exact, slow);
    * ``"shares"``: fixed-share groups over a horizon (deliverable plans, an inner
      approximation; about ``state_groups`` clusters of alike state across the group keys).
    """
    if group_by not in ("auto", "bus", "feeder"):
        raise ValueError("group_by must be 'auto', 'bus' or 'feeder'")
    if aggregate not in ("auto", "exact", "shares"):
        raise ValueError("aggregate must be 'auto', 'exact' or 'shares'")
    if state_groups < 1:
        raise ValueError("state_groups must be >= 1")
    t0 = time.perf_counter()
    f, steps, n = problem.flex, problem.steps, problem.n
    dt_h = f.dt_s / 3600.0
    grid = problem.grid
    by_bus = group_by == "bus" or (group_by == "auto" and problem.steps == 1)
    per_device = steps > 1 and (
        aggregate == "exact" or (aggregate == "auto" and n * steps <= EXACT_HORIZON_MAX)
    )
    dev_up = np.maximum(f.up, 0.0)
    dev_down = np.maximum(f.down, 0.0)
    use_q = grid is not None and grid.sq is not None and by_bus and steps == 1
    # Screen grid rows first: DERs on buses that no kept row sees only meet the objective rows,
    # so they group across locations (exactly: their columns would be identical).
    keeps: list[np.ndarray] = []
    loc = np.full(n, -1, np.int64)
    if grid is not None and grid.rows:
        on_grid = problem.bus >= 0
        bus_up = group_sum(problem.bus[on_grid], dev_up[on_grid], grid.n_bus)
        bus_down = group_sum(problem.bus[on_grid], dev_down[on_grid], grid.n_bus)
        qb_up = np.bincount(problem.bus[on_grid], (f.q_hi - f.q_base)[on_grid], grid.n_bus) if use_q else None
        qb_dn = np.bincount(problem.bus[on_grid], (f.q_base - f.q_lo)[on_grid], grid.n_bus) if use_q else None
        p_parts = split_signs(grid.sp)
        q_parts = split_signs(grid.sq) if use_q and grid.sq is not None else None
        keeps = [
            screen(p_parts, bus_up[:, t], bus_down[:, t], grid.room_lo, grid.room_hi, q_parts, qb_up, qb_dn)
            for t in range(steps)
        ]
        union = np.unique(np.concatenate(keeps))
        seen = np.zeros(grid.n_bus, bool)
        seen[grid.sp[union].indices] = True
        if use_q and grid.sq is not None:
            seen[grid.sq[union].indices] = True
        on_seen = on_grid & seen[np.where(on_grid, problem.bus, 0)]
        if by_bus:
            loc = np.where(on_seen, problem.bus, -1).astype(np.int64)
        else:
            feeders_seen = np.unique(problem.feeder[on_seen])
            loc = np.where(np.isin(problem.feeder, feeders_seen), problem.feeder, -1).astype(np.int64)
    if per_device:
        groups = fixed_shares(problem, np.arange(n, dtype=np.int64), np.arange(n, dtype=np.int64))
    elif steps > 1:
        groups = fixed_shares(
            problem, *factorize(*share_keys(problem, _membership_bits(problem), state_groups))
        )
    else:
        groups = summed(problem, *factorize(*_exact_keys(problem, loc)))
    group, first, g = groups.group, groups.first, groups.g
    up, down = groups.up, groups.down
    q_up = group_sum(group, f.q_hi - f.q_base, g) if use_q else None
    q_down = group_sum(group, f.q_base - f.q_lo, g) if use_q else None

    b = _Builder()
    u_cols, v_cols = [], []
    price_mask = problem.price_members if problem.price_members is not None else np.ones(n, bool)
    price_g = price_mask[first]
    cu, cd = groups.cost_up, groups.cost_down
    for t in range(steps):
        price = 0.0 if problem.prices is None else problem.prices[t]
        u_cols.append(b.cols((cu - price * price_g) * dt_h / 1000.0, np.zeros(g), up[:, t]))
        v_cols.append(b.cols((cd + price * price_g) * dt_h / 1000.0, np.zeros(g), down[:, t]))
    # Reactive power as injection and absorption columns, each costing cost_q, so |q| is penalised.
    qi_cols = b.cols(np.full(g, problem.cost_q * dt_h / 1000.0), np.zeros(g), q_up) if use_q else None
    qa_cols = b.cols(np.full(g, problem.cost_q * dt_h / 1000.0), np.zeros(g), q_down) if use_q else None

    for tgt in problem.targets:
        members = np.flatnonzero(tgt.members[first])
        penalties = tgt.penalties()
        for t in np.flatnonzero(~np.isnan(tgt.value_w)):
            slack = b.cols(np.array([penalties[t] * dt_h / 1000.0]), np.zeros(1), np.array([np.inf]))
            rhs = (
                tgt.value_w[t]
                if tgt.sense is Sense.DELIVER
                else tgt.value_w[t] - dev_up[tgt.members, t].sum()
            )
            row = b.rows(np.array([rhs]), np.array([np.inf]), [f"objective:{tgt.objective_id}"])
            sign = 1.0 if tgt.sense is Sense.DELIVER else -1.0
            ones = np.ones(len(members))
            b.entries(np.full(len(members), row[0]), u_cols[t][members], sign * ones)
            b.entries(np.full(len(members), row[0]), v_cols[t][members], -sign * ones)
            b.entries(row, slack, np.ones(1))

    if grid is not None and grid.rows:
        _grid_rows(b, problem, groups, loc, keeps, by_bus, u_cols, v_cols, qi_cols, qa_cols)

    if groups.energy is not None:
        _energy_rows(b, groups.energy, u_cols, v_cols, dt_h)

    build_s = time.perf_counter() - t0
    size = b.n_col + sum(len(v) for v in b.vals)
    # Dual simplex wins on both shapes measured here (few rows and boxed columns for one interval;
    # 96-step energy chains).
    chosen = solver if solver != "auto" else ("ipm" if steps == 1 and size > 400_000 else "simplex")
    t1 = time.perf_counter()
    a = b.matrix()
    a.sum_duplicates()
    status, x, duals, obj = _solve_highs(b, a, chosen, time_limit_s)
    solve_s = time.perf_counter() - t1
    if status != "Optimal":
        sol = merit_order(problem, reason=f"solver {chosen}: {status}")
        return replace(sol, build_s=build_s, solve_s=solve_s)

    u = np.stack([x[c] for c in u_cols], axis=1)
    v = np.stack([x[c] for c in v_cols], axis=1)
    if groups.share is not None:  # every member follows its share of the group's deviation
        delta = groups.share[:, None] * (u - v)[group]
    else:
        # Members of a group share their costs: the most reliable first.
        order = np.lexsort((-problem.reliability, group))
        delta = _disaggregate(order, group, u[:, 0], dev_up[:, 0]) - _disaggregate(
            order, group, v[:, 0], dev_down[:, 0]
        )
        delta = delta[:, None]
    p = f.base + delta
    q = f.q_base.copy()
    if qi_cols is not None and qa_cols is not None and q_up is not None and q_down is not None:
        share_up = np.where(q_up > 0, x[qi_cols] / np.where(q_up > 0, q_up, 1), 0.0)[group]
        share_dn = np.where(q_down > 0, x[qa_cols] / np.where(q_down > 0, q_down, 1), 0.0)[group]
        q = f.q_base + share_up * (f.q_hi - f.q_base) - share_dn * (f.q_base - f.q_lo)
    shortfall = shortfalls(problem, p)
    why = _explain(
        problem, b, a, duals, (u_cols[0], v_cols[0]), group, delta[:, 0], (dev_up[:, 0], dev_down[:, 0])
    )
    return Solution(
        p_w=p,
        q_var=q,
        status="optimal",
        solver=f"highs-{chosen}",
        cost=float(obj),
        shortfall_w=shortfall,
        why=why,
        groups=g,
        rows=b.n_row,
        build_s=build_s,
        solve_s=solve_s,
        group_of=group,
    )


def _grid_rows(
    b: _Builder,
    problem: Problem,
    groups: Groups,
    loc: np.ndarray,
    keeps: list[np.ndarray],
    by_bus: bool,
    u_cols: list[np.ndarray],
    v_cols: list[np.ndarray],
    qi_cols: np.ndarray | None,
    qa_cols: np.ndarray | None,
) -> None:
    """Linearised grid rows per step. Summed groups on one bus use its sensitivity; summed groups
    over a feeder the extreme one among their buses (conservative for any split); fixed-share
    groups the share-weighted sum of their members' (exact for the policy)."""
    grid = problem.grid
    assert grid is not None
    group, first, g = groups.group, groups.first, groups.g
    gbus = loc[first]
    share_sens = None
    if groups.share is not None:
        on = problem.bus >= 0
        share_sens = (
            grid.sp @ sp.csr_matrix((groups.share[on], (problem.bus[on], group[on])), shape=(grid.n_bus, g))
        ).tocsr()  # share-weighted sensitivity of every grid row to every group, sliced per step
    elif not by_bus:
        smax_all, smin_all = _extreme_sensitivity(grid.sp, problem.bus, group, g)
    for t, keep in enumerate(keeps):
        if not len(keep):
            continue
        labels = [grid.labels[r] for r in keep]
        if share_sens is not None:
            a = share_sens[keep].tocoo()
            rows = b.rows(grid.room_lo[keep], grid.room_hi[keep], labels)
            b.entries(rows[a.row], u_cols[t][a.col], a.data)
            b.entries(rows[a.row], v_cols[t][a.col], -a.data)
        elif by_bus:
            valid = np.flatnonzero(gbus >= 0)
            a = grid.sp[keep][:, gbus[valid]].tocoo()
            rows = b.rows(grid.room_lo[keep], grid.room_hi[keep], labels)
            b.entries(rows[a.row], u_cols[t][valid[a.col]], a.data)
            b.entries(rows[a.row], v_cols[t][valid[a.col]], -a.data)
            if qi_cols is not None and qa_cols is not None and grid.sq is not None:
                aq = grid.sq[keep][:, gbus[valid]].tocoo()
                b.entries(rows[aq.row], qi_cols[valid[aq.col]], aq.data)
                b.entries(rows[aq.row], qa_cols[valid[aq.col]], -aq.data)
        else:
            smax, smin = smax_all[keep], smin_all[keep]
            hi_rows = b.rows(np.full(len(keep), -np.inf), grid.room_hi[keep], labels)
            lo_rows = b.rows(grid.room_lo[keep], np.full(len(keep), np.inf), labels)
            for rows, cu_, cv_ in ((hi_rows, smax, smin), (lo_rows, smin, smax)):
                cu_c, cv_c = cu_.tocoo(), cv_.tocoo()
                b.entries(rows[cu_c.row], u_cols[t][cu_c.col], cu_c.data)
                b.entries(rows[cv_c.row], v_cols[t][cv_c.col], -cv_c.data)


def _extreme_sensitivity(
    s_p: sp.csr_matrix, bus: np.ndarray, group: np.ndarray, g: int
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Per row and group, the largest and smallest sensitivity among the group's buses."""
    pairs = np.unique(np.stack([group, bus]), axis=1)
    pairs = pairs[:, pairs[1] >= 0]
    dense = s_p[:, pairs[1]].toarray()
    starts = np.flatnonzero(np.r_[True, np.diff(pairs[0]) != 0])
    gi = pairs[0, starts]
    smax = np.zeros((s_p.shape[0], g))
    smin = np.zeros((s_p.shape[0], g))
    if dense.size:
        smax[:, gi] = np.maximum.reduceat(dense, starts, axis=1)
        smin[:, gi] = np.minimum.reduceat(dense, starts, axis=1)
    return sp.csr_matrix(smax), sp.csr_matrix(smin)


def _energy_rows(
    b: _Builder, eg: EnergyGroups, u_cols: list[np.ndarray], v_cols: list[np.ndarray], dt_h: float
) -> None:
    """Generalized-battery dynamics per energy group and step, and warranty throughput."""
    rows_g, m = eg.rows, len(eg.rows)
    steps = len(u_cols)
    e_cols = [b.cols(np.zeros(m), eg.e_lo[:, t], eg.e_hi[:, t]) for t in range(steps)]
    for t in range(steps):
        rhs = eg.w[:, t] + (eg.alpha * eg.e0 if t == 0 else 0.0)
        rows = b.rows(rhs, rhs, ["energy"] * m)
        b.state_cols.append(e_cols[t])
        b.state_rows.append(rows)
        b.entries(rows, e_cols[t], np.ones(m))
        if t > 0:
            b.entries(rows, e_cols[t - 1], -eg.alpha)
        b.entries(rows, u_cols[t][rows_g], dt_h * eg.k_up)
        b.entries(rows, v_cols[t][rows_g], -dt_h * eg.k_down)
        # Each group's columns and dynamics rows form a block (solver order, `_solve_highs`).
        block = np.arange(m)
        b.block(
            np.concatenate([u_cols[t][rows_g], v_cols[t][rows_g], e_cols[t]]), np.tile(block, 3), rows, block
        )
    lim = np.flatnonzero(np.isfinite(eg.budget))
    if len(lim):
        rows = b.rows(np.full(len(lim), -np.inf), eg.budget[lim], ["warranty:daily_cycles"] * len(lim))
        for t in range(steps):
            b.entries(rows, u_cols[t][rows_g[lim]], np.full(len(lim), dt_h * eg.k_up[lim]))


def _disaggregate(order: np.ndarray, group: np.ndarray, total: np.ndarray, caps: np.ndarray) -> np.ndarray:
    """Split group totals over members in ``order`` (merit order), each up to its cap."""
    out = np.zeros_like(caps)
    gs = group[order]
    c = caps[order]
    cum_excl = np.cumsum(c) - c
    starts = np.flatnonzero(np.r_[True, gs[1:] != gs[:-1]])
    base = np.repeat(cum_excl[starts], np.diff(np.r_[starts, len(gs)]))
    out[order] = np.clip(total[gs] - (cum_excl - base), 0.0, c)
    return out


def _explain(
    problem: Problem,
    b: _Builder,
    a: sp.csc_matrix,
    duals: np.ndarray,
    cols: tuple[np.ndarray, np.ndarray],
    group: np.ndarray,
    delta: np.ndarray,
    room: tuple[np.ndarray, np.ndarray],
) -> Explanation:
    """Per DER (first step): the binding constraint, the objective served, and a detail.

    A device at a limit of its own box is bound by that limit (its flexibility's binding);
    a device between its limits is the marginal one of its group, bound by the system row
    with the largest shadow price on its column (a grid row or the objective itself).
    """
    f = problem.flex
    n_bind = len(Binding)
    y = duals if len(duals) else np.zeros(b.n_row)

    cost = np.concatenate(b.cost)

    def limiting(c: np.ndarray) -> np.ndarray:
        # Reduced cost d = cost - A^T y: rows with y_r a_rc > 0 pull the column in (objectives),
        # rows with y_r a_rc < 0 push it back. A column is limited by a pushing row only when the
        # pull alone would make it worth using.
        sub = a[:, c].tocsc()
        col = np.repeat(np.arange(len(c)), np.diff(sub.indptr))
        ya = sub.data * y[sub.indices]
        pull_sum = np.bincount(col, weights=np.maximum(ya, 0.0), minlength=len(c))
        wanted = cost[c] < pull_sum - 1e-12
        out = np.full(len(c), int(Binding.NONE), np.int32)
        for sign, mask in ((-1.0, wanted), (1.0, np.ones(len(c), bool))):
            val = sign * ya
            ok = val > 1e-12
            order = np.lexsort((-val[ok], col[ok]))
            cols_ok, rows_ok = col[ok][order], sub.indices[ok][order]
            firsts = np.flatnonzero(np.r_[True, cols_ok[1:] != cols_ok[:-1]]) if len(cols_ok) else cols_ok
            best_col, best_row = cols_ok[firsts], rows_ok[firsts]
            take = mask[best_col] & (out[best_col] == Binding.NONE)
            out[best_col[take]] = n_bind + best_row[take]
        return out

    up0, dn0 = room
    lim_u, lim_v = limiting(cols[0])[group], limiting(cols[1])[group]
    hi_b, lo_b = f.hi_binding[:, 0].astype(np.int32), f.lo_binding[:, 0].astype(np.int32)
    code = np.full(problem.n, int(Binding.NONE), np.int32)
    up_moved, down_moved = delta > _TOL_W, delta < -_TOL_W
    code = np.where(up_moved, np.where(delta >= up0 - _TOL_W, hi_b, lim_u), code)
    code = np.where(down_moved, np.where(-delta >= dn0 - _TOL_W, lo_b, lim_v), code)
    still = ~up_moved & ~down_moved
    labels = tuple(Binding(c).label for c in range(n_bind)) + tuple(b.row_label)
    # Not moved: without headroom its own limit says why; with headroom, a binding grid row of
    # its group holds it back (an objective row does not: then it is simply not needed).
    grid_row = np.zeros(len(labels), bool)  # only the rows that limit some group are looked at
    limits = np.unique(lim_u[lim_u >= n_bind])
    grid_row[limits] = [not labels[r].startswith(("objective:", "energy")) for r in limits.tolist()]
    held_back = still & (up0 > _TOL_W) & (lim_u >= n_bind) & grid_row[lim_u]
    code = np.where(still & (up0 <= _TOL_W), hi_b, np.where(held_back, lim_u, code))
    objective = np.full(problem.n, -1, np.int32)
    ids = tuple(t.objective_id for t in problem.targets)
    for k in sorted(range(len(problem.targets)), key=lambda k: -problem.targets[k].priority):
        if not np.isnan(problem.targets[k].value_w[0]):
            objective[problem.targets[k].members] = k
    detail = np.where(up_moved, 1, np.where(down_moved, 2, np.where((up0 > _TOL_W) | (dn0 > _TOL_W), 3, 0)))
    return Explanation(code, labels, objective, ids, detail.astype(np.int8))
