"""Linear sensitivities of bus voltage, branch loading and substation power to bus injections.

Computed at the current operating point by perturbation: one batched power-grid-model run
with one scenario per bus and quantity, each adding a small injection at that bus
(a forward difference of the full AC power flow, so it includes losses and the voltage
dependence that a DistFlow linearisation drops; cf. Bolognani & Dörfler, "Fast power system
analysis via implicit linearization of the power flow manifold", Allerton 2015, for the
analytic alternative).

Units: voltage sensitivities in pu per MW (pu per Mvar), loading sensitivities in % per MW
(% per Mvar), substation power sensitivities in W per W.  Injection is positive into the grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.sparse import csr_matrix

from derms.grid.limits import Limits, margins
from derms.grid.model import NetworkModel
from derms.grid.powerflow import PgmEngine, PowerFlowResult

_W_PER_MW = 1e6


@dataclass(frozen=True, slots=True)
class Sensitivities:
    """Sensitivity matrices at one operating point; columns are injection buses.

    ``dv_dp[i, j]``: change of voltage at bus i [pu] per MW injected at bus j.
    ``dloading_dp[k, j]``: change of loading of branch k [%] per MW injected at bus j.
    ``dsub_dp[s, j]``: change of substation s import [W] per W injected at bus j.
    Rows/columns of buses that no substation energises are zero.
    """

    base: PowerFlowResult
    dv_dp: np.ndarray
    dv_dq: np.ndarray
    dloading_dp: np.ndarray
    dloading_dq: np.ndarray
    dsub_dp: np.ndarray
    dsub_dq: np.ndarray

    @property
    def bus_ids(self) -> pd.Index:
        return self.base.bus_ids

    def constraints(
        self, model: NetworkModel, limits: Limits, incidence: csr_matrix | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Linear constraints ``A @ [dP; dQ] <= b`` in MW/Mvar, for the orchestrator.

        Rows: upper voltage, lower voltage, thermal, reverse flow (only rows with finite headroom).
        Columns: dP per bus then dQ per bus, or per item (DER) when ``incidence``
        (n_item x n_bus, from :meth:`NetworkModel.incidence`) is given.
        """
        up, down, th, rf = margins(self.base, model, limits)
        blocks = [
            (np.hstack([self.dv_dp, self.dv_dq]), up),
            (-np.hstack([self.dv_dp, self.dv_dq]), down),
            (np.hstack([self.dloading_dp, self.dloading_dq]), th),
            (-np.hstack([self.dsub_dp, self.dsub_dq]) * _W_PER_MW, rf),
        ]
        a = np.vstack([m[np.isfinite(b)] for m, b in blocks])
        b = np.concatenate([b[np.isfinite(b)] for _, b in blocks])
        if incidence is not None:
            n = self.dv_dp.shape[1]
            a = np.hstack([a[:, :n] @ incidence.T.toarray(), a[:, n:] @ incidence.T.toarray()])
        return a, b


def sensitivities(
    engine: PgmEngine,
    p_inj_w: np.ndarray | None = None,
    q_inj_var: np.ndarray | None = None,
    *,
    load_scale: float | np.ndarray | None = None,
    sgen_scale: float | np.ndarray | None = None,
    step_w: float | np.ndarray | None = None,
) -> Sensitivities:
    """Sensitivities at the operating point given by the injections and scalings.

    ``step_w`` is the perturbation per bus [W] (default 10 kW on buses above 1 kV, 1 kW below).
    """
    model = engine.model
    n = len(model.bus_ids)
    p0 = np.zeros(n) if p_inj_w is None else np.asarray(p_inj_w, float)
    q0 = np.zeros(n) if q_inj_var is None else np.asarray(q_inj_var, float)
    if step_w is None:
        step_w = np.where(model.buses["vn_kv"].to_numpy() > 1.0, 1e4, 1e3)
    step = np.broadcast_to(np.asarray(step_w, float), (n,))
    eye = np.diag(step)
    p = np.vstack([p0[None], p0 + eye, np.broadcast_to(p0, (n, n))])
    q = np.vstack([q0[None], np.broadcast_to(q0, (n, n)), q0 + eye])

    def tile(s: float | np.ndarray | None) -> float | np.ndarray | None:
        if s is None or np.ndim(s) == 0:
            return s
        return np.broadcast_to(np.asarray(s, float), (2 * n + 1, np.size(s)))

    res = engine.run_batch(p, q, load_scale=tile(load_scale), sgen_scale=tile(sgen_scale))
    per_mw = (_W_PER_MW / step)[:, None]

    def diff(x: np.ndarray, rows: slice) -> np.ndarray:
        d = np.nan_to_num(x[rows] - x[0]) * per_mw
        return d.T

    base = PowerFlowResult(
        res.bus_ids,
        res.branch_ids,
        res.substation_ids,
        res.vm_pu[0],
        res.loading_pct[0],
        res.p_from_w[0],
        res.losses_w[0],
        res.substation_p_w[0],
        res.converged[0],
    )
    sp, sq = slice(1, n + 1), slice(n + 1, 2 * n + 1)
    return Sensitivities(
        base=base,
        dv_dp=diff(res.vm_pu, sp),
        dv_dq=diff(res.vm_pu, sq),
        dloading_dp=diff(res.loading_pct, sp),
        dloading_dq=diff(res.loading_pct, sq),
        dsub_dp=diff(res.substation_p_w, sp) / _W_PER_MW,
        dsub_dq=diff(res.substation_p_w, sq) / _W_PER_MW,
    )
